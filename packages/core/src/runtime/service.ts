/**
 * The service runtime: a service declares its name, settings, `serve` and other commands; `runService` does
 * the rest the same way for every service (docs/service-contract.md): command-line and environment parsing,
 * `--help`/`--version`, exit code 2 on bad config, pino logging, the admin endpoint, worker processes,
 * readiness, SIGTERM/SIGINT drain, and a logged exit on an uncaught error.
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import {
  type ClientCommandDef,
  clientCommandSchema,
  clientResult,
  jsonRequested,
  runClientCommand,
} from '../client/client-command.js';
import { CLIENT_EXIT, CLIENT_EXIT_MEANINGS, formatClientExitCodes } from '../client/client-exit.js';
import { ConfigError, NetError } from '../errors.js';
import {
  type Endpoint,
  formatListenEndpoint,
  isActivated,
  type ListenEndpoint,
  parseEndpoint,
} from '../net/endpoint.js';
import { describeDescriptorLimit, descriptorLimit, effectiveMaxConnections } from '../sys/rlimit.js';
import {
  type ConfigOf,
  describeConfig,
  envName,
  formatHelp,
  type ParsedConfig,
  parseConfig,
  type Schema,
} from './config.js';
import { ConnectionTracker } from './connection-tracker.js';
import { EXIT, SERVE_EXIT_CODES } from './exit-codes.js';
import { createLogger, type Logger } from './logger.js';
import { formatManPage } from './man-page.js';
import { Metrics } from './metrics.js';
import { commonCommandOptions, commonServeOptions, serveEndpoints } from './serve-options.js';
import { StartupSignals } from './startup-signals.js';
import { answerMetricRequests, closeAdmin, type Readiness, runDrain, runSupervisor, startAdmin } from './supervisor.js';

export { EXIT, SERVE_EXIT_CODES } from './exit-codes.js';

type CommonConfig = ConfigOf<ReturnType<typeof commonServeOptions>>;
type CommandConfig = ConfigOf<ReturnType<typeof commonCommandOptions>>;

/** What a service serves on: decides which metrics and wording apply (see {@link ServiceDefinition.transport}). */
export type Transport = 'tcp' | 'udp' | 'both';

/** What `serve` gets from the runtime. */
export interface ServeContext<C> {
  config: C & CommonConfig;
  /** Where each setting came from. */
  sources: Record<string, 'flag' | 'env' | 'default'>;
  log: Logger;
  metrics: Metrics;
  /** The endpoints to listen on, from --host/--port/--listen; `fd:`/`systemd:` ones are sockets passed to us. */
  endpoints: ListenEndpoint[];
  /** Tracks open TCP connections (drain, limits, metrics). */
  connections: ConnectionTracker;
  /** True in a worker process started by `--workers`: listen with `reusePort` when `reusePort` is true. */
  worker: { id: number; count: number; reusePort: boolean } | undefined;
}

/** What a running service hands back to the runtime. */
export interface RunningService {
  /** What the service listens on, formatted, for the readiness line. */
  endpoints: string[];
  /** Stops accepting new connections or datagrams (first step of the drain). */
  stopAccepting(): Promise<void> | void;
  /** Resolves when in-flight work has finished; default: every tracked connection closed. */
  drained?(): Promise<void>;
  /** Closes whatever remains when the drain period is over; default: destroy tracked connections. */
  close?(): Promise<void> | void;
  /** Called on SIGHUP (e.g. reload TLS certificates). */
  reload?(): Promise<void> | void;
}

interface CommandBase<S extends Schema> {
  description: string;
  /** Positional arguments in the usage line, e.g. `HOST:PORT [MESSAGE...]`. */
  args?: string;
  maxPositionals?: number;
  options: S;
  /**
   * The command's exit codes, printed at the end of its `--help` in numeric order (`0 all up, 1 a target down, ...`);
   * default: the runtime's generic line, the one `serve` prints (0 ok, 1 failure, 2 bad usage, 70, 130).
   */
  exitCodes?: Record<number, string>;
}

/** A short command (client, check, demo): prints to stdout/stderr itself and returns its exit code. */
export interface PlainCommandDef<S extends Schema> extends CommandBase<S> {
  runtime?: false;
  run(input: { config: ConfigOf<S>; positionals: string[] }): Promise<number>;
}

