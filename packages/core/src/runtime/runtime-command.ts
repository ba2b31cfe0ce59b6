/**
 * A `runtime: true` command (a long-running one such as `watch`): the runtime gives it what `serve` gets, a logger,
 * metrics, the admin endpoint and signal handling, and returns the exit code the command returns.
 */
import { type ConfigOf, describeConfig, type ParsedConfig, type Schema } from './config.js';
import { EXIT } from './exit-codes.js';
import { closeAdmin, installCrashHandlers, startAdmin } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import type { CommandConfig, Readiness, RuntimeCommandDef, ServiceDefinition } from './service-definition.js';

/** Runs a `runtime: true` command: logger, metrics, admin endpoint, signals; resolves with its exit code. */
export async function runRuntimeCommand<S extends Schema>(
  def: ServiceDefinition<S>,
  name: string,
  command: RuntimeCommandDef<Schema>,
  schema: Schema,
  parsed: ParsedConfig<Schema>,
): Promise<number> {
  const controller = new AbortController();
  const readiness: Readiness = { ready: false };
  let log: Logger | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      log?.warn({ signal }, 'second signal: exiting at once');
      process.exit(EXIT.INTERRUPTED);
    }
    readiness.ready = false;
    log?.info({ signal }, 'stopping');
    controller.abort(signal);
  };
  // First thing: a signal during start-up must reach the command too, not kill the process.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const config = parsed.values as ConfigOf<Schema> & CommandConfig;
  log = createLogger({
    service: def.name,
    instance: config.instance,
    level: config.logLevel,
    format: config.logFormat,
    ...(command.logDestination?.(config) === 'stderr' ? { destination: process.stderr } : {}),
  });
  installCrashHandlers(log);
  log.info({ command: name, config: describeConfig(schema, config) }, 'starting');
  const metrics = new Metrics({ service: def.name, instance: config.instance, version: def.version });
  metrics.collect('net_ready', () => (readiness.ready ? 1 : 0));
  let admin: Awaited<ReturnType<typeof startAdmin>>;
  try {
    admin = await startAdmin(config, readiness, async () => ({
      contentType: metrics.contentType,
      body: await metrics.render(),
    }));
  } catch (err) {
    const message = `cannot start the admin endpoint: ${(err as Error).message}`;
    log.fatal({ err }, message);
    process.stderr.write(`${def.name} ${name}: ${message}\n`);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    return command.startFailureExitCode ?? EXIT.FAILURE;
  }
  try {
    const code = await command.run({
      config,
      positionals: parsed.positionals,
      log,
      metrics,
      readiness,
      admin: admin ? { url: admin.url } : undefined,
      signal: controller.signal,
    });
    log.info({ exitCode: code }, 'stopped');
    return code;
  } finally {
    readiness.ready = false;
    closeAdmin(admin);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}
