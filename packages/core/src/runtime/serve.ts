/**
 * `serve`: one process, a `--workers` worker, or the primary of a cluster (cluster.ts). Opens the log, checks the
 * limits against the process's own, works out the endpoints, starts the admin endpoint, calls the service's `serve`
 * and hands the running service to the drain (lifecycle.ts).
 */
import { availableParallelism } from 'node:os';
import { ConfigError, NetError } from '../errors.js';
import { type Endpoint, formatListenEndpoint, isActivated, type ListenEndpoint } from '../net/endpoint.js';
import { describeDescriptorLimit, descriptorLimit, effectiveMaxConnections } from '../sys/rlimit.js';
import { answerMetricRequests, runClusterPrimary } from './cluster.js';
import { readWorker, workerEndpoints } from './cluster-protocol.js';
import { type ConfigOf, describeConfig, type ParsedConfig, type Schema } from './config.js';
import { ConnectionTracker } from './connection-tracker.js';
import { EXIT } from './exit-codes.js';
import { installCrashHandlers, runDrain, startAdmin } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { serveEndpoints } from './serve-options.js';
import type { CommonConfig, Readiness, RunningService, ServeLimits, ServiceDefinition } from './service-definition.js';
import { serveSchema, warnUnknownVariables } from './service-settings.js';
import { StartupSignals } from './startup-signals.js';

/** Runs `serve` with its parsed settings; never returns normally (the drain or a start failure exits). */
export async function serve<S extends Schema>(def: ServiceDefinition<S>, parsed: ParsedConfig<S>): Promise<void> {
  // First thing: a SIGTERM/SIGINT before the drain's handlers exist must not take the default action.
  const startup = new StartupSignals();
  const config = parsed.values as ConfigOf<S> & CommonConfig;
  const sources = parsed.sources as Record<string, 'flag' | 'env' | 'default'>;
  const log = createLogger({
    service: def.name,
    instance: config.instance,
    level: config.logLevel,
    format: config.logFormat,
  });
  startup.log = log;
  installCrashHandlers(log);
  const transport = def.transport ?? 'tcp';

  const requested = (config as { workers?: number | 'auto' }).workers ?? 1;
  const workerCount = requested === 'auto' ? availableParallelism() : requested;
  const worker = readWorker();

  let limit: ReturnType<typeof descriptorLimit> | undefined;
  try {
    limit = descriptorLimit();
  } catch {
    limit = undefined; // not Linux, or koffi missing: the limit is unknown, the start goes on
  }
  if (!worker) {
    log.info(
      {
        config: describeConfig(serveSchema(def), config),
        ...(limit ? { descriptorLimit: describeDescriptorLimit(limit) } : {}),
      },
      'starting',
    );
    // Variables of the other commands (a health check's ECHO_TCP_CHECK_TIMEOUT) are known too, just not to `serve`.
    warnUnknownVariables(def, parsed.unknownEnv, (message, variable) => log.warn({ variable }, message));
  }
  const limits = serveLimits(config, transport === 'udp', log, worker !== undefined);
  let endpoints: ListenEndpoint[];
  try {
    // A worker under SO_REUSEPORT gets the primary's concrete endpoints (its port 0 made one free port for all).
    endpoints =
      workerEndpoints() ?? serveEndpoints(config, { host: sources.host ?? 'default', port: sources.port ?? 'default' });
  } catch (err) {
    process.stderr.write(`${def.name}: ${(err as Error).message}\n`);
    process.exit(EXIT.USAGE);
  }

  const activated = endpoints.filter(isActivated);
  if (def.workers && workerCount > 1 && activated.length > 0) {
    // A passed socket is one descriptor of this process: SO_REUSEPORT workers each bind their own socket, and
    // node:cluster cannot hand a descriptor it did not open to its workers.
    process.stderr.write(
      `${def.name}: --workers ${workerCount} cannot share ${activated.map(formatListenEndpoint).join(', ')}: run one process per passed socket (--workers 1), or let the workers bind --listen addresses themselves\n`,
    );
    process.exit(EXIT.USAGE);
  }
  if (def.workers && workerCount > 1 && !worker) {
    await runClusterPrimary({
      def: def as unknown as ServiceDefinition<never>,
      config,
      log,
      workerCount,
      endpoints: endpoints.filter((e): e is Endpoint => !isActivated(e)),
      startup,
    });
    return;
  }

  const metrics = new Metrics({ service: def.name, instance: config.instance, version: def.version });
  const connections = new ConnectionTracker(metrics, { eager: transport !== 'udp' });
  const readiness: Readiness = { ready: false };
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  let running: RunningService;
  try {
    if (worker) {
      // The primary serves /metrics and sums its workers' registries over the cluster channel.
      answerMetricRequests(metrics);
    } else {
      metrics.collect('net_ready', () => (readiness.ready ? 1 : 0));
      admin = await startAdmin(config, readiness, async () => ({
        contentType: metrics.contentType,
        body: await metrics.render(),
      }));
    }
    startup.starting();
    running = await def.serve({ config, sources, log, metrics, endpoints, connections, limits, worker });
  } catch (err) {
    // A service may validate a combination of settings in serve(): that is bad configuration too (exit 2).
    if (err instanceof ConfigError) {
      log.fatal({ err }, err.message);
      process.stderr.write(`${def.name}: ${err.message}\n`);
      process.exit(EXIT.USAGE);
    }
    const message = err instanceof NetError ? err.message : `cannot start: ${(err as Error).message}`;
    log.fatal({ err }, message);
    process.stderr.write(`${def.name}: ${message}\n`);
    process.exit(EXIT.FAILURE);
  }
  // The drain's handlers replace the start-up ones in the same tick: no signal can fall between them.
  startup.dispose();
  await runDrain({
    config,
    log,
    metrics,
    connections,
    running,
    worker,
    admin,
    readiness,
    ...(startup.received ? { pendingSignal: startup.received } : {}),
  });
}

/**
 * The limits `serve` enforces. Past the descriptor limit libuv drops connections silently (see rlimit.ts), so a TCP
 * service's `--max-connections` is lowered to what can be kept, with one warning (the primary of `--workers` warns,
 * its workers log at debug).
 */
function serveLimits<C>(config: C, udpOnly: boolean, log: Logger, inWorker: boolean): ServeLimits<C> {
  const configured = (config as { maxConnections?: unknown }).maxConnections;
  const maxConnections =
    typeof configured !== 'number' || udpOnly ? configured : effectiveMaxConnections(configured, log, { inWorker });
  return { maxConnections } as ServeLimits<C>;
}
