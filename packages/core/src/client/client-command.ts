/**
 * Client and check commands (`echo-tcp client`, `udp-echo check`, ...) the same way in every service
 * (docs/service-contract.md, rule 9): one exit-code table (client-exit.ts) that ends their `--help`, variables named
 * `PREFIX_<COMMAND>_<SETTING>` so that a container's `serve` settings and its HEALTHCHECK's never collide, a target
 * that defaults to the service's own local endpoint, and `--json`: one JSON object on stdout for scripts.
 *
 * The command's `run` does the exchange and throws on failure; this module turns the outcome into the exit code, the
 * stderr line and the JSON object, so that no command can get them differently.
 */
import { performance } from 'node:perf_hooks';
import { type Endpoint, parseEndpoint } from '../net/endpoint.js';
import { type ConfigOf, envName, flagName, type OptionDef, option, type Schema } from '../runtime/config.js';
import { boolean } from '../runtime/config-types.js';
import { CLIENT_EXIT, type ClientExitCode, clientExitCode } from './client-exit.js';

/** Where a client's target defaults to: the service's own local server (the runtime's default `--host`). */
export const CLIENT_DEFAULT_HOST = '127.0.0.1';

/** What a client command's `run` gets. */
export interface ClientRunInput<S extends Schema> {
  /** The command's settings, `json` and `timeout` included. */
  config: ConfigOf<S> & { json: boolean; timeout: number };
  positionals: string[];
  /** True with `--json`: write nothing to stdout, the runtime prints the JSON object. */
  json: boolean;
  /**
   * Parses a HOST:PORT argument: a missing argument is the service's local default endpoint
   * (`127.0.0.1:<default port>`), a host without a port gets the service's default port.
   * @throws {BadEndpointError} for anything else (exit 2).
   */
  target(text: string | undefined): Endpoint;
  /**
   * The JSON object's fields, filled in as they become known: `target` (the formatted endpoint) as soon as the
   * argument is parsed, then the command's own answer fields (`line`, `bytes`, `rttMs`...), also on failure.
   */
  report: ClientReport;
}

/** Fields of a client command's JSON object beyond the ones the runtime sets. */
export interface ClientReport {
  target?: string;
  [field: string]: unknown;
}

/** A client or check command; declare it with {@link defineClientCommand}. */
export interface ClientCommandDef<S extends Schema> {
  client: true;
  description: string;
  /** Positional arguments in the usage line, e.g. `[HOST:PORT] [MESSAGE...]`. */
  args?: string;
  maxPositionals?: number;
  /** The command's settings; `timeout` (seconds) is required: rule 9 sets it through `PREFIX_<COMMAND>_TIMEOUT`. */
  options: S;
  /** Resolves when the service answered as it should (exit 0); throws the error that decides the exit code. */
  run(input: ClientRunInput<S>): Promise<void>;
}

/** Declares a client or check command: the runtime adds `--json` and gives it the client conventions. */
export function defineClientCommand<S extends Schema & { timeout: OptionDef<number> & { default: number } }>(
  def: Omit<ClientCommandDef<S>, 'client'>,
): ClientCommandDef<Schema> {
  return { ...def, client: true } as unknown as ClientCommandDef<Schema>;
}

/** The `--json` setting every client command gets. */
function jsonOption() {
  return option({
    type: boolean(),
    default: false,
    description:
      'Print one JSON object on stdout instead of the human output: result, exitCode, target, elapsedMs, timeoutMs, the answer, error {code, message}',
  });
}

/**
 * The schema a client command is parsed with: its own settings plus `--json`, each variable named
 * `PREFIX_<COMMAND>_<SETTING>` (`ECHO_TCP_CHECK_TIMEOUT`) unless the setting names its own.
 */
