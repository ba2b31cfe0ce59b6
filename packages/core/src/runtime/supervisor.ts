/**
 * Process lifecycle: readiness, the admin endpoint, SIGTERM/SIGINT drain, and the `--workers` supervisor.
 *
 * Drain (one process): mark not ready (so /readyz answers 503 and load balancers stop sending), keep serving for
 * the drain delay (0 by default), stop accepting, let open connections finish for the drain period, close what
 * remains, exit 0. A second signal exits at once with 130. Workers: a cluster primary forks N workers that each run
 * the service; with SO_REUSEPORT (Node >= 22.12) each worker owns a listening socket and the kernel spreads
 * connections and datagrams, else node:cluster shares the primary's sockets: its primary accepts TCP connections
 * and hands them round-robin, while a UDP socket is one socket read by every worker. A dead worker takes only its own connections with it and is restarted.
 */
import cluster, { type Worker } from 'node:cluster';
import dgram from 'node:dgram';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { AggregatorRegistry } from 'prom-client';
import { type Endpoint, formatEndpoint } from '../net/endpoint.js';
import { boundEndpoint, listen } from '../net/listen.js';
import { reusePortSupport } from '../sys/reuse-port.js';
import { startAdminServer } from './admin-server.js';
import type { ConnectionTracker } from './connection-tracker.js';
import type { Logger } from './logger.js';
import { Metrics } from './metrics.js';
import type { RunningService, ServiceDefinition, Transport } from './service.js';
import type { StartupSignals } from './startup-signals.js';

interface LifecycleConfig {
  adminPort: number | undefined;
  adminHost: string;
  drainTimeout: number;
  /** Seconds between the signal (not ready) and the drain (listeners closed); 0 by default. */
  drainDelay: number;
  instance: string;
}

/** Mutable readiness, shared by the admin endpoint and the `net_ready` metric. */
export interface Readiness {
  ready: boolean;
}

/** Starts the admin endpoint when configured; returns its server and URL. */
export async function startAdmin(
  config: Pick<LifecycleConfig, 'adminPort' | 'adminHost'>,
  readiness: Readiness,
  render: () => Promise<{ contentType: string; body: string }>,
): Promise<{ server: Server; url: string } | undefined> {
  if (config.adminPort === undefined) return undefined;
  const { server, port } = await startAdminServer(
    { ready: () => readiness.ready, metrics: render },
    { host: config.adminHost, port: config.adminPort },
  );
  const host = config.adminHost.includes(':') ? `[${config.adminHost}]` : config.adminHost;
  return { server, url: `http://${host}:${port}` };
}

/** Closes the admin endpoint and its keep-alive connections. */
export function closeAdmin(admin: { server: Server } | undefined): void {
  if (!admin) return;
  admin.server.closeAllConnections();
  admin.server.close();
}

