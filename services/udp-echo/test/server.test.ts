import type dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { runToExit, scrapeMetrics, startService, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, bound, exchange, metric, pattern, startEcho as startEchoWith, waitForMetric } from './helpers.js';

// Rate limits off unless a test is about them: these tests send faster than any sane per-source default.
const NO_LIMITS = ['--rate-limit-packets', '0', '--rate-limit-bytes', '0'];

const sockets: dgram.Socket[] = [];
async function client(type: 'udp4' | 'udp6' = 'udp4', address = type === 'udp4' ? '127.0.0.1' : '::1', port = 0) {
  const s = await bound(type, address, port);
  sockets.push(s);
  return s;
}

afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await stopAllServices();
});

describe('udp-echo --io auto', () => {
  it('answers with the batch engine at the default log level and at debug: logging does not choose the engine', async () => {
    const info = await startEchoWith([]);
    expect((await info.waitForLine((l) => l.msg === 'datagram I/O')).io).toBe('batch');
    const debug = await startEchoWith(['--log-level', 'debug']);
    expect((await debug.waitForLine((l) => l.msg === 'datagram I/O')).io).toBe('batch');
    const c = await client();
    expect((await exchange(c, Buffer.from('auto'), info.port, '127.0.0.1'))?.toString()).toBe('auto');
    expect((await exchange(c, Buffer.from('debug'), debug.port, '127.0.0.1'))?.toString()).toBe('debug');
  });

  it('falls back to dgram where the fence says no (NET_NODE_INTERNALS=off): one warning naming it, and it answers', async () => {
    const service = await startService(
      BIN,
      ['serve', '--port', '0', '--admin-port', '0', '--log-format', 'json', '--io', 'auto'],
      { env: { NET_NODE_INTERNALS: 'off' } },
    );
    expect((await service.waitForLine((l) => l.msg === 'datagram I/O')).io).toBe('dgram');
    const warnings = service.lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.msg).toMatch(/^batched datagram I\/O unavailable/);
    expect(String(warnings[0]?.reason)).toMatch(/NET_NODE_INTERNALS=off/);
    const c = await client();
    expect((await exchange(c, Buffer.from('fallback'), service.port, '127.0.0.1'))?.toString()).toBe('fallback');
  });

  it('refuses --io batch where the fence says no (NET_NODE_INTERNALS=off), exit 2 with the reason', async () => {
    const r = await runToExit(BIN, ['serve', '--port', '0', '--io', 'batch'], { env: { NET_NODE_INTERNALS: 'off' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--io "batch": expected auto or dgram here \(NET_NODE_INTERNALS=off/);
  });

  it('refuses an unknown --io with the accepted values (exit 2)', async () => {
    const r = await runToExit(BIN, ['serve', '--io', 'fast']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--io.*"fast".*auto, batch, dgram/);
  });
});

describe.each(['batch', 'dgram'] as const)('udp-echo serve --io %s', (io) => {
  const startEcho = (args: readonly string[] = []) => startEchoWith(['--io', io, ...args]);
  it('sends every datagram back unchanged: 0, 1, 1472 and 65,507 bytes over IPv4', async () => {
    const s = await startEcho(NO_LIMITS);
    const c = await client();
    for (const size of [0, 1, 1472, 65_507]) {
      const payload = pattern(size, size);
      const reply = await exchange(c, payload, s.port, '127.0.0.1');
      expect(reply?.length, `size ${size}`).toBe(size);
      expect(reply?.equals(payload), `size ${size}`).toBe(true);
    }
    expect(await metric(s, 'net_datagrams_sent_total')).toBe(4);
    expect(await metric(s, 'net_sent_bytes_total')).toBe(1 + 1472 + 65_507);
  });

  it('shows no TCP connection metrics: it is a UDP service', async () => {
    const s = await startEcho(NO_LIMITS);
    await exchange(await client(), pattern(8), s.port, '127.0.0.1');
    const names = [...(await scrapeMetrics(`${s.adminUrl}/metrics`)).byName.keys()];
    expect(names).toContain('net_datagrams_received_total');
    expect(names.filter((n) => n.startsWith('net_connections'))).toEqual([]);
  });

  it('echoes up to 65,527 bytes over IPv6 (::1)', async () => {
    const s = await startEcho(['--host', '::1', ...NO_LIMITS]);
    expect(s.endpoints).toEqual([`[::1]:${s.port}`]);
    const c = await client('udp6');
    for (const size of [0, 1, 1452, 65_527]) {
      const payload = pattern(size, 7);
      const reply = await exchange(c, payload, s.port, '::1');
      expect(reply?.equals(payload), `size ${size}`).toBe(true);
    }
  });

  it('on :port answers IPv4 and IPv6 clients on one dual-stack socket', async () => {
    const s = await startEcho(['--host', '::', ...NO_LIMITS]);
    expect(s.endpoints).toEqual([`[::]:${s.port}`]);
    const v4 = await client('udp4');
    const v6 = await client('udp6');
    expect((await exchange(v4, Buffer.from('over IPv4'), s.port, '127.0.0.1'))?.toString()).toBe('over IPv4');
    expect((await exchange(v6, Buffer.from('over IPv6'), s.port, '::1'))?.toString()).toBe('over IPv6');
  });

  it('answers 10,000 datagrams sent in bursts of 100 and reports the loss', async () => {
    const s = await startEcho(NO_LIMITS);
    const c = await client();
    const bursts = 100;
    const perBurst = 100;
    const seen = new Uint8Array(bursts * perBurst);
    let corrupt = 0;
    let distinct = 0;
    let waiter: { until: number; resolve: () => void } | undefined;
    c.on('message', (msg: Buffer) => {
      const seq = msg.readUInt32BE(0);
      if (msg.length !== 64 || seq >= seen.length || !msg.subarray(4).equals(pattern(60, seq & 0xff))) corrupt++;
      else if (seen[seq] === 0) {
        seen[seq] = 1;
        distinct++;
      }
      if (waiter && distinct >= waiter.until) waiter.resolve();
    });
    const started = Date.now();
    for (let b = 0; b < bursts; b++) {
      const expected = (b + 1) * perBurst;
      // Wait for this burst's echoes (at most 1 s per burst), so bursts never overrun the socket buffers.
      const burstDone = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        waiter = {
          until: expected,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      });
      for (let i = 0; i < perBurst; i++) {
        const seq = b * perBurst + i;
        const payload = Buffer.concat([Buffer.alloc(4), pattern(60, seq & 0xff)]);
        payload.writeUInt32BE(seq, 0);
        c.send(payload, s.port, '127.0.0.1');
      }
      await burstDone;
    }
    const received = distinct;
    const loss = 1 - received / seen.length;
    console.log(
      `udp-echo burst test: ${seen.length} datagrams of 64 bytes in ${bursts} bursts, ${received} echoed, loss ${(loss * 100).toFixed(2)}%, ${Date.now() - started} ms`,
    );
    expect(corrupt).toBe(0);
    expect(loss).toBeLessThan(0.05);
    expect(await metric(s, 'net_datagrams_received_total')).toBeGreaterThanOrEqual(received);
  });

  it('never answers a source port on the reflection guard list, and counts the drop', async () => {
    const guarded = await client();
    const guardedPort = guarded.address().port;
    const s = await startEcho(['--guard-ports', `7,19,${guardedPort}`, ...NO_LIMITS]);
    let answered = 0;
    guarded.on('message', () => answered++);
    guarded.send(Buffer.from('loop?'), s.port, '127.0.0.1');
    expect(await waitForMetric(s, 'net_datagrams_dropped_total', { reason: 'reflection_guard' }, (v) => v >= 1)).toBe(
      1,
    );
    // A control datagram sent afterwards on the same path is answered: the guarded one was processed, not lost.
    const other = await client();
    expect((await exchange(other, Buffer.from('fine'), s.port, '127.0.0.1'))?.toString()).toBe('fine');
    guarded.send(Buffer.from('loop?'), s.port, '127.0.0.1');
    expect(await waitForMetric(s, 'net_datagrams_dropped_total', { reason: 'reflection_guard' }, (v) => v >= 2)).toBe(
      2,
    );
    expect((await exchange(other, Buffer.from('still fine'), s.port, '127.0.0.1'))?.toString()).toBe('still fine');
    expect(answered).toBe(0);
    expect(await metric(s, 'net_datagrams_sent_total')).toBe(2);
  });

  it('at debug level logs each dropped datagram with its reason, source and size', async () => {
    const guarded = await client();
    const limited = await client();
    const s = await startEcho([
      '--log-level',
      'debug',
      '--guard-ports',
      String(guarded.address().port),
      '--rate-limit-packets',
      '1',
      '--rate-limit-packet-burst',
      '1',
    ]);
    for (const size of [3, 4, 5]) guarded.send(pattern(size), s.port, '127.0.0.1');
    // The first datagram takes the only token; the second finds the bucket empty (1/s refills none in time).
    expect((await exchange(limited, Buffer.from('first'), s.port, '127.0.0.1'))?.toString()).toBe('first');
    limited.send(pattern(6), s.port, '127.0.0.1');
    const dropLines = () => s.lines.filter((l) => l.msg === 'datagram dropped');
    for (let i = 0; i < 100 && dropLines().length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    const logged = dropLines().map((l) => [l.reason, l.peer, l.size, l.level]);
    expect(logged).toHaveLength(4);
    expect(logged).toEqual(
      expect.arrayContaining([
        ['reflection_guard', `127.0.0.1:${guarded.address().port}`, 3, 20],
        ['reflection_guard', `127.0.0.1:${guarded.address().port}`, 4, 20],
        ['reflection_guard', `127.0.0.1:${guarded.address().port}`, 5, 20],
        ['rate_limit_packets', `127.0.0.1:${limited.address().port}`, 6, 20],
      ]),
    );
    expect(await metric(s, 'net_datagrams_dropped_total', { reason: 'reflection_guard' })).toBe(3);
    expect(await metric(s, 'net_datagrams_dropped_total', { reason: 'rate_limit_packets' })).toBe(1);
  });

  it('logs no dropped datagram one by one at the default log level', async () => {
    const guarded = await client();
    const s = await startEcho(['--guard-ports', String(guarded.address().port), ...NO_LIMITS]);
    guarded.send(Buffer.from('loop?'), s.port, '127.0.0.1');
    expect(await waitForMetric(s, 'net_datagrams_dropped_total', { reason: 'reflection_guard' }, (v) => v >= 1)).toBe(
      1,
    );
    // A later datagram answered proves the drop was processed before we look at the log.
    expect((await exchange(await client(), Buffer.from('after'), s.port, '127.0.0.1'))?.toString()).toBe('after');
    await new Promise((r) => setTimeout(r, 250)); // longer than the batch engine's 100 ms between drop reports
    expect(s.lines.filter((l) => l.msg === 'datagram dropped')).toEqual([]);
  });

  it('trips the per-source datagram limit on a burst and answers again once the bucket refills', async () => {
    const s = await startEcho([
      '--rate-limit-packets',
      '20',
      '--rate-limit-packet-burst',
      '5',
      '--rate-limit-bytes',
      '0',
    ]);
    const c = await client();
    let answered = 0;
    c.on('message', () => answered++);
    for (let i = 0; i < 30; i++) c.send(Buffer.from(`burst ${i}`), s.port, '127.0.0.1');
    const dropped = await waitForMetric(
      s,
      'net_datagrams_dropped_total',
      { reason: 'rate_limit_packets' },
      (v) => v >= 20,
    );
    await waitForMetric(s, 'net_datagrams_received_total', {}, (v) => v >= 30);
    // 5 of burst, plus at most a token or two refilled (20/s) while the 30 datagrams arrived.
    expect(dropped).toBeGreaterThanOrEqual(20);
    expect(await metric(s, 'net_datagrams_sent_total')).toBe(
      30 - (await metric(s, 'net_datagrams_dropped_total', { reason: 'rate_limit_packets' })),
    );
    // Recovery: 20/s refills a token every 50 ms; poll with a datagram every 100 ms, at most 20 times.
    c.removeAllListeners('message');
    let recovered: Buffer | undefined;
    for (let i = 0; i < 20 && recovered === undefined; i++)
      recovered = await exchange(c, Buffer.from('again'), s.port, '127.0.0.1', 100);
    expect(recovered?.toString()).toBe('again');
    expect(answered).toBeLessThanOrEqual(10);
  });

  it('trips the per-source byte limit on large datagrams and counts it as rate_limit_bytes', async () => {
    const s = await startEcho([
      '--rate-limit-packets',
      '0',
      '--rate-limit-bytes',
      '1000',
      '--rate-limit-byte-burst',
      '65527',
    ]);
    const c = await client();
    expect((await exchange(c, pattern(40_000), s.port, '127.0.0.1'))?.length).toBe(40_000);
    c.send(pattern(40_000), s.port, '127.0.0.1');
    expect(await waitForMetric(s, 'net_datagrams_dropped_total', { reason: 'rate_limit_bytes' }, (v) => v >= 1)).toBe(
      1,
    );
    // 25,527 bytes left in the bucket: a small datagram still passes.
    expect((await exchange(c, Buffer.from('small'), s.port, '127.0.0.1'))?.toString()).toBe('small');
  });

  it('keeps the source table bounded under 2,000 real sources across 127.0.0.0/8, and keeps answering a tracked client', async () => {
    const capacity = 256;
    // Refill time max(50 / 10, 2 MiB / 1 MiB) = 5 s: during the test no tracked source becomes idle.
    const s = await startEcho([
      '--rate-limit-sources',
      String(capacity),
      '--rate-limit-packets',
      '10',
      '--rate-limit-packet-burst',
      '50',
    ]);
    const steady = await client();
    expect((await exchange(steady, Buffer.from('hello'), s.port, '127.0.0.1'))?.toString()).toBe('hello');
    const sources = 2000;
    const batch = 100;
    for (let b = 0; b < sources / batch; b++) {
      const batchSockets = await Promise.all(
        Array.from({ length: batch }, (_, i) => {
          const n = b * batch + i;
          return bound('udp4', `127.1.${n >> 8}.${n & 0xff}`);
        }),
      );
      for (const sock of batchSockets) sock.send(Buffer.from('x'), s.port, '127.0.0.1');
      await waitForMetric(s, 'net_datagrams_received_total', {}, (v) => v >= 1 + (b + 1) * batch, 2000);
      for (const sock of batchSockets) sock.close();
      // The tracked client is answered between batches, however full the table is.
      if (b % 5 === 4)
        expect((await exchange(steady, Buffer.from(`steady ${b}`), s.port, '127.0.0.1'))?.toString()).toBe(
          `steady ${b}`,
        );
    }
    const received = await metric(s, 'net_datagrams_received_total');
    const tableFull = await metric(s, 'net_datagrams_dropped_total', { reason: 'table_full' });
    const tracked = await metric(s, 'net_rate_limit_sources');
    console.log(
      `udp-echo source table: ${received} datagrams from ${sources + 1} sources, table ${tracked}/${capacity}, table_full drops ${tableFull}`,
    );
    expect(tracked).toBe(capacity);
    // The steady client holds one slot, the first 255 sources the others; the rest find the table full of sources
    // active within the refill time. A datagram lost on loopback would lower the count, hence the small margin.
    expect(tableFull).toBeLessThanOrEqual(sources - (capacity - 1));
    expect(tableFull).toBeGreaterThan(sources - capacity - 20);
  });

  it('refuses a Unix socket endpoint with a message naming it', async () => {
    const r = await runToExit(BIN, ['serve', '--listen', 'unix:/tmp/udp-echo-test.sock']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unix:\/tmp\/udp-echo-test\.sock.*UDP over IP/);
  });

  it('keeps answering during a drain and exits 0 once the traffic has stopped', async () => {
    const s = await startEcho(['--drain-quiet', '0.5', ...NO_LIMITS]);
    const c = await client();
    expect((await exchange(c, Buffer.from('before'), s.port, '127.0.0.1'))?.toString()).toBe('before');
    s.kill('SIGTERM');
    await s.waitForLine((l) => typeof l.msg === 'string' && l.msg.startsWith('draining'));
    expect((await exchange(c, Buffer.from('during'), s.port, '127.0.0.1'))?.toString()).toBe('during');
    const exit = await s.exited;
    expect(exit.code).toBe(0);
  });

  it('logs the effective socket buffer sizes it was given with --recv-buffer and --send-buffer', async () => {
    const s = await startEcho(['--recv-buffer', '1048576', '--send-buffer', '262144']);
    const line = await s.waitForLine(
      (l) => l.msg === 'socket buffers' || String(l.msg).startsWith('socket buffer smaller'),
    );
    // Linux doubles the size asked for and caps the request at net.core.rmem_max / wmem_max (socket(7)).
    const max = (name: string) => Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8'));
    expect(line.recvBufferSize).toBe(2 * Math.min(1_048_576, max('rmem_max')));
    expect(line.sendBufferSize).toBe(2 * Math.min(262_144, max('wmem_max')));
    expect(line.level).toBe(line.msg === 'socket buffers' ? 30 : 40);
  });

  it('with --workers 2 answers every client', async () => {
    // A fixed port below the ephemeral range: with SO_REUSEPORT each worker binds its own socket, and port 0 would
    // give each a different port.
    const port = 20_000 + (process.pid % 5000);
    const s = await startService(BIN, [
      'serve',
      '--port',
      String(port),
      '--admin-port',
      '0',
      '--workers',
      '2',
      '--io',
      io,
      ...NO_LIMITS,
    ]);
    for (let i = 0; i < 20; i++) {
      const c = await client();
      expect((await exchange(c, Buffer.from(`w${i}`), port, '127.0.0.1'))?.toString()).toBe(`w${i}`);
    }
    expect(await waitForMetric(s, 'net_datagrams_sent_total', {}, (v) => v >= 20)).toBe(20);
  });
});
