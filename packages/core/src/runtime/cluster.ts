/**
 * The `--workers` cluster: a primary forks N workers that each run the service, restarts a dead one (which takes
 * only its own connections with it), sums their metrics for its admin endpoint, and drains them on a signal. With
 * SO_REUSEPORT each worker owns a listening socket and the kernel spreads connections and datagrams; else
 * node:cluster shares the primary's sockets: its primary accepts TCP connections and hands them round-robin, while
 * a UDP socket is one socket read by every worker. What the two sides exchange is cluster-protocol.ts.
 */
import cluster, { type Worker } from 'node:cluster';
import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { AggregatorRegistry } from 'prom-client';
import { type Endpoint, formatEndpoint } from '../net/endpoint.js';
import { boundEndpoint, listen } from '../net/listen.js';
import { reusePortSupport } from '../sys/reuse-port.js';
import {
  isMessage,
  type MetricsRequest,
  type MetricsResponse,
  type WorkerSettings,
  workerEnv,
} from './cluster-protocol.js';
import { EXIT } from './exit-codes.js';
import { closeAdmin, drainOnSignals, type LifecycleConfig, startAdmin } from './lifecycle.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import type { Readiness, ServiceDefinition, Transport } from './service-definition.js';
import type { StartupSignals } from './startup-signals.js';

/**
 * In a worker: answers the primary's metric requests with this registry as JSON. prom-client's own worker side
 * is installed only by `new AggregatorRegistry()`, and its primary waits 5 s for every connected worker, also one
 * still starting or just restarted; our own exchange asks only ready workers and gives up on a silent one.
 */
export function answerMetricRequests(metrics: Metrics): void {
  process.on('message', (m: unknown) => {
    if (!isMessage(m, 'net:metrics-req')) return;
    metrics.registry.getMetricsAsJSON().then(
      (json) => process.send?.({ type: 'net:metrics-res', id: m.id, metrics: json } satisfies MetricsResponse),
      (err: Error) =>
        process.send?.({ type: 'net:metrics-res', id: m.id, error: err.message } satisfies MetricsResponse),
    );
  });
}

/** Asks each worker for its metrics; waits at most `timeoutMs` and aggregates the answers that came. */
function collectWorkerMetrics(workers: Iterable<Worker>, id: number, timeoutMs: number): Promise<string> {
  const asked = [...workers].filter((w) => w.isConnected());
  return new Promise((resolve) => {
    const answers: object[][] = [];
    let pending = asked.length;
    const finish = () => {
      clearTimeout(timer);
      for (const w of asked) w.off('message', onMessage);
      resolve(answers.length ? AggregatorRegistry.aggregate(answers).metrics() : Promise.resolve(''));
    };
    const onMessage = (m: unknown) => {
      if (!isMessage(m, 'net:metrics-res') || m.id !== id) return;
      if (m.metrics) answers.push(m.metrics);
      if (--pending === 0) finish();
    };
    const timer = setTimeout(finish, timeoutMs);
    for (const w of asked) {
      w.on('message', onMessage);
      w.send({ type: 'net:metrics-req', id } satisfies MetricsRequest);
    }
    if (pending === 0) finish();
  });
}

/**
 * With SO_REUSEPORT every worker binds its own socket, so a port 0 would give each worker a different port. The
 * primary picks one free port per such endpoint (free for TCP and UDP alike, as it does not know the transport)
 * and hands the concrete endpoints to the workers.
 */
async function concretePorts(endpoints: readonly Endpoint[]): Promise<Endpoint[]> {
  const out: Endpoint[] = [];
  for (const e of endpoints) {
    if (e.kind === 'unix' || e.port !== 0) {
      out.push(e);
      continue;
    }
    out.push({ ...e, port: await freePortFor(e) });
  }
  return out;
}

async function freePortFor(e: Exclude<Endpoint, { kind: 'unix' }>): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const server = await listen(e);
    const bound = boundEndpoint(server);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (bound.kind === 'unix') break;
    const host = bound.kind === 'ip' ? bound.address : '::';
    const type = bound.kind === 'ip' && bound.family === 4 ? 'udp4' : 'udp6';
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = dgram.createSocket(type);
      socket.once('error', () => resolve(false));
      socket.bind({ address: host, port: bound.port }, () => socket.close(() => resolve(true)));
    });
    if (udpFree) return bound.port;
  }
  throw new Error(`no port free for both TCP and UDP found for ${formatEndpoint(e)}`);
}

/**
 * How `--workers` spreads the load, for the ready line's `balancing` field, and the warning to log when the
 * service has to fall back on node:cluster's sharing (no SO_REUSEPORT in this Node). node:cluster shares a TCP
 * listener by accepting in the primary and handing each connection to a worker in turn; it shares a UDP socket by
 * handing the same socket to every worker, so whichever worker reads first gets a datagram (no round-robin).
 */
export function describeBalancing(
  transport: Transport,
  reusePort: boolean,
  workerCount: number,
  nodeVersion: string = process.version,
): { balancing: string; warning?: string } {
  if (reusePort) return { balancing: 'SO_REUSEPORT' };
  const lead = `SO_REUSEPORT is not available on Node ${nodeVersion}: ${workerCount} workers share`;
  if (transport === 'udp') {
    return {
      balancing: 'node:cluster shared socket',
      warning: `${lead} one UDP socket through node:cluster; every worker reads from it, and whichever reads first gets each datagram (no even spread)`,
    };
  }
  if (transport === 'both') {
    return {
      balancing: 'node:cluster round-robin (TCP), shared socket (UDP)',
      warning: `${lead} the ports through node:cluster: the primary accepts TCP connections and hands them round-robin, while every worker reads one shared UDP socket and whichever reads first gets each datagram`,
    };
  }
  return {
    balancing: 'node:cluster round-robin',
    warning: `${lead} the port through node:cluster, whose primary accepts and hands connections round-robin`,
  };
}

