#!/usr/bin/env node
// Loopback throughput of the built server: one client socket keeps WINDOW datagrams of SIZE bytes in flight for
// SECONDS, then prints echoes/s and the server's CPU time per datagram (from /proc/PID/stat, the steadiest figure on
// a shared machine; docs/measurements.md §7). Rate limits are off so that the echo path itself is measured, then on (defaults
// raised so nothing is dropped) to show the limiter's cost.
// Usage: node services/udp-echo/bench/throughput.mjs [seconds=3] [window=32] [size=64]
import dgram from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, startService } from '@net/test-support';

const [seconds = 3, window = 32, size = 64] = process.argv.slice(2).map(Number);
const bin = fileURLToPath(new URL('../dist/main.js', import.meta.url));

async function run(label, args) {
  const server = await startService(bin, ['--port', '0', '--log-format', 'json', ...args]);
  const port = server.port;
  const client = dgram.createSocket('udp4');
  client.connect(port, '127.0.0.1');
  await once(client, 'connect');
  const payload = Buffer.alloc(size, 0x61);
  let echoed = 0;
  let running = true;
  client.on('message', () => {
    echoed++;
    if (running) client.send(payload);
  });
  const cpu0 = cpuSeconds(server.proc.pid);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < window; i++) client.send(payload);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(server.proc.pid) - cpu0;
  client.close();
  server.destroy();
  console.log(
    `${label}: ${size} B x ${window} in flight: ${Math.round(echoed / elapsed)} echoes/s, server CPU ${((cpu / echoed) * 1e6).toFixed(1)} µs per datagram (${process.version})`,
  );
}

await run('no limits', ['--rate-limit-packets', '0', '--rate-limit-bytes', '0']);
await run('rate limiter on', [
  '--rate-limit-packets',
  '10000000',
  '--rate-limit-packet-burst',
  '10000000',
  '--rate-limit-bytes',
  '0',
]);
