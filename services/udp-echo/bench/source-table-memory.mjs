#!/usr/bin/env node
// Measures the heap cost per tracked source of the rate limiter's table, for IPv4, IPv4-mapped and full IPv6 keys.
// Run after building: node --expose-gc services/udp-echo/bench/source-table-memory.mjs [capacity [kind]]
// The key strings are created the way dgram creates them (one fresh string per datagram) and then only the
// limiter holds them, so the figure includes the address text the table keeps alive.
import { RateLimiter } from '../dist/rate-limiter.js';

if (typeof globalThis.gc !== 'function') {
  console.error('run with node --expose-gc');
  process.exit(2);
}
const capacity = Number(process.argv[2] ?? 100_000);
const limits = { packetsPerSecond: 100, packetBurst: 200, bytesPerSecond: 1_048_576, byteBurst: 2_097_152 };
const kinds = {
  ipv4: (i) => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`,
  'ipv4-mapped': (i) => `::ffff:10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`,
  ipv6: (i) => `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}:1234:5678:9abc:def0`,
};

function heap() {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
}

function measure(kind, key) {
  const before = heap();
  const limiter = new RateLimiter(limits, capacity);
  const empty = heap();
  // dgram's address strings are flat one-byte strings made in C++; a template literal may be a ConsString, bigger.
  for (let i = 0; i < capacity; i++) limiter.check(Buffer.from(key(i), 'latin1').toString('latin1'), 64, 0);
  const full = heap();
  console.log(
    `${kind}: ${capacity} sources; preallocated ${((empty - before) / capacity).toFixed(1)} B/entry, ` +
      `filled ${((full - before) / capacity).toFixed(1)} B/entry, total ${((full - before) / 1048576).toFixed(1)} MiB`,
  );
  if (limiter.size !== capacity) throw new Error('table not full');
}

// One kind per process: a previous table still awaiting collection would skew the next figure.
const only = process.argv[3];
if (only) measure(only, kinds[only]);
else {
  const { execFileSync } = await import('node:child_process');
  for (const kind of Object.keys(kinds)) {
    process.stdout.write(execFileSync(process.execPath, ['--expose-gc', process.argv[1], String(capacity), kind]));
  }
}
