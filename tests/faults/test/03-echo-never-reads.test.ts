import { randomBytes } from 'node:crypto';
import { sampleValue, scrapeMetrics, startService, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { binOf } from '../src/bins.js';
import { MiB, percentile, rssBytes } from '../src/proc-stats.js';
import { recordFigures } from '../src/results.js';
import { connectTo, pingSeries } from '../src/tcp-load.js';

const OFFER_BYTES = 1024 * MiB;
/** The offer stops here even if not all of it was taken: the point is what the service does meanwhile. */
const OFFER_MS = 8_000;
const PINGS = 300;

afterEach(stopAllServices);

describe('case 3: a client that sends and never reads, against echo-tcp', () => {
  it('keeps its RSS under baseline + 64 MiB while 1 GiB is offered, and serves other clients with normal latency', async () => {
    const svc = await startService(binOf('echo-tcp'), ['serve', '--port', '0', '--admin-port', '0']);
    const pid = svc.proc.pid as number;
    // Baseline after a few echoes, so that the first connection's costs are in it.
    await pingSeries(svc.port, 50, randomBytes(64));
    const rssBaseline = rssBytes(pid);

    const hog = await connectTo(svc.port);
    hog.on('error', () => {});
    hog.pause(); // never reads: the echo piles up in the service unless it applies backpressure
    const chunk = randomBytes(MiB);
    let offered = 0;
    let accepted = 0; // bytes the client's kernel took (write callbacks that completed)
    let rssMax = rssBaseline;
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, rssBytes(pid));
    }, 50);
    const started = Date.now();
    const offer = (async () => {
      while (offered < OFFER_BYTES && Date.now() - started < OFFER_MS && !hog.destroyed) {
        offered += chunk.length;
        const flushed = hog.write(chunk, (err) => {
          if (!err) accepted += chunk.length;
        });
        if (!flushed) {
          // Wait for the kernel to take it, but never past the offer's deadline.
          await new Promise<void>((resolve) => {
            const left = Math.max(0, OFFER_MS - (Date.now() - started));
            const t = setTimeout(resolve, left);
            hog.once('drain', () => {
              clearTimeout(t);
              resolve();
            });
          });
        }
      }
    })();
    // Meanwhile, another client pings; wait until the hog has been stuck for a while first.
    await new Promise((r) => setTimeout(r, 1_000));
    const rtts = await pingSeries(svc.port, PINGS, randomBytes(64));
    await offer;
    clearInterval(sampler);
    rssMax = Math.max(rssMax, rssBytes(pid));
    const scrape = await scrapeMetrics(`${svc.adminUrl}/metrics`);
    hog.destroy();

    const p50 = percentile(rtts, 50);
    const p99 = percentile(rtts, 99);
    const figures = {
      offeredBytes: offered,
      acceptedByClientKernelBytes: accepted,
      offerSeconds: Number(((Date.now() - started) / 1000).toFixed(1)),
      rssBaselineMiB: Number((rssBaseline / MiB).toFixed(1)),
      rssMaxMiB: Number((rssMax / MiB).toFixed(1)),
      rssGrowthMiB: Number(((rssMax - rssBaseline) / MiB).toFixed(1)),
      maxBufferedHits: sampleValue(scrape, 'net_limit_hits_total', { limit: 'max_buffered' }) ?? 0,
      receivedBytes: sampleValue(scrape, 'net_received_bytes_total') ?? null,
      pings: rtts.length,
      pingP50Ms: Number(p50.toFixed(2)),
      pingP99Ms: Number(p99.toFixed(2)),
      pingMaxMs: Number(Math.max(...rtts).toFixed(2)),
      pass: false,
    };
    figures.pass = rssMax - rssBaseline < 64 * MiB && rtts.length === PINGS && p99 < 200;
    recordFigures('03-never-reads', figures);

    expect(rssMax - rssBaseline).toBeLessThan(64 * MiB);
    expect(rtts).toHaveLength(PINGS);
    expect(p99).toBeLessThan(200);
    expect(figures.maxBufferedHits).toBeGreaterThanOrEqual(1);
  });
});
