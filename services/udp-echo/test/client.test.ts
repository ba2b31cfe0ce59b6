import type dgram from 'node:dgram';
import { runToExit, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, bound, startEcho } from './helpers.js';

const sockets: dgram.Socket[] = [];
async function server(type: 'udp4' | 'udp6', answer?: (msg: Buffer) => Buffer | undefined): Promise<number> {
  const s = await bound(type, type === 'udp4' ? '127.0.0.1' : '::1');
  sockets.push(s);
  if (answer) {
    s.on('message', (msg, rinfo) => {
      const reply = answer(msg);
      if (reply) s.send(reply, rinfo.port, rinfo.address);
    });
  }
  return s.address().port;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await stopAllServices();
});

const run = (args: string[]) => runToExit(BIN, args);

describe('udp-echo client', () => {
  it('lists the shared exit codes and its UDP_ECHO_<COMMAND>_* variables in --help; an unknown command exits 2', async () => {
    const [client, check, unknown] = await Promise.all([
      run(['client', '--help']),
      run(['check', '--help']),
      run(['frobnicate']),
    ]);
    for (const [help, command] of [
      [client, 'CLIENT'],
      [check, 'CHECK'],
    ] as const) {
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('Exit codes (the same for every @net client and check command):');
      expect(help.stdout).toMatch(/^ {2}75 {2}timeout/m);
      for (const v of ['TIMEOUT', 'RETRIES', 'JSON']) expect(help.stdout).toContain(`Env: UDP_ECHO_${command}_${v}.`);
    }
    expect(client.stdout).toContain('Env: UDP_ECHO_CLIENT_SIZE.');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('udp-echo: unknown command "frobnicate": commands are serve, client, check\n');
  });

  it('exits 0 and prints the round-trip time when the echo is identical', async () => {
    const s = await startEcho();
    const r = await run(['client', `127.0.0.1:${s.port}`, 'hello', 'world']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^11 bytes from 127\.0\.0\.1:\d+: identical, rtt \d+\.\d{3} ms \(attempt 1 of 3\)$/);
  });

  it('sends --size random bytes, up to 65,527 over IPv6', async () => {
    const s = await startEcho(['--host', '::1']);
    const r = await run(['client', `[::1]:${s.port}`, '--size', '65527']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^65527 bytes from \[::1\]:/);
  });

  it('exits 75 after its retries against a UDP socket that never answers', async () => {
    const port = await server('udp4');
    const r = await run(['client', `127.0.0.1:${port}`, '--timeout', '0.2', '--retries', '2', 'anyone?']);
    expect(r.code).toBe(75);
    expect(r.stderr).toMatch(/no reply from 127\.0\.0\.1:\d+ after 3 attempts of 200 ms/);
  });

  it('exits 69 on ICMP port unreachable (ECONNREFUSED) from a closed port', async () => {
    const closed = await bound('udp4', '127.0.0.1');
    const port = closed.address().port;
    closed.close();
    const r = await run(['client', `127.0.0.1:${port}`, '--timeout', '2', 'anyone?']);
    expect(r.code).toBe(69);
    expect(r.stderr).toMatch(/ICMP port unreachable/);
  });

  it('exits 1 when the reply differs from the request', async () => {
    const port = await server('udp4', (msg) => Buffer.from(msg).reverse());
    const r = await run(['client', `127.0.0.1:${port}`, 'abcdef']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/differs: sent 6 bytes, received 6, first difference at byte 0/);
  });

  it('exits 1 on an empty reply to a non-empty request (what nginx sends when its UDP backend is down)', async () => {
    const port = await server('udp4', () => Buffer.alloc(0));
    const r = await run(['client', `127.0.0.1:${port}`, 'ping']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/empty datagram/);
  });

  it('exits 1 on a truncated reply, and --json reports sizes and the first difference', async () => {
    const port = await server('udp6', (msg) => msg.subarray(0, msg.length - 1));
    const [r, json] = await Promise.all([
      run(['client', `[::1]:${port}`, '--size', '1000']),
      run(['client', `[::1]:${port}`, '--size', '1000', '--json']),
    ]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      result: 'error',
      exitCode: 1,
      target: `[::1]:${port}`,
      sent: 1000,
      received: 999,
      firstDifference: 999,
      error: { code: 'NET_ERR_BAD_REPLY' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/received 999, first difference at byte 999/);
  });

  it('exits 2 for a message too large for IPv4, a Unix endpoint, or both MESSAGE and --size', async () => {
    const big = await run(['client', '127.0.0.1:9', '--size', '65508']);
    expect(big.code).toBe(2);
    expect(big.stderr).toMatch(
      /invalid message size "65508 bytes": expected at most 65507 bytes, the largest UDP datagram over IPv4/,
    );
    const unix = await run(['client', 'unix:/tmp/x.sock']);
    expect(unix.code).toBe(2);
    const both = await run(['client', '127.0.0.1:9', '--size', '3', 'hello']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('either MESSAGE or --size');
  });

  it('asks the local server, 127.0.0.1:15000, without HOST:PORT', async () => {
    const [client, check] = await Promise.all([
      run(['client', '--json', '--timeout', '0.1', '--retries', '0']),
      run(['check', '--json', '--timeout', '0.1', '--retries', '0']),
    ]);
    expect(JSON.parse(client.stdout)).toMatchObject({ target: '127.0.0.1:15000', timeoutMs: 100 });
    expect(JSON.parse(check.stdout)).toMatchObject({ target: '127.0.0.1:15000', timeoutMs: 100 });
  });
});

describe('udp-echo check', () => {
  it('exits 0 against a live server, 75 against a silent port (timeout from UDP_ECHO_CHECK_TIMEOUT)', async () => {
    const s = await startEcho();
    const silent = await server('udp4');
    const [ok, json, timeout] = await Promise.all([
      run(['check', `127.0.0.1:${s.port}`]),
      run(['check', '--json', `127.0.0.1:${s.port}`]),
      runToExit(BIN, ['check', `127.0.0.1:${silent}`, '--retries', '0'], { env: { UDP_ECHO_CHECK_TIMEOUT: '0.1' } }),
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: \d+ bytes from 127\.0\.0\.1:\d+: identical/);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ result: 'ok', exitCode: 0, attempt: 1, attempts: 3 });
    expect(timeout.code).toBe(75);
    expect(timeout.stderr).toMatch(/^udp-echo check: no reply from 127\.0\.0\.1:\d+ after 1 attempts of 100 ms\n$/);
  });
});
