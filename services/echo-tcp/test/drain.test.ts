import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, connectTo, receive, startEcho } from './helpers.js';

// HAProxy 2.6's own v2 header (192.0.2.100:60700 -> 192.0.2.2:7000), as in proxy-protocol.test.ts.
const HAPROXY_V2 = Buffer.from('0d0a0d0a000d0a515549540a2111000cc0000264c0000202ed1c1b58', 'hex');

describe('drain on SIGTERM', () => {
  afterEach(stopAllServices);

  it.each([
    ['a plain listener', []],
    ['a PROXY listener (connections moved to the fast path after their header)', ['--proxy-protocol']],
  ])(
    'under load on %s, echoes what it received before the signal, closes each connection in order, and exits 0',
    async (_, args) => {
      const service = await startEcho(['--drain-timeout', '10', ...args]);
      const proxied = args.length > 0;
      const clients = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const socket = await connectTo(service.port);
          const payload = randomBytes(2 << 20);
          const first = receive(socket, 1, 5000);
          const done = collect(socket);
          // The server's FIN ends our side too (allowHalfOpen off): the stream stops at the server's word.
          socket.on('error', () => {});
          if (proxied) socket.write(HAPROXY_V2);
          socket.write(payload);
          await first;
          return { payload, done };
        }),
      );
      // Every connection is echoing, most of its 2 MiB still in flight.
      service.kill('SIGTERM');
      const results = await Promise.all(clients.map((c) => c.done));
      let total = 0;
      results.forEach((r, i) => {
        const sent = clients[i]?.payload as Buffer;
        expect(r.how).toBe('eof');
        expect(r.data.length).toBeGreaterThan(0);
        // Whatever came back is the exact beginning of what was sent: nothing lost in the middle, nothing reordered.
        expect(r.data.equals(sent.subarray(0, r.data.length))).toBe(true);
        total += r.data.length;
      });
      expect(total).toBeGreaterThan(0);
      const exit = await service.exited;
      expect(exit.code).toBe(0);
      expect(service.lines.some((l) => l.msg === 'stopped')).toBe(true);
    },
  );

  it('a connection still waiting for its PROXY header when the drain starts finishes it, gets what came with it echoed, then FIN', async () => {
    // A load balancer connects, and its header and the client's first bytes follow: a drain beginning in between
    // must not drop the connection (HAProxy could not retry it: it has connected already).
    const service = await startEcho(['--drain-timeout', '10', '--proxy-protocol', '--log-level', 'debug']);
    const socket = await connectTo(service.port);
    const got = collect(socket);
    socket.on('error', () => {});
    await service.waitForLine((l) => l.msg === 'connection opened', 5000);
    service.kill('SIGTERM');
    await service.waitForLine((l) => String(l.msg).startsWith('draining'), 5000);
    const payload = randomBytes(1024);
    socket.end(Buffer.concat([HAPROXY_V2, payload]));
    const result = await got;
    expect(result.how).toBe('eof');
    expect(result.data.equals(payload)).toBe(true);
    expect((await service.exited).code).toBe(0);
  });

  it('a connection whose PROXY header completes during the drain is drained at once: what came with the header is echoed, then FIN, though the client has not closed', async () => {
    // --drain-timeout 60: a connection left echoing instead of drained would get its FIN only then, long after the
    // bounded wait below.
    const service = await startEcho(['--drain-timeout', '60', '--proxy-protocol', '--log-level', 'debug']);
    const socket = await connectTo(service.port);
    const got = collect(socket);
    socket.on('error', () => {});
    await service.waitForLine((l) => l.msg === 'connection opened', 5000);
    service.kill('SIGTERM');
    await service.waitForLine((l) => String(l.msg).startsWith('draining'), 5000);
    const payload = randomBytes(1024);
    socket.write(Buffer.concat([HAPROXY_V2, payload]));
    const result = await Promise.race([got, sleep(15_000).then(() => 'no FIN 15 s after the header')]);
    expect(typeof result === 'string' ? result : { how: result.how, echoed: result.data.equals(payload) }).toEqual({
      how: 'eof',
      echoed: true,
    });
    expect((await service.exited).code).toBe(0);
  });

  it('a client that half-closes during the drain gets every byte it sent back', async () => {
    const service = await startEcho(['--drain-timeout', '10', '--delay-ms', '100']);
    const socket = await connectTo(service.port);
    const payload = randomBytes(256 * 1024);
    const got = collect(socket);
    socket.write(payload);
    // With --delay-ms the echo is still owed when the signal comes.
    await receive(socket, 1, 5000);
    service.kill('SIGTERM');
    socket.end();
    const result = await got;
    expect(result.how).toBe('eof');
    expect(result.data.equals(payload)).toBe(true);
    expect((await service.exited).code).toBe(0);
  });
});
