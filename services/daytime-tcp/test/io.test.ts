import { once } from 'node:events';
import net from 'node:net';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchLine, metric, metricBecomes, startServer } from './helpers.js';

afterEach(() => stopAllServices());

/** A client that connects, reads the whole answer, and resets once it has it (as the bench's clients do). */
async function readThenReset(port: number): Promise<string> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  await once(socket, 'end');
  socket.resetAndDestroy();
  return Buffer.concat(chunks).toString();
}

// The other test files run on the default (--io auto: the accepted handle through @net/core's raw handles, on this Node); these
// pin that the net.Socket path (--io stream, and auto where Node lacks the internals) and the handle path behave
// alike where they differ most: counting, half-close, resets, the limits.
describe.each(['auto', 'stream'] as const)('daytime-tcp serve --io %s', (io) => {
  it('answers 200 connections in a row, counts them, and closes each when its client resets after the answer', async () => {
    const { port, adminUrl: admin } = await startServer(['--io', io, '--admin-port', '0', '--close-timeout', '30']);
    let answered = 0;
    for (let i = 0; i < 200; i++) if ((await readThenReset(port)).length === 26) answered++;
    expect(answered).toBe(200);
    expect(await metricBecomes(admin as string, 'net_connections_open', '', 0)).toBe(0);
    expect(await metric(admin as string, 'net_requests_total')).toBe(200);
    expect(await metric(admin as string, 'net_sent_bytes_total')).toBe(200 * 26);
    expect(await metric(admin as string, 'net_connections_total')).toBe(200);
    expect(await metric(admin as string, 'net_connection_duration_seconds_count')).toBe(200);
    expect(await metric(admin as string, 'net_errors_total', 'code="ECONNRESET"')).toBeUndefined();
  });

  it('answers a client that half-closed at once and one that sent data first, then sees both close', async () => {
    const { port, adminUrl: admin } = await startServer(['--io', io, '--admin-port', '0']);
    const halfClosed = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    halfClosed.end();
    const chunks: Buffer[] = [];
    halfClosed.on('data', (d: Buffer) => chunks.push(d));
    await once(halfClosed, 'end');
    halfClosed.destroy();
    expect(Buffer.concat(chunks).toString()).toHaveLength(26);
    expect(await fetchLine(port, '127.0.0.1', 'hello\r\n')).toHaveLength(26);
    expect(await metricBecomes(admin as string, 'net_received_bytes_total', '', 7)).toBe(7);
    expect(await metricBecomes(admin as string, 'net_connections_open', '', 0)).toBe(0);
  });

  it('closes connections past --max-connections at once and counts them', async () => {
    const { port, adminUrl: admin } = await startServer(['--io', io, '--admin-port', '0', '--max-connections', '2']);
    const held = [0, 1].map(() => net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }).on('error', () => {}));
    for (const s of held) s.pause();
    try {
      expect(await metricBecomes(admin as string, 'net_connections_open', '', 2)).toBe(2);
      expect(await fetchLine(port)).toBe('');
      expect(await metric(admin as string, 'net_connections_rejected_total', 'reason="max_connections"')).toBe(1);
    } finally {
      for (const s of held) s.destroy();
    }
    // The held ones close too (their answers were written; the server destroys them or they go): none left.
    expect(await metricBecomes(admin as string, 'net_connections_open', '', 0)).toBe(0);
  });
});