/** Runs the cluster primary of `--workers N`: forks, restarts, aggregates metrics, drains. */
export async function runClusterPrimary(input: {
  def: ServiceDefinition<never>;
  config: LifecycleConfig;
  log: Logger;
  workerCount: number;
  /** The endpoints every worker listens on (port 0 is made concrete here under SO_REUSEPORT). */
  endpoints?: readonly Endpoint[];
  /** The start-up signal handlers, replaced here by the primary's own once the workers are forked. */
  startup?: StartupSignals;
}): Promise<void> {
  const { def, config, log, workerCount } = input;
  const reusePort = reusePortSupport() === 'native';
  const { balancing, warning } = describeBalancing(def.transport ?? 'tcp', reusePort, workerCount);
  if (warning) log.warn(warning);
  const metrics = new Metrics({
    service: def.name,
    instance: config.instance,
    version: def.version,
    processMetrics: false,
    buildInfo: false,
  });
  const readiness: Readiness = { ready: false };
  metrics.collect('net_ready', () => (readiness.ready ? 1 : 0));
  const restarts = metrics.counter('net_worker_restarts_total');
  const workers = new Map<number, Worker>();
  const readyIds = new Set<number>();
  let scrapes = 0;
  const admin = await startAdmin(config, readiness, async () => {
    const ready = [...workers].filter(([id]) => readyIds.has(id)).map(([, w]) => w);
    const fromWorkers = await collectWorkerMetrics(ready, scrapes++, 1000);
    return { contentType: metrics.contentType, body: `${fromWorkers.trimEnd()}\n${await metrics.render()}` };
  });

  const shared: WorkerSettings = {
    count: workerCount,
    reusePort,
    ...(reusePort && input.endpoints ? { endpoints: await concretePorts(input.endpoints) } : {}),
  };

  const failures = new Map<number, number>();
  let announced = false;
  let draining = false;

  const fork = (id: number) => {
    const w = cluster.fork(workerEnv(id, shared));
    workers.set(id, w);
    w.on('message', (m: unknown) => {
      if (!isMessage(m, 'net:ready')) return;
      readyIds.add(id);
      failures.set(id, 0);
      if (!announced && readyIds.size === workerCount) {
        announced = true;
        readiness.ready = !draining;
        log.info(
          { endpoints: m.endpoints, workers: workerCount, balancing, ...(admin ? { admin: admin.url } : {}) },
          `ready: listening on ${(m.endpoints ?? []).join(', ')} with ${workerCount} workers`,
        );
      } else if (announced) {
        log.info({ worker: id }, 'restarted worker is ready');
      }
    });
    w.on('exit', (code, signal) => {
      // A restarted worker may already hold the id: only forget the map entry if it is still this one.
      if (workers.get(id) === w) workers.delete(id);
      const wasReady = readyIds.delete(id);
      if (draining) return;
      const failed = (failures.get(id) ?? 0) + (wasReady ? 0 : 1);
      failures.set(id, failed);
      // A worker that dies before it ever listens (a bad address, a crash at start) would die again: stop.
      if (failed >= 3) {
        log.fatal({ worker: id, code, signal }, 'worker failed 3 times before becoming ready: giving up');
        for (const other of workers.values()) other.process.kill('SIGKILL');
        process.exit(EXIT.FAILURE);
      }
      restarts.inc();
      log.error({ worker: id, code, signal }, 'worker died: restarting it; other workers are unaffected');
      setTimeout(() => fork(id), failed === 0 ? 0 : 200 * 2 ** failed).unref();
    });
  };

  cluster.setupPrimary({ exec: process.argv[1] as string, args: process.argv.slice(2) });
  for (let id = 1; id <= workerCount; id++) fork(id);

  const drain = async (signal: NodeJS.Signals) => {
    if (draining) {
      log.warn({ signal }, 'second signal during drain: exiting at once');
      for (const w of workers.values()) w.process.kill('SIGKILL');
      process.exit(EXIT.INTERRUPTED);
    }
    draining = true;
    readiness.ready = false;
    log.info(
      { signal, drainTimeout: config.drainTimeout, drainDelay: config.drainDelay, workers: workers.size },
      'draining: stopping workers',
    );
    const exited = [...workers.values()].map((w) => new Promise((resolve) => w.once('exit', resolve)));
    for (const w of workers.values()) w.process.kill('SIGTERM');
    // Workers enforce the drain period themselves; the margin covers their close() and exit.
    const timer = new AbortController();
    const done = await Promise.race([
      Promise.all(exited).then(() => true),
      sleep((config.drainDelay + config.drainTimeout) * 1000 + 5000, false, { signal: timer.signal }).catch(
        () => false,
      ),
    ]);
    timer.abort();
    if (!done) {
      log.warn({ workers: workers.size }, 'workers still running after the drain period: killing them');
      for (const w of workers.values()) w.process.kill('SIGKILL');
    }
    closeAdmin(admin);
    log.info('stopped');
    process.exit(EXIT.OK);
  };
  input.startup?.dispose();
  drainOnSignals(log, drain);
}
