import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { sampleValue, scrapeMetrics, startService, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { binOf } from '../src/bins.js';
import { childPids, isAlive, waitUntil } from '../src/proc-stats.js';
import { recordFigures } from '../src/results.js';
import { connectTo, roundTrip } from '../src/tcp-load.js';

const CONNECTIONS = 40;

afterEach(stopAllServices);

/** Which process holds the service side of each client connection (ss -tnp: the socket's owner pid). */
function ownerOfClientPort(serverPort: number): Map<number, number> {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established', `( sport = :${serverPort} )`], { encoding: 'utf8' });
  const owners = new Map<number, number>();
  for (const line of out.split('\n')) {
    // Local 127.0.0.1:PORT  Peer 127.0.0.1:CLIENTPORT  users:(("node",pid=123,fd=20))
    const peer = /\s127\.0\.0\.1:\d+\s+127\.0\.0\.1:(\d+)\s/.exec(line);
    const pid = /pid=(\d+)/.exec(line);
    if (peer && pid) owners.set(Number(peer[1]), Number(pid[1]));
  }
  return owners;
}

describe('case 7: a worker killed, echo-tcp --workers 2', () => {
  it('keeps the connections of the other worker error-free and replaces the dead worker within a second', async () => {
    const svc = await startService(binOf('echo-tcp'), ['serve', '--port', '0', '--admin-port', '0', '--workers', '2']);
    const primary = svc.proc.pid as number;
    await waitUntil(() => childPids(primary).length >= 2, 10_000, 'two workers');
    const workersBefore = childPids(primary);

    const clients: net.Socket[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const s = await connectTo(svc.port);
      await roundTrip(s, randomBytes(32));
      clients.push(s);
    }
    const owners = ownerOfClientPort(svc.port);
    const ownerOf = (s: net.Socket) => owners.get(s.localPort as number);
    const victim = workersBefore[0] as number;
    const onVictim = clients.filter((s) => ownerOf(s) === victim);
    const onSurvivor = clients.filter((s) => ownerOf(s) !== undefined && ownerOf(s) !== victim);
    expect(onSurvivor.length).toBeGreaterThan(0);

    // Traffic on every survivor connection before, during and after the kill.
    const errors: string[] = [];
    for (const s of onSurvivor) s.on('error', (err) => errors.push((err as NodeJS.ErrnoException).code ?? err.message));
    for (const s of onVictim) s.on('error', () => {});
    let stop = false;
    let pings = 0;
    const traffic = Promise.all(
      onSurvivor.map(async (s) => {
        while (!stop) {
          try {
            await roundTrip(s, randomBytes(64), 2_000);
            pings++;
          } catch (err) {
            errors.push((err as Error).message);
            return;
          }
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 300));
    const killedAt = performance.now();
    process.kill(victim, 'SIGKILL');
    let replacedMs = Number.NaN;
    await waitUntil(
      () => {
        const now = childPids(primary).filter((p) => p !== victim && isAlive(p));
        if (now.length >= 2) replacedMs = performance.now() - killedAt;
        return now.length >= 2;
      },
      5_000,
      'a replacement worker',
      10,
    ).catch(() => {});
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await traffic;
    // A new client after the kill is served too.
    const fresh = await connectTo(svc.port);
    const freshRtt = await roundTrip(fresh, randomBytes(64), 2_000).catch(() => Number.NaN);
    fresh.destroy();
    const scrape = await scrapeMetrics(`${svc.adminUrl}/metrics`).catch(() => undefined);

    const figures = {
      workers: 2,
      connections: CONNECTIONS,
      onKilledWorker: onVictim.length,
      onSurvivingWorker: onSurvivor.length,
      survivorPings: pings,
      survivorErrors: errors.length,
      firstSurvivorError: errors[0] ?? null,
      replacedAfterMs: Number.isNaN(replacedMs) ? null : Math.round(replacedMs),
      newClientRttMs: Number.isNaN(freshRtt) ? null : Number(freshRtt.toFixed(2)),
      workerRestartsMetric: scrape ? (sampleValue(scrape, 'net_worker_restarts_total') ?? null) : null,
      primaryAlive: isAlive(primary),
      pass: false,
    };
    figures.pass = errors.length === 0 && replacedMs < 1_000 && !Number.isNaN(freshRtt) && figures.primaryAlive;
    recordFigures('07-worker-killed', figures);
    for (const s of clients) s.destroy();

    expect(errors).toEqual([]);
    expect(pings).toBeGreaterThan(onSurvivor.length);
    expect(replacedMs).toBeLessThan(1_000);
    expect(Number.isNaN(freshRtt)).toBe(false);
    expect(figures.primaryAlive).toBe(true);
  });
});