/** What a `runtime: true` command gets. */
export interface RuntimeCommandInput<S extends Schema> {
  /** The command's settings plus `--admin-port`, `--admin-host`, `--log-level`, `--log-format`, `--instance`. */
  config: ConfigOf<S> & CommandConfig;
  positionals: string[];
  log: Logger;
  metrics: Metrics;
  /** `/readyz` and `net_ready` follow `readiness.ready`: set it true once the command does its job. */
  readiness: Readiness;
  /** The admin endpoint's URL when `--admin-port` is set. */
  admin: { url: string } | undefined;
  /** Aborted by the first SIGTERM/SIGINT (reason: the signal's name): finish and return the exit code. */
  signal: AbortSignal;
}

/**
 * A long-running command (watch): the runtime gives it a logger, metrics, the admin endpoint and signal handling,
 * like `serve`, and adds the common settings to its schema. A second signal exits 130 at once.
 */
export interface RuntimeCommandDef<S extends Schema> extends CommandBase<S> {
  runtime: true;
  /** Where the log goes; default stdout. `stderr` leaves stdout to the command's results. */
  logDestination?(config: ConfigOf<S> & CommandConfig): 'stdout' | 'stderr';
  /** The exit code when the runtime cannot start the command (the admin endpoint cannot listen); default 1. */
  startFailureExitCode?: number;
  run(input: RuntimeCommandInput<S>): Promise<number>;
}

/**
 * A command other than `serve`: a plain one (demo), a long-running one (watch), or a client or check command
 * (`defineClientCommand`, client-command.ts). Each returns its exit code.
 */
export type CommandDef<S extends Schema> = PlainCommandDef<S> | RuntimeCommandDef<S> | ClientCommandDef<S>;

export interface ServiceDefinition<S extends Schema> {
  /** The bin name, e.g. `echo-tcp`. */
  name: string;
  version: string;
  description: string;
  /** Environment variable prefix, e.g. `ECHO_TCP`. */
  envPrefix: string;
  defaultPort: number;
  /** The service's own `serve` settings (the common ones are added). */
  options: S;
  /** Whether `--workers` is offered (the service's options must then include `workersOption()`). */
  workers?: boolean;
  /**
   * What `serve` listens on (default `tcp`). `tcp` and `both` show the connection metrics (`net_connections_open`
   * 0 from the start); `udp` never does. It also words the `--workers` balancing on Node without SO_REUSEPORT.
   */
  transport?: Transport;
  serve(ctx: ServeContext<ConfigOf<S>>): Promise<RunningService>;
  /** Other subcommands, e.g. `client` and `check` (declared with `defineClientCommand`). */
  commands?: Record<string, CommandDef<Schema>>;
}

/** Declares a service with its types checked; returns it unchanged. */
export function defineService<S extends Schema>(def: ServiceDefinition<S>): ServiceDefinition<S> {
  return def;
}

/** Declares a subcommand with its types checked. */
export function defineCommand<S extends Schema>(def: RuntimeCommandDef<S>): CommandDef<Schema>;
export function defineCommand<S extends Schema>(def: PlainCommandDef<S>): CommandDef<Schema>;
export function defineCommand<S extends Schema>(def: CommandDef<S>): CommandDef<Schema> {
  return def as unknown as CommandDef<Schema>;
}

/**
 * Runs a service's command line. Never returns normally: the process exits with the command's code, or runs
 * until a signal drains it.
 */
