/**
 * The lifecycle of one running process: the admin endpoint, readiness, and the SIGTERM/SIGINT drain; a logged exit
 * on an uncaught error. `serve` (serve.ts), a `runtime: true` command (runtime-command.ts) and the `--workers`
 * primary (cluster.ts) each use it.
 *
 * Drain (one process): mark not ready (so /readyz answers 503 and load balancers stop sending), keep serving for
 * the drain delay (0 by default), stop accepting, let open connections finish for the drain period, close what
 * remains, exit 0. A second signal exits at once with 130.
 */
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAdminServer } from './admin-server.js';
import type { ReadyMessage } from './cluster-protocol.js';
import type { ConnectionTracker } from './connection-tracker.js';
import { EXIT } from './exit-codes.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { Readiness, RunningService } from './service-definition.js';

/** The settings of serve-options.ts the lifecycle reads. */
export interface LifecycleConfig {
  adminPort: number | undefined;
  adminHost: string;
  drainTimeout: number;
  /** Seconds between the signal (not ready) and the drain (listeners closed); 0 by default. */
  drainDelay: number;
  instance: string;
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
      process.exit(EXIT.INTERRUPTED);
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
    process.exit(EXIT.OK);
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
    process.send?.({ type: 'net:ready', endpoints: running.endpoints } satisfies ReadyMessage);
  } else {
    log.info(
      { endpoints: running.endpoints, ...(admin ? { admin: admin.url } : {}) },
      `ready: listening on ${running.endpoints.join(', ')}`,
    );
  }
}

/**
 * Runs `drain` on SIGTERM and SIGINT (the drain itself decides what a second signal does); a drain that throws is
 * logged and exits 70 (EXIT.SOFTWARE), never leaving the process half-stopped. Returns the handler for other triggers.
 */
export function drainOnSignals(
  log: Logger,
  drain: (signal: NodeJS.Signals) => Promise<void>,
): (signal: NodeJS.Signals) => void {
  const onSignal = (signal: NodeJS.Signals) => {
    drain(signal).catch((err: unknown) => {
      log.fatal({ err }, 'drain failed');
      process.exit(EXIT.SOFTWARE);
    });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return onSignal;
}

/** Logs an uncaught exception or unhandled rejection as fatal and exits 70 (EX_SOFTWARE). */
export function installCrashHandlers(log: Logger): void {
  const crash = (kind: string) => (err: unknown) => {
    log.fatal({ err }, `${kind}: ${(err as Error)?.message ?? String(err)}`);
    process.exit(EXIT.SOFTWARE);
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));
}
