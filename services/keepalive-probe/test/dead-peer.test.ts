/**
 * Real dead and live peers across a veth link between two network namespaces (root, iproute2 and nft needed).
 *
 * Timing model (docs/measurements.md §1.4): the first unanswered probe leaves at the next keepalive tick after the death (at
 * most `interval` later, the idle connection being probed already) and the kernel gives up `count x interval` after
 * it; so with 1 s / 1 s / 3 the report comes 3 to 4 s after the blackhole, inside the bound
 * idle + interval x (count - 1) = 3 s .. idle + interval x count + 1 s = 5 s. Each bound is checked against the
 * interval during which the blackhole took effect (the lower one from its start, the upper one from its end), so
 * the milliseconds the nft command takes cannot make either check pass wrongly.
 *
 * The tests run concurrently (each owns its namespaces, ports and processes, removed in onTestFinished even when it
 * fails), so the 30 s live-peer window costs no more wall time than itself.
 */
import { type LoggedProcess, type LogLine, type Owner, spawnLogged, stopOwned } from '@net/testkit';
import { describe, it, type TestContext } from 'vitest';
import { BIN, hasCommand, isRoot, sleep, startServe } from './helpers.js';
import { createNetnsPair, IDLE_CLIENT, type NetnsPair } from './netns.js';

/** How long a live peer must go unreported; the issue asks for 30 s. KP_LIVE_WINDOW_S shortens it for local runs. */
const LIVE_WINDOW_S = Number(process.env.KP_LIVE_WINDOW_S ?? 30);
const canRun = isRoot && hasCommand('ip') && hasCommand('nft') && hasCommand('nstat');
const why = canRun ? '' : ' (SKIPPED: needs root, iproute2 and nft to create network namespaces and drop rules)';

/** A fresh namespace pair and process set for one test, removed when the test finishes, passed or failed. */
function setup(context: TestContext): { pair: NetnsPair; owner: Owner } {
  const owner: Owner = new Set();
  const pair = createNetnsPair();
  context.onTestFinished(async () => {
    // Processes first: a namespace with processes in it outlives `ip netns del`.
    await stopOwned(owner);
    pair.destroy();
  });
  return { pair, owner };
}

/** Starts an idle client (keepalive off) in namespace b; resolves with it and its local port once connected. */
async function idleClient(
  pair: NetnsPair,
  owner: Owner,
  port: number,
): Promise<{ client: LoggedProcess; peer: string }> {
  const args = ['netns', 'exec', pair.b, process.execPath, '-e', IDLE_CLIENT, pair.ipA, String(port)];
  const client = spawnLogged('ip', args, { owner });
  const line = await client.waitForLine((l) => l.msg === 'connected');
  return { client, peer: `${pair.ipB}:${line.port as number}` };
}

/** The connection had its handshake and is now being probed: wait past idle plus one interval. */
async function letItGoIdle(server: LoggedProcess, peer: string): Promise<void> {
  await server.waitForLine((l) => l.msg === 'connection: keepalive read back' && l.peer === peer);
  await sleep(1500);
}

/** Seconds from `t` (ms since the epoch) to the log line's time. */
function secondsAfter(line: LogLine, t: number): number {
  return (Date.parse(String(line.time)) - t) / 1000;
}

/** GETs /metrics from inside a namespace (the admin endpoint listens on that namespace's loopback). */
function metricsIn(pair: NetnsPair, ns: string, port: number): string {
  return pair.exec(ns, process.execPath, [
    '-e',
    `fetch('http://127.0.0.1:${port}/metrics').then((r) => r.text()).then((t) => process.stdout.write(t))`,
  ]);
}

