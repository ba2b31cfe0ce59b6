import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { encodeProxyV2, ipToBytes, parseCidrList } from '@net/core';
import { portOf, runToExit, type ServiceProcess, sampleValue, scrapeMetrics, stopAllServices } from '@net/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SourcePolicy } from '../src/source-policy.js';
import { BIN, collect, connectTo, echo, receive, startEcho } from './helpers.js';

const policy = (o: { allow?: string; deny?: string; maxPerSource?: number; ipv6Prefix?: number }) =>
  new SourcePolicy({
    allow: parseCidrList(o.allow ?? ''),
    deny: parseCidrList(o.deny ?? ''),
    maxPerSource: o.maxPerSource ?? 0,
    ipv6Prefix: o.ipv6Prefix ?? 64,
  });

describe('SourcePolicy', () => {
  it('admits everyone when no list is set, and counts nothing without --max-per-source', () => {
    const p = policy({});
    expect(p.active).toBe(false);
    expect(p.admit('198.51.100.7')).toEqual({ key: undefined });
  });

  it('admits only --allow networks, and lets the longer prefix decide between --allow and --deny (a tie denies)', () => {
    const p = policy({ allow: '192.0.2.0/24, 2001:db8::/32', deny: '192.0.2.128/25, 2001:db8::/32' });
    expect(p.admit('192.0.2.1')).toEqual({ key: undefined });
    expect(p.admit('192.0.2.200')).toEqual({ refused: 'denied' });
    expect(p.admit('198.51.100.7')).toEqual({ refused: 'denied' });
    expect(p.admit('2001:db8::1')).toEqual({ refused: 'denied' });
    const wide = policy({ deny: '192.0.2.0/24', allow: '0.0.0.0/0, 192.0.2.7/32' });
    expect(wide.admit('192.0.2.7')).toEqual({ key: undefined });
    expect(wide.admit('192.0.2.8')).toEqual({ refused: 'denied' });
  });

  it('matches a dual-stack listener’s IPv4-mapped address against IPv4 networks and counts it as the IPv4 address', () => {
    const p = policy({ allow: '192.0.2.0/24', maxPerSource: 1 });
    expect(p.admit('::ffff:192.0.2.9')).toEqual({ key: '192.0.2.9' });
    expect(p.admit('192.0.2.9')).toEqual({ refused: 'per_source' });
  });

  it('counts IPv6 sources per /64 by default, per --per-source-ipv6-prefix when set, and releases on close', () => {
    const p = policy({ maxPerSource: 2 });
    expect(p.admit('2001:db8:1:2::1')).toEqual({ key: '2001:db8:1:2::/64' });
    expect(p.admit('2001:db8:1:2:ffff::9')).toEqual({ key: '2001:db8:1:2::/64' });
    expect(p.admit('2001:db8:1:2::3')).toEqual({ refused: 'per_source' });
    expect(p.admit('2001:db8:1:3::1')).toEqual({ key: '2001:db8:1:3::/64' });
    p.release('2001:db8:1:2::/64');
    expect(p.openFrom('2001:db8:1:2::/64')).toBe(1);
    expect(p.admit('2001:db8:1:2::3')).toEqual({ key: '2001:db8:1:2::/64' });
    const hosts = policy({ maxPerSource: 1, ipv6Prefix: 128 });
    expect(hosts.admit('2001:db8::1')).toEqual({ key: '2001:db8::1/128' });
    expect(hosts.admit('2001:db8::2')).toEqual({ key: '2001:db8::2/128' });
    expect(hosts.keyOf(ipToBytes('2001:db8::1') as Buffer)).toBe('2001:db8::1/128');
  });

  it('neither checks nor counts a peer without an IP address (a Unix socket)', () => {
    const p = policy({ allow: '192.0.2.0/24', maxPerSource: 1 });
    expect(p.admit(undefined)).toEqual({ key: undefined });
    expect(p.admit(undefined)).toEqual({ key: undefined });
  });
});

