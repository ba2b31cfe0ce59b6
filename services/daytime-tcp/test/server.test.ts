import { once } from 'node:events';
import net from 'node:net';
import { stopAllServices } from '@net/testkit';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { formatDaytime } from '../src/format.js';
import { fetchLine, metric, metricBecomes, type Running, startServer } from './helpers.js';

afterEach(() => stopAllServices());

/** Every line the server may have written between `before` and `after` (one per second). */
function linesBetween(before: number, after: number, format: 'ctime' | 'rfc3339' | 'rfc2822', opts = {}): string[] {
  const out: string[] = [];
  for (let s = Math.floor(before / 1000); s <= Math.floor(after / 1000); s++)
    out.push(formatDaytime(new Date(s * 1000), format, opts));
  return out;
}

/** Opens a connection that never reads and never closes (allowHalfOpen keeps our side open after the FIN). */
async function stalledClient(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.pause();
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

describe('daytime-tcp serve over TCP', () => {
  it('answers with the current time as ctime plus CR LF, within one second of the real clock', async () => {
    const server = await startServer(['--utc']);
    const before = Date.now();
    const line = await fetchLine(server.port);
    const after = Date.now();
    expect(line).toMatch(/^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\r\n$/);
    expect(linesBetween(before, after, 'ctime', { utc: true })).toContain(line);
  });

  it('writes the local time of the process as TZ sets it', async () => {
    const server = await startServer([], { TZ: 'Asia/Kolkata' });
    const before = Date.now();
    const line = await fetchLine(server.port);
    const after = Date.now();
    expect(linesBetween(before, after, 'ctime', { tz: 'Asia/Kolkata' })).toContain(line);
  });

  it('writes RFC 3339 and RFC 2822 lines when --format asks for them', async () => {
    const a = await startServer(['--format', 'rfc3339'], { TZ: 'America/St_Johns' });
    const b = await startServer(['--format', 'rfc2822', '--utc']);
    const before = Date.now();
    const [l3339, l2822] = await Promise.all([fetchLine(a.port), fetchLine(b.port)]);
    const after = Date.now();
    expect(linesBetween(before, after, 'rfc3339', { tz: 'America/St_Johns' })).toContain(l3339);
    expect(linesBetween(before, after, 'rfc2822', { utc: true })).toContain(l2822);
  });

  it('answers over IPv6 and dual stack', async () => {
    const server = await startServer(['--host', '::']);
    expect(await fetchLine(server.port, '::1')).toMatch(/\r\n$/);
    expect(await fetchLine(server.port, '127.0.0.1')).toMatch(/\r\n$/);
  });

  describe('under load and with misbehaving clients', () => {
    let server: Running;
    const start = async (args: string[] = []) => {
      server = await startServer(['--admin-port', '0', ...args]);
      return server;
    };
    afterAll(() => stopAllServices());

    it('answers a flood of 1,000 sequential connections, every one of them, and counts them', async () => {
      const { port, adminUrl: admin } = await start();
      let answered = 0;
      for (let i = 0; i < 1000; i++) {
        if ((await fetchLine(port)).length === 26) answered++;
      }
      expect(answered).toBe(1000);
      expect(await metric(admin as string, 'net_requests_total')).toBe(1000);
      expect(await metric(admin as string, 'net_connections_total')).toBe(1000);
    });

    it('answers a client that sends data first, reading and discarding it without a reset', async () => {
      const { port, adminUrl: admin } = await start();
      expect(await fetchLine(port, '127.0.0.1', 'GET / HTTP/1.0\r\n\r\n')).toHaveLength(26);
      // 64 KiB of junk before the answer: still a clean FIN after the line, not an RST that could eat it.
      expect(await fetchLine(port, '127.0.0.1', 'x'.repeat(65_536))).toHaveLength(26);
      expect(await metricBecomes(admin as string, 'net_received_bytes_total', '', 18 + 65_536)).toBe(18 + 65_536);
    });

    it('answers a client that shuts down its sending side at once', async () => {
      const { port } = await start();
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.end();
      const chunks: Buffer[] = [];
      socket.on('data', (d: Buffer) => chunks.push(d));
      await once(socket, 'end');
      socket.destroy();
      expect(Buffer.concat(chunks).toString()).toHaveLength(26);
    });

    it('closes at once, with no error counted, a client that resets the connection after reading its answer', async () => {
      const { port, adminUrl: admin } = await start(['--close-timeout', '30']);
      for (let i = 0; i < 3; i++) {
        const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        socket.on('error', () => {});
        const chunks: Buffer[] = [];
        socket.on('data', (d: Buffer) => chunks.push(d));
        await once(socket, 'end');
        // Input after the answer is still read and discarded (and counted) until the client goes.
        socket.write('bye\r\n');
        expect(await metricBecomes(admin as string, 'net_received_bytes_total', '', 5 * (i + 1))).toBe(5 * (i + 1));
        socket.resetAndDestroy();
        expect(Buffer.concat(chunks).toString()).toHaveLength(26);
      }
      // Not left for --close-timeout (30 s): each reset ended its connection.
      expect(await metricBecomes(admin as string, 'net_connections_open', '', 0)).toBe(0);
      expect(await metric(admin as string, 'net_errors_total', 'code="ECONNRESET"')).toBeUndefined();
      expect(await metric(admin as string, 'net_limit_hits_total', 'close_timeout')).toBe(0);
    });

    it('is not held up by a client that never reads, and destroys it at --close-timeout', async () => {
      const { port, adminUrl: admin } = await start(['--close-timeout', '0.3']);
      const silent = await stalledClient(port);
      try {
        expect(await fetchLine(port)).toHaveLength(26);
        // The silent client got its answer and our FIN; it never closed, so the server destroyed it.
        expect(await metricBecomes(admin as string, 'net_limit_hits_total', 'close_timeout', 1)).toBe(1);
        expect(await metricBecomes(admin as string, 'net_connections_open', '', 0)).toBe(0);
      } finally {
        silent.destroy();
      }
    });

    it('destroys a client that keeps sending junk and never closes, at --close-timeout', async () => {
      const { port, adminUrl: admin } = await start(['--close-timeout', '0.3']);
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', () => {});
      await once(socket, 'connect');
      const timer = setInterval(() => socket.write('junk\r\n'), 20);
      try {
        await new Promise<void>((resolve, reject) => {
          const deadline = setTimeout(() => reject(new Error('not destroyed within 5 s')), 5000);
          socket.once('close', () => {
            clearTimeout(deadline);
            resolve();
          });
        });
        expect(await metric(admin as string, 'net_limit_hits_total', 'close_timeout')).toBe(1);
      } finally {
        clearInterval(timer);
        socket.destroy();
      }
    });

    it('still answers a new client within a second while 1,000 clients are connected and never read', async () => {
      // A backlog of 10 (the default) would make the kernel drop most of a burst of SYNs, and the clients' SYN
      // retries (1 s, 3 s, ...) would only slow the test down; the stall being tested is the server's, not the kernel's.
      const { port, adminUrl: admin } = await start(['--close-timeout', '30', '--backlog', '1024']);
      const stalled: net.Socket[] = [];
      try {
        for (let batch = 0; batch < 10; batch++) {
          stalled.push(...(await Promise.all(Array.from({ length: 100 }, () => stalledClient(port)))));
        }
        expect(await metricBecomes(admin as string, 'net_connections_open', '', 1000)).toBe(1000);
        const t0 = performance.now();
        const line = await fetchLine(port);
        const elapsed = performance.now() - t0;
        expect(line).toHaveLength(26);
        expect(elapsed).toBeLessThan(1000);
        expect(await metric(admin as string, 'net_requests_total')).toBe(1001);
      } finally {
        for (const s of stalled) s.destroy();
      }
    });

    it('closes connections past --max-connections at once and counts them', async () => {
      const { port, adminUrl: admin } = await start(['--max-connections', '3', '--close-timeout', '30']);
      const held = [await stalledClient(port), await stalledClient(port), await stalledClient(port)];
      try {
        expect(await metricBecomes(admin as string, 'net_connections_open', '', 3)).toBe(3);
        expect(await fetchLine(port)).toBe('');
        expect(await metric(admin as string, 'net_connections_rejected_total', 'reason="max_connections"')).toBe(1);
      } finally {
        for (const s of held) s.destroy();
      }
    });
  });
});
