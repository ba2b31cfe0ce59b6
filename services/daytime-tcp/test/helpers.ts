/**
 * Test helpers: start the built bin through the one harness of @net/testkit and wait for its readiness line, talk
 * to it over loopback.
 */
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { type ServiceProcess, startService } from '@net/testkit';

export const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** A running daytime server. */
export type Running = ServiceProcess;

/** Starts `daytime-tcp serve --port 0 ...args` and resolves once it logged `ready:`. */
export function startServer(args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  return startService(BIN, ['serve', '--port', '0', '--log-format', 'json', ...args], { env });
}

/** Connects, reads to EOF, returns the bytes (as latin1 text). */
export function fetchLine(port: number, host = '127.0.0.1', send?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    const chunks: Buffer[] = [];
    socket.on('connect', () => {
      if (send !== undefined) socket.write(send);
    });
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('fetchLine timed out')));
  });
}

/** Scrapes a metric's value from /metrics: the first sample of `name` whose labels contain `labels`. */
export async function metric(admin: string, name: string, labels = ''): Promise<number | undefined> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  for (const line of text.split('\n')) {
    const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m?.[1] === name && (m[2] ?? '').includes(labels)) return Number(m[3]);
  }
  return undefined;
}

/** Polls a metric until it equals `want` (bounded: 60 polls, 50 ms apart); returns the last value seen. */
export async function metricBecomes(
  admin: string,
  name: string,
  labels: string,
  want: number,
): Promise<number | undefined> {
  let value: number | undefined;
  for (let i = 0; i < 60; i++) {
    value = await metric(admin, name, labels);
    if (value === want) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  return value;
}
