import type net from 'node:net';
import { type Scrape, scrapeMetrics, startService, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { binOf } from '../src/bins.js';
import { isAlive } from '../src/proc-stats.js';
import { badHeader } from '../src/proxy-headers.js';
import { recordFigures } from '../src/results.js';
import { connectTo, runPool } from '../src/tcp-load.js';

const HEADERS = 10_000;
const SEED = 10;
const TIMEOUT_S = 1;

afterEach(stopAllServices);

function reasons(scrape: Scrape): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of scrape.byName.get('net_proxy_header_errors_total')?.metrics ?? []) {
    const reason = m.labels?.reason;
    if (reason !== undefined) out[reason] = Number(m.value);
  }
  return out;
}

/** Sends one bad header; resolves with how the service ended it, or throws if it did not within the bound. */
function sendBad(port: number, i: number): Promise<{ kind: string; echoed: number; ms: number }> {
  const h = badHeader(SEED, i);
  return connectTo(port).then(
    (s: net.Socket) =>
      new Promise((resolve, reject) => {
        const t0 = performance.now();
        let echoed = 0;
        s.on('data', (d: Buffer) => {
          echoed += d.length;
        });
        s.on('error', () => {}); // a reset is a close too
        const timer = setTimeout(
          () => {
            s.destroy();
            reject(new Error(`header ${i} (${h.kind}) not closed within ${TIMEOUT_S + 3} s`));
          },
          (TIMEOUT_S + 3) * 1000,
        );
        s.once('close', () => {
          clearTimeout(timer);
          resolve({ kind: h.kind, echoed, ms: performance.now() - t0 });
        });
        s.write(h.bytes, () => {});
        if (h.fin) s.end();
      }),
  );
}

describe('case 5: malformed PROXY v1 and v2 headers against echo-tcp', () => {
  it(`never crashes, closes each of ${HEADERS} bad headers, and counts each by reason`, async () => {
    const svc = await startService(binOf('echo-tcp'), [
      'serve',
      '--port',
      '0',
      '--admin-port',
      '0',
      '--proxy-protocol',
      '--proxy-timeout',
      String(TIMEOUT_S),
    ]);
    const pid = svc.proc.pid as number;
    const before = reasons(await scrapeMetrics(`${svc.adminUrl}/metrics`));
    const byKind: Record<string, number> = {};
    let echoedAny = 0;
    let maxMs = 0;
    const started = performance.now();
    const run = await runPool(HEADERS, 200, async (i) => {
      const r = await sendBad(svc.port, i);
      byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
      if (r.echoed > 0) echoedAny++;
      maxMs = Math.max(maxMs, r.ms);
    });
    const seconds = (performance.now() - started) / 1000;
    const after = reasons(await scrapeMetrics(`${svc.adminUrl}/metrics`));
    const delta = Object.fromEntries(
      Object.entries(after)
        .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
        .filter(([, v]) => v > 0),
    );
    const counted = Object.values(delta).reduce((a, b) => a + b, 0);
    const alive = isAlive(pid) && svc.proc.exitCode === null;

    const figures = {
      headers: HEADERS,
      seed: SEED,
      seconds: Number(seconds.toFixed(1)),
      closedByService: HEADERS - run.failures.length,
      notClosed: run.failures.length,
      firstNotClosed: run.failures[0] ?? null,
      connectionsThatGotBytesBack: echoedAny,
      slowestCloseMs: Math.round(maxMs),
      countedByReason: delta,
      countedTotal: counted,
      sentByKind: byKind,
      alive,
      pass: false,
    };
    figures.pass =
      alive && run.failures.length === 0 && echoedAny === 0 && counted === HEADERS && Object.keys(delta).length >= 5;
    recordFigures('05-malformed-proxy-headers', figures);

    expect(alive).toBe(true);
    expect(run.failures.slice(0, 5)).toEqual([]);
    expect(echoedAny).toBe(0);
    expect(counted).toBe(HEADERS);
    // Reasons are specific, not one catch-all.
    expect(Object.keys(delta).length).toBeGreaterThanOrEqual(5);
  });
});