async function rejected(service: ServiceProcess, reason: string): Promise<number | undefined> {
  return sampleValue(await scrapeMetrics(`${service.adminUrl}/metrics`), 'net_connections_rejected_total', { reason });
}

/** Polls until the metric reaches `want` (bounded): the service counts on events the test cannot await. */
async function rejectedReaches(service: ServiceProcess, reason: string, want: number): Promise<number | undefined> {
  let value: number | undefined;
  for (let i = 0; i < 100; i++) {
    value = await rejected(service, reason);
    if (value === want) break;
    await sleep(30);
  }
  return value;
}

/** Connects from `from` and expects the echo of a few bytes: the connection was admitted and served. */
async function expectServed(port: number, from: string, host = '127.0.0.1'): Promise<net.Socket> {
  const socket = await connectTo(port, { localAddress: from, host });
  const back = receive(socket, 5);
  socket.write('hello');
  expect((await back).toString()).toBe('hello');
  return socket;
}

/**
 * Connects from `from`, writes, and says what happened: `served` (the echo came back), or `reset` with the number of
 * bytes received before it. The reset can beat the connect's completion to the client (the kernel then reports
 * ECONNRESET for the connect itself): the same outcome.
 */
async function attempt(port: number, from: string, host = '127.0.0.1'): Promise<string> {
  let socket: net.Socket;
  try {
    socket = await connectTo(port, { localAddress: from, host });
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? 'reset after 0 bytes' : String(err);
  }
  const ending = collect(socket);
  socket.write('hello');
  const outcome = await Promise.race([
    receive(socket, 5, 3000).then(
      (b) => `served ${b}`,
      () => '',
    ),
    ending.then(() => ''),
  ]);
  if (outcome.startsWith('served')) {
    socket.destroy();
    return 'served';
  }
  const { data, how } = await ending;
  return `${how} after ${data.length} bytes`;
}

/** Expects a reset with not one byte: no greeting, no echo. */
async function expectReset(port: number, from: string, host = '127.0.0.1'): Promise<void> {
  expect(await attempt(port, from, host)).toBe('reset after 0 bytes');
}

// Both the fast path (default) and the stream path (taken when a test knob is on; --delay-ms 0 is off, so 1 ms).
describe.each([
  ['fast path', []],
  ['stream path', ['--delay-ms', '1']],
])('--allow, --deny and --max-per-source on the %s', (_name, pathArgs) => {
  afterEach(stopAllServices);

  it('resets a client outside --allow before any byte (even the greeting) and counts it as denied', async () => {
    const service = await startEcho([...pathArgs, '--allow', '127.0.0.2', '--greeting', 'hi\\n', '--admin-port', '0']);
    expect(await rejected(service, 'denied')).toBe(0);
    expect(await rejected(service, 'per_source')).toBe(0);
    const ok = await connectTo(service.port, { localAddress: '127.0.0.2' });
    expect((await receive(ok, 3)).toString()).toBe('hi\n');
    ok.destroy();
    await expectReset(service.port, '127.0.0.3');
    expect(await rejectedReaches(service, 'denied', 1)).toBe(1);
  });

  it('resets a --deny source inside a wider --allow network, and serves its neighbours', async () => {
    const service = await startEcho([
      ...pathArgs,
      '--allow',
      '127.0.0.0/8',
      '--deny',
      '127.0.0.3/32',
      '--admin-port',
      '0',
    ]);
    (await expectServed(service.port, '127.0.0.4')).destroy();
    await expectReset(service.port, '127.0.0.3');
    expect(await rejectedReaches(service, 'denied', 1)).toBe(1);
  });

  it('holds each source to --max-per-source open connections, counting sources apart, and frees a slot on close', async () => {
    const service = await startEcho([...pathArgs, '--max-per-source', '2', '--admin-port', '0']);
    const a1 = await expectServed(service.port, '127.0.0.2');
    const a2 = await expectServed(service.port, '127.0.0.2');
    await expectReset(service.port, '127.0.0.2');
    const b1 = await expectServed(service.port, '127.0.0.3');
    expect(await rejectedReaches(service, 'per_source', 1)).toBe(1);
    // The service counts the close once it sees it: retry (bounded) until the slot is free again.
    const closed = collect(a1);
    a1.end();
    await closed;
    let again = '';
    for (let i = 0; i < 50 && again !== 'served'; i++) {
      again = await attempt(service.port, '127.0.0.2');
      if (again !== 'served') await sleep(20);
    }
    expect(again).toBe('served');
    for (const s of [a2, b1]) s.destroy();
  });
});

