/**
 * The service definition: what a service declares (its name, settings, `serve` and other commands) and what the
 * runtime hands it and expects back (docs/service-contract.md). Types only, plus the exit codes every service shares;
 * the runtime that acts on a definition is run-service.ts.
 */
import type { ClientCommandDef } from '../client/client-command.js';
import type { ListenEndpoint } from '../net/endpoint.js';
import type { WorkerInfo } from './cluster-protocol.js';
import type { ConfigOf, Schema } from './config.js';
import type { ConnectionTracker } from './connection-tracker.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { commonCommandOptions, commonServeOptions } from './serve-options.js';

export type { WorkerInfo } from './cluster-protocol.js';
export { EXIT, SERVE_EXIT_CODES } from './exit-codes.js';

/** The settings the runtime adds to every `serve` schema (serve-options.ts), as parsed. */
export type CommonConfig = ConfigOf<ReturnType<typeof commonServeOptions>>;
/** The settings the runtime adds to every `runtime: true` command's schema, as parsed. */
export type CommandConfig = ConfigOf<ReturnType<typeof commonCommandOptions>>;

/** Mutable readiness, shared by the admin endpoint (`/readyz`) and the `net_ready` metric. */
export interface Readiness {
  ready: boolean;
}

/**
 * The limits `serve` enforces, as the runtime has checked them against the process's own. The settings in
 * `ctx.config` stay as the user gave them (the `starting` line shows those); these are the ones to apply.
 */
export interface ServeLimits<C> {
  /**
   * `--max-connections` lowered to what the descriptor limit allows (RLIMIT_NOFILE minus a reserve: past it libuv
   * drops connections silently, see rlimit.ts), with one warning when lowered; undefined for a service without the
   * setting (`tcpLimitOptions`).
   */
  maxConnections: C extends { maxConnections: number } ? number : undefined;
}

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
  /** The limits to enforce: the settings' values checked against the process's own limits. */
  limits: ServeLimits<C>;
  /**
   * Set in a worker process started by `--workers`: listen with `reusePort` (core's `listen` and `bindUdp`) when
   * `reusePort` is true.
   */
  worker: WorkerInfo | undefined;
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
