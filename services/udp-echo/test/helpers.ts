/** Shared pieces of the udp-echo tests: the built bin, UDP sockets on loopback, metrics reads. */
import dgram from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { type ServiceProcess, sampleValue, scrapeMetrics, startService } from '@net/testkit';

/** The built bin (`pnpm exec tsc -b` first). */
export const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Starts `udp-echo serve` on 127.0.0.1 port 0 with the admin endpoint and JSON logs, plus `args`. */
export function startEcho(args: readonly string[] = []): Promise<ServiceProcess> {
  return startService(BIN, ['serve', '--port', '0', '--admin-port', '0', '--log-format', 'json', ...args]);
}

/** A UDP socket bound to `address` (port 0 unless given), closed by the caller. */
export async function bound(type: 'udp4' | 'udp6', address: string, port = 0): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  socket.bind(port, address);
  await once(socket, 'listening');
  return socket;
}

/**
 * Sends `payload` to host:port and resolves with the first datagram back, or undefined after `timeoutMs`.
 * Absence of a reply is only ever asserted next to a counter that proves the datagram was processed.
 */
export function exchange(
  socket: dgram.Socket,
  payload: Buffer,
  port: number,
  host: string,
  timeoutMs = 2000,
): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    const onMessage = (msg: Buffer) => finish(msg);
    const onError = (err: Error) => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      reject(err);
    };
    function finish(msg: Buffer | undefined) {
      clearTimeout(timer);
      socket.off('message', onMessage);
      socket.off('error', onError);
      resolve(msg);
    }
    socket.on('message', onMessage);
    socket.once('error', onError);
    socket.send(payload, port, host);
  });
}

/** One sample of the service's /metrics (0 when absent). */
export async function metric(s: ServiceProcess, name: string, labels: Record<string, string> = {}): Promise<number> {
  if (!s.adminUrl) throw new Error('start the service with --admin-port');
  return sampleValue(await scrapeMetrics(`${s.adminUrl}/metrics`), name, labels) ?? 0;
}

/** Polls a metric until `done(value)` (every 20 ms, at most `timeoutMs`); returns the last value either way. */
export async function waitForMetric(
  s: ServiceProcess,
  name: string,
  labels: Record<string, string>,
  done: (value: number) => boolean,
  timeoutMs = 5000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let value = await metric(s, name, labels);
  while (!done(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    value = await metric(s, name, labels);
  }
  return value;
}

/** Payload of `size` bytes with a recognisable pattern (so a truncated or shifted echo is caught). */
export function pattern(size: number, seed = 0): Buffer {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) buf[i] = (i * 31 + seed) & 0xff;
  return buf;
}