describe('--max-per-source and --deny over IPv6', () => {
  afterEach(stopAllServices);

  it('counts ::1 as one source (its /64, or its /128 with --per-source-ipv6-prefix 128)', async () => {
    for (const prefix of ['64', '128']) {
      const service = await startEcho([
        '--listen',
        '[::1]:0',
        '--max-per-source',
        '1',
        '--per-source-ipv6-prefix',
        prefix,
        '--admin-port',
        '0',
      ]);
      const port = portOf(service.endpoints.find((e) => e.startsWith('[')) ?? '');
      const first = await expectServed(port, '::1', '::1');
      await expectReset(port, '::1', '::1');
      expect(await rejectedReaches(service, 'per_source', 1)).toBe(1);
      first.destroy();
      await stopAllServices();
    }
  });

  it('resets ::1 when --deny lists it, while IPv4 loopback clients are served', async () => {
    const service = await startEcho(['--listen', '[::1]:0', '--deny', '::1/128', '--admin-port', '0']);
    const v4 = service.port;
    const v6 = portOf(service.endpoints.find((e) => e.startsWith('[')) ?? '');
    await expectReset(v6, '::1', '::1');
    (await expectServed(v4, '127.0.0.1')).destroy();
    expect(await rejectedReaches(service, 'denied', 1)).toBe(1);
  });
});

describe('behind a PROXY listener, the header’s client is the source', () => {
  let service: ServiceProcess;
  let proxyPort: number;
  const header = (client: string) =>
    encodeProxyV2({
      command: 'PROXY',
      family: 'TCP4',
      source: { address: client, port: 40_000 },
      destination: { address: '192.0.2.2', port: 7 },
    });

  beforeAll(async () => {
    service = await startEcho([
      '--proxy-listen',
      '127.0.0.1:0',
      '--allow',
      '192.0.2.0/24',
      '--max-per-source',
      '1',
      '--admin-port',
      '0',
    ]);
    proxyPort = portOf(service.endpoints[1] ?? '');
  });
  afterAll(stopAllServices);

  it('serves an allowed client through the proxy although the proxy’s own address (127.0.0.1) is not in --allow', async () => {
    const s = await connectTo(proxyPort);
    const { data, how } = await echo(s, Buffer.concat([header('192.0.2.100'), Buffer.from('payload')]));
    expect({ data: data.toString(), how }).toEqual({ data: 'payload', how: 'eof' });
  });

  it('resets a header whose client is outside --allow, and a second open connection of one client', async () => {
    const denied = await connectTo(proxyPort);
    const deniedEnd = collect(denied);
    denied.write(Buffer.concat([header('198.51.100.7'), Buffer.from('x')]));
    expect((await deniedEnd).data.length).toBe(0);
    expect(await rejectedReaches(service, 'denied', 1)).toBe(1);

    const first = await connectTo(proxyPort);
    const back = receive(first, 3);
    first.write(Buffer.concat([header('192.0.2.50'), Buffer.from('one')]));
    expect((await back).toString()).toBe('one');
    const second = await connectTo(proxyPort);
    const secondEnd = collect(second);
    second.write(Buffer.concat([header('192.0.2.50'), Buffer.from('two')]));
    expect(await secondEnd).toEqual({ data: Buffer.alloc(0), how: 'reset' });
    // A different client behind the same proxy has its own count.
    const other = await connectTo(proxyPort);
    const { data } = await echo(other, Buffer.concat([header('192.0.2.51'), Buffer.from('three')]));
    expect(data.toString()).toBe('three');
    expect(await rejectedReaches(service, 'per_source', 1)).toBe(1);
    first.destroy();
  });

  it('gives a client’s slot back when its connection closes, and counts no LOCAL header against anyone', async () => {
    // Two LOCAL connections open at once under --max-per-source 1: the proxy speaking for itself is no source.
    const local = encodeProxyV2({ command: 'LOCAL', family: 'UNKNOWN' });
    const checks = [await connectTo(proxyPort), await connectTo(proxyPort)];
    for (const [i, s] of checks.entries()) {
      const back = receive(s, 2);
      s.write(Buffer.concat([local, Buffer.from(`c${i}`)]));
      expect((await back).toString()).toBe(`c${i}`);
    }
    const first = await connectTo(proxyPort);
    const { data } = await echo(first, Buffer.concat([header('192.0.2.60'), Buffer.from('one')]));
    expect(data.toString()).toBe('one');
    // The first connection has closed: its client gets in again (retried, bounded, until the service has seen the
    // close); a count never given back would reset every attempt.
    let again = '';
    for (let i = 0; i < 50 && again !== 'two'; i++) {
      const s = await connectTo(proxyPort);
      again = (await echo(s, Buffer.concat([header('192.0.2.60'), Buffer.from('two')]))).data.toString();
      if (again !== 'two') await sleep(20);
    }
    expect(again).toBe('two');
    for (const s of checks) s.destroy();
  });

  it('serves a LOCAL header (a health check) from the proxy itself, which no list names', async () => {
    const s = await connectTo(proxyPort);
    const local = encodeProxyV2({ command: 'LOCAL', family: 'UNKNOWN' });
    const { data } = await echo(s, Buffer.concat([local, Buffer.from('ok')]));
    expect(data.toString()).toBe('ok');
  });
});

const hasOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasOpenssl)('the source policy on a TLS listener [needs openssl for a test certificate]', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'echo-tls-policy-'));
    const r = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout'].concat([
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
      ]),
      { stdio: 'ignore' },
    );
    if (r.status !== 0) throw new Error('openssl req failed');
  });
  afterAll(async () => {
    await stopAllServices();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resets a denied client before the handshake, without counting it as a TLS error, and serves others', async () => {
    const service = await startEcho([
      '--tls-listen',
      '127.0.0.1:0',
      '--tls-cert',
      join(dir, 'c.pem'),
      '--tls-key',
      join(dir, 'k.pem'),
      '--deny',
      '127.0.0.3',
      '--admin-port',
      '0',
    ]);
    const port = portOf(service.endpoints[1] ?? '');
    const tlsConnect = (from: string) =>
      new Promise<string>((resolve) => {
        // localAddress is passed on to net.connect (Node's tls.connect takes every net.connect option).
        const options = { host: '127.0.0.1', port, localAddress: from, rejectUnauthorized: false };
        const s = tls.connect(options as tls.ConnectionOptions, () => {
          s.once('data', (d: Buffer) => {
            resolve(`echo ${d}`);
            s.destroy();
          });
          s.write('tls');
        });
        s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
    expect(await tlsConnect('127.0.0.3')).toBe('ECONNRESET');
    expect(await tlsConnect('127.0.0.2')).toBe('echo tls');
    expect(await rejectedReaches(service, 'denied', 1)).toBe(1);
    const metrics = await scrapeMetrics(`${service.adminUrl}/metrics`);
    expect(sampleValue(metrics, 'net_errors_total', { code: 'ECONNRESET' }) ?? 0).toBe(0);
  });
});

describe('bad source settings', () => {
  it('refuses a --deny network with host bits set, exit 2 naming the flag', async () => {
    const r = await runToExit(BIN, ['serve', '--port', '0', '--deny', '127.0.0.1/8']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--deny.*did you mean 127\.0\.0\.0\/8/);
  });

  it('refuses --per-source-ipv6-prefix 0 with exit 2', async () => {
    const r = await runToExit(BIN, ['serve', '--port', '0', '--per-source-ipv6-prefix', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--per-source-ipv6-prefix');
  });
});