describe.concurrent('peers across a real link', () => {
  it.skipIf(!canRun)(
    `reports an idle peer dead 3 to 5 s after its host is blackholed, with 1 s / 1 s / 3${why}`,
    async (context) => {
      const { expect } = context;
      const { pair, owner } = setup(context);
      const server = await startServe(
        [
          ...['--host', pair.ipA, '--port', '15001', '--admin-port', '19013', '--log-level', 'debug'],
          ...['--idle', '1', '--interval', '1', '--count', '3'],
        ],
        { netns: pair.a, owner },
      );
      const { peer } = await idleClient(pair, owner, server.port);
      await letItGoIdle(server, peer);

      const cut = pair.blackhole();
      const dead = await server.waitForLine((l) => String(l.msg).startsWith('peer dead'), 10_000);

      const earliest = secondsAfter(dead, cut.end);
      const latest = secondsAfter(dead, cut.start);
      console.log(`serve, nft drop, 1/1/3: peer reported dead ${earliest.toFixed(3)}-${latest.toFixed(3)} s after`);
      expect(latest).toBeGreaterThanOrEqual(3);
      expect(earliest).toBeLessThanOrEqual(5);
      expect(dead).toMatchObject({
        level: 40,
        event: 'peer_dead',
        peer,
        code: 'ETIMEDOUT',
        keepalive: { idle: 1, interval: 1, count: 3 },
        userTimeoutMs: 0,
      });
      expect(dead.ageSeconds as number).toBeGreaterThan(earliest);
      expect(dead.sinceLastByteSeconds as number).toBeGreaterThan(earliest);
      expect(metricsIn(pair, pair.a, 19013)).toMatch(/^net_peers_dead_total 1$/m);
    },
  );

  it.skipIf(!canRun)(
    `reports the peer dead when the cable is pulled (veth down), TCP_USER_TIMEOUT cutting keepalive short${why}`,
    async (context) => {
      const { expect } = context;
      const { pair, owner } = setup(context);
      // --count 10 alone would take 10 to 11 s; a 2.5 s user timeout overrides the count (docs/measurements.md §1.3).
      const server = await startServe(
        ['--host', pair.ipA, '--port', '15001', '--count', '10', '--user-timeout', '2500', '--log-level', 'debug'],
        { netns: pair.a, owner },
      );
      const settings = await server.waitForLine((l) => typeof l.detectionSeconds === 'object');
      expect(settings.detectionSeconds).toEqual({ earliest: 1.5, latest: 3.5 });
      const { peer } = await idleClient(pair, owner, server.port);
      await letItGoIdle(server, peer);

      const cut = pair.linkDown();
      const dead = await server.waitForLine((l) => String(l.msg).startsWith('peer dead'), 15_000);
      const earliest = secondsAfter(dead, cut.end);
      const latest = secondsAfter(dead, cut.start);
      console.log(
        `serve, link down, 1/1/10 + user timeout 2.5 s: reported ${earliest.toFixed(3)}-${latest.toFixed(3)} s after`,
      );
      expect(latest).toBeGreaterThanOrEqual(1.5);
      expect(earliest).toBeLessThanOrEqual(3.5);
      expect(dead).toMatchObject({ peer, userTimeoutMs: 2500, keepalive: { idle: 1, interval: 1, count: 10 } });
    },
  );

  it.skipIf(!canRun)(
    `watch reports a blackholed target down when its keepalive gives up, and counts the dead peer${why}`,
    async (context) => {
      const { expect } = context;
      const { pair, owner } = setup(context);
      const server = await startServe(['--host', pair.ipA, '--port', '15001'], { netns: pair.a, owner });
      const target = `${pair.ipA}:${server.port}`;
      const watch = spawnLogged(
        'ip',
        [
          ...['netns', 'exec', pair.b, process.execPath, BIN, 'watch', target, '--count', '3'],
          ...['--log-format', 'json', '--backoff-initial', '5', '--admin-port', '19013'],
        ],
        { owner },
      );
      await watch.waitForLine((l) => l.event === 'target_up');
      await sleep(1500);

      // This time the server's host vanishes; the watcher's side stays intact.
      const cut = pair.blackhole(pair.a);
      const dead = await watch.waitForLine((l) => String(l.msg).startsWith('peer dead'), 10_000);
      const down = await watch.waitForLine((l) => l.event === 'target_down', 1000);
      const earliest = secondsAfter(dead, cut.end);
      const latest = secondsAfter(dead, cut.start);
      console.log(`watch, nft drop, 1/1/3: target reported dead ${earliest.toFixed(3)}-${latest.toFixed(3)} s after`);
      expect(latest).toBeGreaterThanOrEqual(3);
      expect(earliest).toBeLessThanOrEqual(5);
      expect(dead).toMatchObject({ event: 'peer_dead', peer: target, code: 'ETIMEDOUT' });
      expect(down).toMatchObject({ level: 30, target, reason: 'ETIMEDOUT' });
      const metrics = metricsIn(pair, pair.b, 19013);
      expect(metrics).toMatch(/^net_peers_dead_total 1$/m);
      expect(metrics).toMatch(/^net_watch_target_up\{[^}]*target="192\.0\.2\.1:15001"[^}]*\} 0$/m);
    },
  );

  it.skipIf(!canRun)(
    `never reports a live idle peer dead over ${LIVE_WINDOW_S} s of probes with 1 s / 1 s / 3${why}`,
    { timeout: (LIVE_WINDOW_S + 20) * 1000 },
    async (context) => {
      const { expect } = context;
      const { pair, owner } = setup(context);
      const server = await startServe(
        [
          '--host',
          pair.ipA,
          '--port',
          '15001',
          '--idle',
          '1',
          '--interval',
          '1',
          '--count',
          '3',
          '--log-level',
          'debug',
        ],
        { netns: pair.a, owner },
      );
      const { client, peer } = await idleClient(pair, owner, server.port);
      await server.waitForLine((l) => l.msg === 'connection: keepalive read back' && l.peer === peer);

      // Nothing may happen in this window: here a sleep is the test.
      await sleep(LIVE_WINDOW_S * 1000);

      expect(
        server.lines.filter((l) => String(l.msg).startsWith('peer dead') || l.msg === 'connection closed'),
      ).toEqual([]);
      expect(client.lines.filter((l) => l.level >= 50)).toEqual([]);
      // The kernel probed all along (TcpExtTCPKeepAlive counts probes sent in this namespace), and the connection is
      // still established with its keepalive timer running and no probe unanswered.
      const nstat = pair.exec(pair.a, 'nstat', ['-asz', 'TcpExtTCPKeepAlive']);
      const probes = Number(/TcpExtTCPKeepAlive\s+(\d+)/.exec(nstat)?.[1]);
      console.log(`live peer: ${probes} probes answered in ${LIVE_WINDOW_S} s, none reported dead`);
      expect(probes).toBeGreaterThanOrEqual(LIVE_WINDOW_S - 5);
      expect(pair.exec(pair.a, 'ss', ['-tnoH', 'state', 'established'])).toMatch(/timer:\(keepalive,[\d.]+m?s,0\)/);
    },
  );
});