export async function runService<S extends Schema>(
  def: ServiceDefinition<S>,
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const commands = def.commands ?? {};
  const names = ['serve', ...Object.keys(commands)];
  const first = argv[0];
  // A first word that names no command is a typo (`udp-echo frobnicate`, `daytime-tcp watch`), not serve's
  // positional (serve takes none): say so, rather than print serve's help or fail on a later flag.
  if (first !== undefined && !first.startsWith('-') && first !== 'serve' && !Object.hasOwn(commands, first)) {
    process.stderr.write(`${def.name}: unknown command "${first}": commands are ${names.join(', ')}\n`);
    process.exit(EXIT.USAGE);
  }
  const commandName = first !== undefined && (first === 'serve' || Object.hasOwn(commands, first)) ? first : 'serve';
  const rest = commandName === first ? argv.slice(1) : argv;

  if (rest.includes('--man')) {
    process.stdout.write(
      formatManPage(def as unknown as ServiceDefinition<Schema>, {
        schemaOf: (name, c) => commandSchema(def.envPrefix, name, c),
        exitCodesOf: (c) => ('client' in c ? CLIENT_EXIT_MEANINGS : (c.exitCodes ?? SERVE_EXIT_CODES)),
      }),
    );
    process.exit(EXIT.OK);
  }
  if (rest.includes('--version')) {
    process.stdout.write(`${def.name} ${def.version}\n`);
    process.exit(EXIT.OK);
  }
  const command = commandName === 'serve' ? undefined : commands[commandName];
  const schema: Schema = command
    ? commandSchema(def.envPrefix, commandName, command)
    : { ...commonServeOptions(def.defaultPort), ...def.options };
  if (rest.includes('--help') || rest.includes('-h')) {
    const codes = command && 'client' in command ? formatClientExitCodes() : exitCodeLine(command?.exitCodes);
    const extra = `Commands: ${names.join(', ')} (default: serve). Run \`${def.name} COMMAND --help\` for each.\n${codes}`;
    process.stdout.write(
      formatHelp(schema, {
        usage: `${def.name} ${commandName}${command?.args ? ` ${command.args}` : ''} [options]`,
        description: command ? command.description : def.description,
        prefix: def.envPrefix,
        extra,
      }),
    );
    process.exit(EXIT.OK);
  }

  let parsed: ParsedConfig<Schema>;
  try {
    parsed = parseConfig(schema, {
      argv: rest,
      env,
      prefix: def.envPrefix,
      maxPositionals: command?.maxPositionals ?? 0,
      positionalsUsage: command?.args ?? '',
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${def.name}: ${err.message}\n`);
      // A script that asked for JSON gets JSON, also when the command line itself is wrong.
      if (command && 'client' in command && jsonRequested(schema, rest, env)) {
        const result = clientResult({}, { exitCode: CLIENT_EXIT.USAGE, elapsedMs: 0, timeoutMs: null, error: err });
        process.stdout.write(`${JSON.stringify(result)}\n`);
        await flushed(process.stdout);
      }
      process.exit(EXIT.USAGE);
    }
    throw err;
  }

  if (command) {
    let code: number;
    try {
      if ('client' in command) {
        warnUnknownVariables(def, parsed.unknownEnv, (line) =>
          process.stderr.write(`${def.name} ${commandName}: ${line}\n`),
        );
        code = await runClientCommand(`${def.name} ${commandName}`, command, {
          config: parsed.values,
          positionals: parsed.positionals,
          defaultPort: def.defaultPort,
        });
      } else
        code = command.runtime
          ? await runRuntimeCommand(def, commandName, command, schema, parsed)
          : await command.run({ config: parsed.values, positionals: parsed.positionals });
    } catch (err) {
      process.stderr.write(`${def.name} ${commandName}: ${(err as Error).message}\n`);
      code = err instanceof ConfigError ? EXIT.USAGE : EXIT.FAILURE;
    }
    // process.exit drops output still queued for a pipe: let stdout and stderr drain first.
    await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
    process.exit(code);
  }
  await serve(def, parsed as unknown as ParsedConfig<S>);
}

/**
 * The settings a command is parsed with: a client command's own plus `--json`, with `PREFIX_<COMMAND>_*` variables;
 * a `runtime: true` command's plus the common logging and admin ones; a plain command's as declared.
 */
function commandSchema(prefix: string, name: string, command: CommandDef<Schema>): Schema {
  if ('client' in command) return clientCommandSchema(prefix, name, command.options);
  return command.runtime ? { ...commonCommandOptions(), ...command.options } : command.options;
}

/**
 * Warns about `PREFIX_*` variables that no command of the service reads (typos, or names a release dropped), naming
 * the variable a command does read under the same setting: `DAYTIME_TCP_TIMEOUT` -> `DAYTIME_TCP_CLIENT_TIMEOUT`.
 */
function warnUnknownVariables<S extends Schema>(
  def: ServiceDefinition<S>,
  unknownEnv: readonly string[],
  warn: (message: string, variable: string) => void,
): void {
  const known = new Set<string>();
  const schemas: Schema[] = [{ ...commonServeOptions(def.defaultPort), ...def.options }];
  for (const [name, command] of Object.entries(def.commands ?? {})) {
    schemas.push(commandSchema(def.envPrefix, name, command));
  }
  for (const schema of schemas) {
    for (const [key, opt] of Object.entries(schema)) known.add(envName(def.envPrefix, key, opt) ?? '');
  }
  const scopes = Object.keys(def.commands ?? {}).map(
    (name) => `${def.envPrefix}_${name.toUpperCase().replace(/-/g, '_')}_`,
  );
  for (const variable of unknownEnv) {
    if (known.has(variable)) continue;
    const setting = variable.slice(def.envPrefix.length + 1);
    const renamed = scopes.map((scope) => `${scope}${setting}`).filter((k) => known.has(k));
    const hint = renamed.length > 0 ? ` (did you mean ${renamed.join(' or ')}?)` : '';
    warn(`${variable} matches no setting of ${def.name} and is ignored${hint}`, variable);
  }
}

/** The `Exit codes:` line of a `--help`: the command's own, else the runtime's (which `serve` uses). */
function exitCodeLine(codes: Record<number, string> | undefined): string {
  const entries = Object.entries(codes ?? SERVE_EXIT_CODES).sort(([a], [b]) => Number(a) - Number(b));
  return `Exit codes: ${entries.map(([code, what]) => `${code} ${what}`).join(', ')}.`;
}

/** Runs a `runtime: true` command: logger, metrics, admin endpoint, signals; resolves with its exit code. */
async function runRuntimeCommand<S extends Schema>(
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

async function serve<S extends Schema>(def: ServiceDefinition<S>, parsed: ParsedConfig<S>): Promise<void> {
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
  const isWorker = cluster.isWorker && process.env.NET_WORKER_ID !== undefined;

  let limit: ReturnType<typeof descriptorLimit> | undefined;
  try {
    limit = descriptorLimit();
  } catch {
    limit = undefined; // not Linux, or koffi missing: the limit is unknown, the start goes on
  }
  if (!isWorker) {
    log.info(
      {
        config: describeConfig({ ...commonServeOptions(def.defaultPort), ...def.options }, config),
        ...(limit ? { descriptorLimit: describeDescriptorLimit(limit) } : {}),
      },
      'starting',
    );
    // Variables of the other commands (a health check's ECHO_TCP_CHECK_TIMEOUT) are known too, just not to `serve`.
    warnUnknownVariables(def, parsed.unknownEnv, (message, variable) => log.warn({ variable }, message));
  }
  // Past the descriptor limit libuv drops connections silently (see rlimit.ts): lower the limit to what can be kept,
  // with one warning (the primary of --workers warns, its workers log at debug).
  const withLimit = config as { maxConnections?: unknown };
  if (transport !== 'udp' && typeof withLimit.maxConnections === 'number') {
    withLimit.maxConnections = effectiveMaxConnections(withLimit.maxConnections, log);
  }
  let endpoints: ListenEndpoint[];
  try {
    // A worker under SO_REUSEPORT gets the primary's concrete endpoints (its port 0 made one free port for all).
    const fromPrimary = isWorker ? process.env.NET_WORKER_ENDPOINTS : undefined;
    endpoints = fromPrimary
      ? (JSON.parse(fromPrimary) as string[]).map((e) => parseEndpoint(e))
      : serveEndpoints(config, { host: sources.host ?? 'default', port: sources.port ?? 'default' });
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
  if (def.workers && workerCount > 1 && !isWorker) {
    await runSupervisor({
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
  const worker = isWorker
    ? {
        id: Number(process.env.NET_WORKER_ID),
        count: Number(process.env.NET_WORKER_COUNT),
        reusePort: process.env.NET_WORKER_REUSEPORT === '1',
      }
    : undefined;
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
    running = await def.serve({ config, sources, log, metrics, endpoints, connections, worker });
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

function installCrashHandlers(log: Logger): void {
  const crash = (kind: string) => (err: unknown) => {
    log.fatal({ err }, `${kind}: ${(err as Error)?.message ?? String(err)}`);
    process.exit(EXIT.SOFTWARE);
  };
  process.on('uncaughtException', crash('uncaught exception'));
  process.on('unhandledRejection', crash('unhandled rejection'));
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write('', () => resolve()));
}