/** Runs a started service until a signal drains it; exits the process. */
export async function runDrain(input: {
  config: LifecycleConfig;
  log: Logger;
  metrics: Metrics;
  connections: ConnectionTracker;
  running: RunningService;
  worker: { id: number } | undefined;
  admin: { server: Server; url: string } | undefined;
  readiness: Readiness;
  /** A SIGTERM/SIGINT that arrived while the service was starting: drain at once, never announce readiness. */
  pendingSignal?: NodeJS.Signals;
}): Promise<void> {
  const { config, log, connections, running, worker, admin, readiness } = input;
  let draining = false;
  const drain = async (reason: string) => {
    if (draining) {
      // A worker gets the terminal's Ctrl-C and then the primary's SIGTERM for the same stop: only the primary
      // counts signals (it SIGKILLs its workers on the second one).
      if (worker) return;
      log.warn({ signal: reason }, 'second signal during drain: exiting at once');
      process.exit(130);
    }
    draining = true;
    readiness.ready = false;
    // --drain-delay: /readyz is 503 from now on, but the listeners keep accepting and serving, so a load balancer
    // that polls /readyz (HAProxy's check, a Kubernetes readiness probe) takes this instance out of rotation before
    // its listeners close. Closing a listener resets the connections still in its accept queue (listen(2): they
    // were never accepted), so without the delay a balancer that has not noticed yet loses every connection it
    // sends in the meantime.
    if (config.drainDelay > 0) {
      log.info(
        { signal: reason, drainDelay: config.drainDelay, open: connections.size },
        'not ready: still serving for the drain delay, then draining',
      );
      await sleep(config.drainDelay * 1000);
    }
    log.info(
      { signal: reason, drainTimeout: config.drainTimeout, open: connections.size },
      'draining: not accepting; open connections may finish',
    );
    // One deadline for the whole drain: a stopAccepting() that waits for server.close()'s callback (which fires
    // only once every connection has ended) must not stretch the drain period.
    const timer = new AbortController();
    const deadline = sleep(config.drainTimeout * 1000, false, { signal: timer.signal }).catch(() => false);
    const finished = await Promise.race([
      (async () => {
        await running.stopAccepting();
        await (running.drained ? running.drained() : connections.idle());
        return true;
      })(),
      deadline,
    ]);
    timer.abort();
    if (!finished) {
      log.warn({ open: connections.size }, 'drain period over: closing the connections that remain');
      await (running.close ? running.close() : connections.destroyAll());
    }
    closeAdmin(admin);
    log.info('stopped');
    process.exit(0);
  };
  const onSignal = drainOnSignals(log, drain);
  process.on('SIGHUP', () => {
    if (!running.reload) return log.info('SIGHUP: nothing to reload');
    Promise.resolve(running.reload()).then(
      () => log.info('reloaded'),
      (err: unknown) => log.error({ err }, 'reload failed; keeping the previous state'),
    );
  });
  // A worker whose primary died must not live on unsupervised.
  if (worker) process.on('disconnect', () => onSignal('SIGTERM'));
  if (input.pendingSignal) {
    onSignal(input.pendingSignal);
    return;
  }
  // Handlers first, the ready line last: whoever reads the line may signal at once, and a SIGTERM that arrived
  // before process.on('SIGTERM') would kill the process with the default action instead of draining it.
  readiness.ready = true;
  if (worker) {
    log.debug({ worker: worker.id, endpoints: running.endpoints }, 'worker listening');
    process.send?.({ type: 'net:ready', endpoints: running.endpoints });
  } else {
    log.info(
      { endpoints: running.endpoints, ...(admin ? { admin: admin.url } : {}) },
      `ready: listening on ${running.endpoints.join(', ')}`,
    );
  }
}

interface MetricsRequest {
  type: 'net:metrics-req';
  id: number;
}
interface MetricsResponse {
  type: 'net:metrics-res';
  id: number;
  metrics?: object[];
  error?: string;
}

/**
 * In a worker: answers the primary's metric requests with this registry as JSON. prom-client's own worker side
 * is installed only by `new AggregatorRegistry()`, and its primary waits 5 s for every connected worker, also one
 * still starting or just restarted; our own exchange asks only ready workers and gives up on a silent one.
 */
export function answerMetricRequests(metrics: Metrics): void {
  process.on('message', (m: MetricsRequest) => {
    if (m?.type !== 'net:metrics-req') return;
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
    const onMessage = (m: MetricsResponse) => {
      if (m?.type !== 'net:metrics-res' || m.id !== id) return;
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
export async function runSupervisor(input: {
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

  const env: Record<string, string> = {
    NET_WORKER_COUNT: String(workerCount),
    NET_WORKER_REUSEPORT: reusePort ? '1' : '0',
  };
  if (reusePort && input.endpoints) {
    env.NET_WORKER_ENDPOINTS = JSON.stringify((await concretePorts(input.endpoints)).map(formatEndpoint));
  }

  const failures = new Map<number, number>();
  let announced = false;
  let draining = false;

  const fork = (id: number) => {
    const w = cluster.fork({ ...env, NET_WORKER_ID: String(id) });
    workers.set(id, w);
    w.on('message', (m: { type?: string; endpoints?: string[] }) => {
      if (m?.type !== 'net:ready') return;
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
        process.exit(EXIT_FAILURE);
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
      process.exit(130);
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
    process.exit(0);
  };
  input.startup?.dispose();
  drainOnSignals(log, drain);
}

const EXIT_FAILURE = 1;

/**
 * Runs `drain` on SIGTERM and SIGINT (the drain itself decides what a second signal does); a drain that throws is
 * logged and exits 70, never leaving the process half-stopped. Returns the handler for other triggers.
 */
function drainOnSignals(
  log: Logger,
  drain: (signal: NodeJS.Signals) => Promise<void>,
): (signal: NodeJS.Signals) => void {
  const onSignal = (signal: NodeJS.Signals) => {
    drain(signal).catch((err: unknown) => {
      log.fatal({ err }, 'drain failed');
      process.exit(70);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return onSignal;
}
