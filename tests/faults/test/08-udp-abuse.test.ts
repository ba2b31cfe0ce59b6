import dgram from 'node:dgram';
import { Worker } from 'node:worker_threads';
import { type Scrape, sampleValue, scrapeMetrics, startService, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { binOf } from '../src/bins.js';
import { isAlive, MiB, rssBytes } from '../src/proc-stats.js';
import { recordFigures } from '../src/results.js';

const SOURCES = 100_000;
const TABLE = 4_096;
const FLOOD_CONCURRENCY = 32;

const sockets: dgram.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await stopAllServices();
});

const FLOOD_SCRIPT = new URL('../fixtures/udp-flood.mjs', import.meta.url);

interface FloodResult {
  sent: number;
  failures: number;
  firstFailure: string | null;
  seconds: number;
}

/** Runs the flood (fixtures/udp-flood.mjs) in a worker thread; resolves with its counts. */
function flood(port: number): Promise<FloodResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(FLOOD_SCRIPT, { workerData: { port, sources: SOURCES, concurrency: FLOOD_CONCURRENCY } });
    w.once('message', (m: FloodResult) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`flood worker exited with ${code}`));
    });
  });
}

function bindUdp(address: string, port = 0): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(port, address, () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
  });
}

function drops(scrape: Scrape): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of scrape.byName.get('net_datagrams_dropped_total')?.metrics ?? []) {
    if (m.labels?.reason !== undefined) out[m.labels.reason] = Number(m.value);
  }
  return out;
}

/** /proc/net/snmp Udp RcvbufErrors: datagrams the kernel dropped because a receive buffer was full. */
async function rcvbufErrors(): Promise<number> {
  const { readFileSync } = await import('node:fs');
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const names = (lines[0] ?? '').split(/\s+/);
  const values = (lines[1] ?? '').split(/\s+/);
  return Number(values[names.indexOf('RcvbufErrors')]);
}

describe('case 8: UDP abuse against udp-echo', () => {
  it(`keeps its source table within ${TABLE} for ${SOURCES} distinct sources, answers a well-behaved client, and counts drops by reason`, async () => {
    const svc = await startService(binOf('udp-echo'), [
      'serve',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--rate-limit-sources',
      String(TABLE),
      '--recv-buffer',
      String(4 * MiB),
    ]);
    const pid = svc.proc.pid as number;
    const metricsUrl = `${svc.adminUrl}/metrics`;
    const rssStart = rssBytes(pid);
    const rcvbufStart = await rcvbufErrors();

    // The well-behaved client: one datagram every 20 ms (50/s, under the 100/s per-source rate), each must come back.
    const good = await bindUdp('127.0.0.1');
    sockets.push(good);
    let goodSent = 0;
    let goodAnswered = 0;
    good.on('message', () => {
      goodAnswered++;
    });
    const goodTimer = setInterval(() => {
      goodSent++;
      good.send(Buffer.from(`ping ${goodSent}`), svc.port, '127.0.0.1');
    }, 20);

    // An abusive single source: 2,000 datagrams at once, far over its burst of 200.
    const hog = await bindUdp('127.0.0.2');
    sockets.push(hog);
    for (let i = 0; i < 2_000; i++) hog.send(Buffer.from('x'), svc.port, '127.0.0.1');

    // A guarded source port (reflection guard, CVE-1999-0103): the first of its list that is free here.
    let guarded: dgram.Socket | undefined;
    for (const p of [37, 177, 427, 3283, 5683, 10001]) {
      guarded = await bindUdp('127.0.0.3', p).catch(() => undefined);
      if (guarded) break;
    }
    if (guarded) {
      sockets.push(guarded);
      for (let i = 0; i < 10; i++) guarded.send(Buffer.from('reflect me'), svc.port, '127.0.0.1');
    }

    // The flood: one datagram from each of 100,000 distinct source addresses.
    let tableMax = 0;
    const sampler = setInterval(() => {
      scrapeMetrics(metricsUrl)
        .then((s) => {
          tableMax = Math.max(tableMax, sampleValue(s, 'net_rate_limit_sources') ?? 0);
        })
        .catch(() => {});
    }, 250);
    const flooded = await flood(svc.port);
    await new Promise((r) => setTimeout(r, 500));
    clearInterval(goodTimer);
    clearInterval(sampler);
    await new Promise((r) => setTimeout(r, 300));
    const scrape = await scrapeMetrics(metricsUrl);
    tableMax = Math.max(tableMax, sampleValue(scrape, 'net_rate_limit_sources') ?? 0);
    const dropped = drops(scrape);
    const rssEnd = rssBytes(pid);

    const figures = {
      distinctSources: SOURCES,
      floodSent: flooded.sent,
      floodFailures: flooded.failures,
      firstFloodFailure: flooded.firstFailure,
      floodSeconds: Number(flooded.seconds.toFixed(1)),
      sourceTableBound: TABLE,
      sourceTableMaxSeen: tableMax,
      received: sampleValue(scrape, 'net_datagrams_received_total') ?? null,
      answered: sampleValue(scrape, 'net_datagrams_sent_total') ?? null,
      droppedByReason: dropped,
      kernelRcvbufDrops: (await rcvbufErrors()) - rcvbufStart,
      goodClientSent: goodSent,
      goodClientAnswered: goodAnswered,
      goodClientAnsweredShare: Number((goodAnswered / goodSent).toFixed(3)),
      guardedPortTested: guarded ? guarded.address().port : null,
      rssStartMiB: Number((rssStart / MiB).toFixed(1)),
      rssEndMiB: Number((rssEnd / MiB).toFixed(1)),
      alive: isAlive(pid),
      pass: false,
    };
    figures.pass =
      figures.alive &&
      tableMax <= TABLE &&
      goodAnswered / goodSent >= 0.95 &&
      (dropped.table_full ?? 0) > 0 &&
      (dropped.rate_limit_packets ?? 0) > 0 &&
      (!guarded || (dropped.reflection_guard ?? 0) >= 10);
    recordFigures('08-udp-abuse', figures);

    // A few sends may fail with EPERM when the host's conntrack table is full (a property of the host, not of the
    // service): at least 99 % of the sources must have sent.
    expect(flooded.sent).toBeGreaterThanOrEqual(SOURCES * 0.99);
    expect(figures.alive).toBe(true);
    expect(tableMax).toBeLessThanOrEqual(TABLE);
    expect(goodAnswered / goodSent).toBeGreaterThanOrEqual(0.95);
    expect(dropped.table_full ?? 0).toBeGreaterThan(0);
    expect(dropped.rate_limit_packets ?? 0).toBeGreaterThan(0);
    if (guarded) expect(dropped.reflection_guard ?? 0).toBeGreaterThanOrEqual(10);
  });
});