export function clientCommandSchema(prefix: string, command: string, options: Schema): Schema {
  const scope = `${prefix}_${flagName(command).replace(/-/g, '_').toUpperCase()}`;
  const schema: Schema = {};
  for (const [key, def] of Object.entries({ ...options, json: jsonOption() })) {
    schema[key] = def.env === undefined ? { ...def, env: envName(scope, key, def) as string } : def;
  }
  return schema;
}

/**
 * Whether a command line asked for `--json`, for when it failed to parse: the last `--json`, `--json=VALUE` or
 * `--no-json` before `--` decides, else the variable. An unreadable value counts as no.
 */
export function jsonRequested(schema: Schema, argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const def = schema.json as OptionDef<boolean> | undefined;
  if (def === undefined) return false;
  const read = (raw: string) => {
    try {
      return def.type.parse(raw);
    } catch {
      return false;
    }
  };
  let asked: boolean | undefined;
  for (const token of argv) {
    if (token === '--') break;
    if (token === '--json') asked = true;
    else if (token === '--no-json') asked = false;
    else if (token.startsWith('--json=')) asked = read(token.slice('--json='.length));
  }
  if (asked !== undefined) return asked;
  const variable = typeof def.env === 'string' ? env[def.env] : undefined;
  return variable !== undefined && variable !== '' && read(variable);
}

/** The JSON object of a client command. */
export interface ClientResult {
  result: 'ok' | 'error';
  exitCode: ClientExitCode;
  /** The target as formatted endpoint; null when the command failed before it had one (bad usage). */
  target: string | null;
  elapsedMs: number;
  /** The effective `--timeout` in milliseconds; null when the command line could not be parsed. */
  timeoutMs: number | null;
  error?: { code: string; message: string };
  [field: string]: unknown;
}

/** Builds the JSON object; the fixed fields come first and cannot be overwritten by the command's own. */
export function clientResult(
  report: ClientReport,
  outcome: { exitCode: ClientExitCode; elapsedMs: number; timeoutMs: number | null; error?: unknown },
): ClientResult {
  const { target, ...answer } = report;
  const fixed = {
    result: outcome.error === undefined ? 'ok' : 'error',
    exitCode: outcome.exitCode,
    target: target ?? null,
    elapsedMs: Math.round(outcome.elapsedMs * 1000) / 1000,
    timeoutMs: outcome.timeoutMs,
  } as const;
  const result: ClientResult = { ...fixed, ...answer, ...fixed };
  if (outcome.error !== undefined) result.error = describeError(outcome.error);
  return result;
}

function describeError(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'ERR_CLIENT_INTERNAL',
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

/**
 * Runs a parsed client command: the exchange, then the stderr line on failure and, with `--json`, the JSON object.
 * Resolves with the exit code; never rejects.
 */
export async function runClientCommand(
  label: string,
  command: ClientCommandDef<Schema>,
  input: { config: Record<string, unknown>; positionals: string[]; defaultPort: number },
): Promise<ClientExitCode> {
  const config = input.config as ClientRunInput<Schema>['config'];
  const report: ClientReport = {};
  const started = performance.now();
  let error: unknown;
  try {
    await command.run({
      config,
      positionals: input.positionals,
      json: config.json,
      report,
      target: (text) =>
        text === undefined
          ? { kind: 'ip', family: 4, address: CLIENT_DEFAULT_HOST, port: input.defaultPort }
          : parseEndpoint(text, { defaultPort: input.defaultPort }),
    });
  } catch (err) {
    error = err;
  }
  const elapsedMs = performance.now() - started;
  const exitCode = error === undefined ? CLIENT_EXIT.OK : clientExitCode(error);
  if (error !== undefined) {
    // A bug of the client (70) shows its stack: that is what a report of it needs.
    const text =
      exitCode === CLIENT_EXIT.SOFTWARE ? ((error as Error)?.stack ?? String(error)) : (error as Error).message;
    process.stderr.write(`${label}: ${text}\n`);
  }
  if (config.json) {
    const result = clientResult(report, { exitCode, elapsedMs, timeoutMs: Math.round(config.timeout * 1000), error });
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  return exitCode;
}
