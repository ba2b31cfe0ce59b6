import type dgram from 'node:dgram';
import { runToExit, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_EXIT } from '../src/client.js';
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
  it('lists its exit codes in --help, and an unknown command exits 2 naming the commands', async () => {
    const [client, check, unknown] = await Promise.all([
      run(['client', '--help']),
      run(['check', '--help']),
      run(['frobnicate']),
    ]);
    expect(client.code).toBe(0);
    expect(client.stdout).toContain(
      'Exit codes: 0 identical echo, 1 other failure, 2 bad usage, 3 timeout, 4 reply differs (also an empty reply), 5 ICMP port unreachable.',
    );
    expect(check.stdout).toContain('Exit codes: 0 identical echo, 1 any failure, 2 bad usage.');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('udp-echo: unknown command "frobnicate": commands are serve, client, check\n');
  });

  it('exits 0 and prints the round-trip time when the echo is identical', async () => {
    const s = await startEcho();
    const r = await run(['client', `127.0.0.1:${s.port}`, 'hello', 'world']);
    expect(r.code).toBe(CLIENT_EXIT.OK);
    expect(r.stdout).toMatch(/^11 bytes from 127\.0\.0\.1:\d+: identical, rtt \d+\.\d{3} ms \(attempt 1 of 3\)$/);
  });

  it('sends --size random bytes, up to 65,527 over IPv6', async () => {
    const s = await startEcho(['--host', '::1']);
    const r = await run(['client', `[::1]:${s.port}`, '--size', '65527']);
    expect(r.code).toBe(CLIENT_EXIT.OK);
    expect(r.stdout).toMatch(/^65527 bytes from \[::1\]:/);
  });

  it('exits 3 after its retries against a UDP socket that never answers', async () => {
    const port = await server('udp4');
    const r = await run(['client', `127.0.0.1:${port}`, '--timeout', '0.2', '--retries', '2', 'anyone?']);
    expect(r.code).toBe(CLIENT_EXIT.TIMEOUT);
    expect(r.stderr).toMatch(/no reply from 127\.0\.0\.1:\d+ after 3 attempts of 200 ms/);
  });

  it('exits 5 on ICMP port unreachable (ECONNREFUSED) from a closed port', async () => {
    const closed = await bound('udp4', '127.0.0.1');
    const port = closed.address().port;
    closed.close();
    const r = await run(['client', `127.0.0.1:${port}`, '--timeout', '2', 'anyone?']);
    expect(r.code).toBe(CLIENT_EXIT.REFUSED);
    expect(r.stderr).toMatch(/ICMP port unreachable/);
  });

  it('exits 4 when the reply differs from the request', async () => {
    const port = await server('udp4', (msg) => Buffer.from(msg).reverse());
    const r = await run(['client', `127.0.0.1:${port}`, 'abcdef']);
    expect(r.code).toBe(CLIENT_EXIT.MISMATCH);
    expect(r.stderr).toMatch(/differs: sent 6 bytes, received 6, first difference at byte 0/);
  });

  it('exits 4 on an empty reply to a non-empty request (what nginx sends when its UDP backend is down)', async () => {
    const port = await server('udp4', () => Buffer.alloc(0));
    const r = await run(['client', `127.0.0.1:${port}`, 'ping']);
    expect(r.code).toBe(CLIENT_EXIT.MISMATCH);
    expect(r.stderr).toMatch(/empty datagram/);
  });

  it('exits 4 on a truncated reply', async () => {
    const port = await server('udp6', (msg) => msg.subarray(0, msg.length - 1));
    const r = await run(['client', `[::1]:${port}`, '--size', '1000']);
    expect(r.code).toBe(CLIENT_EXIT.MISMATCH);
    expect(r.stderr).toMatch(/received 999, first difference at byte 999/);
  });

  it('exits 2 for a message too large for IPv4, a Unix endpoint, or no target', async () => {
    const big = await run(['client', '127.0.0.1:9', '--size', '65508']);
    expect(big.code).toBe(CLIENT_EXIT.USAGE);
    expect(big.stderr).toMatch(/65508-byte message does not fit in one UDP datagram over IPv4 \(at most 65507 bytes\)/);
    const unix = await run(['client', 'unix:/tmp/x.sock']);
    expect(unix.code).toBe(CLIENT_EXIT.USAGE);
    const none = await run(['client']);
    expect(none.code).toBe(CLIENT_EXIT.USAGE);
  });
});

describe('udp-echo check', () => {
  it('exits 0 against a live server and 1 against a silent or closed port', async () => {
    const s = await startEcho();
    const silent = await server('udp4');
    const [ok, timeout] = await Promise.all([
      run(['check', `127.0.0.1:${s.port}`]),
      run(['check', `127.0.0.1:${silent}`, '--timeout', '0.1', '--retries', '0']),
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: /);
    expect(timeout.code).toBe(1);
    expect(timeout.stderr).toMatch(/^fail: no reply/);
  });
});
