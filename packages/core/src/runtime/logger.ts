/**
 * Logging with pino: JSON lines on stdout by default, pretty when stdout is a terminal or when asked.
 * Every line carries `service` and `instance` (host name by default, or POD_NAME/HOSTNAME) so that replicas
 * behind a load balancer can be told apart. Per-connection lines belong at `debug`: at `info` a busy service
 * writes nothing per connection, which keeps logging off the hot path (measured in the benchmark).
 *
 * pino-pretty is a development dependency: the container images (`pnpm deploy --prod`) do not carry it, and there
 * the logger writes JSON lines whatever the format asks for, saying so once when `pretty` was asked explicitly.
 */
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { Writable } from 'node:stream';
import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LoggerOptions {
  service: string;
  instance: string;
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; stdout by default. Tests pass a capture stream. */
  destination?: NodeJS.WritableStream;
  /** Where pino-pretty is resolved from (a file path or URL); this module by default. */
  prettyFrom?: string;
}

type PrettyFactory = (options: {
  colorize: boolean;
  destination: number | NodeJS.WritableStream;
  sync: boolean;
}) => DestinationStream;

/**
 * pino-pretty's stream factory, or undefined when the package cannot be resolved from `from` (a production install
 * without development dependencies). Loaded with require, as pino-pretty is CommonJS and createLogger is synchronous.
 */
export function loadPinoPretty(from: string = import.meta.url): PrettyFactory | undefined {
  try {
    return createRequire(from)('pino-pretty') as PrettyFactory;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND') return undefined;
    throw err;
  }
}

/** The default instance id: the pod name in Kubernetes, else the host name (a container id under Docker). */
export function defaultInstance(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || env.HOSTNAME || hostname();
}

/** Creates the process's root logger. */
export function createLogger(options: LoggerOptions): Logger {
  const usePretty = options.format === 'pretty' || (options.format === 'auto' && process.stdout.isTTY === true);
  const base = { service: options.service, instance: options.instance, pid: process.pid };
  const pinoOptions = { level: options.level, base, timestamp: pino.stdTimeFunctions.isoTime };
  const pretty = usePretty ? loadPinoPretty(options.prettyFrom) : undefined;
  if (pretty) {
    // pino-pretty as a stream in this thread, not a transport: no worker thread, and lines are never lost on exit.
    const stream = pretty({
      colorize: process.stdout.isTTY === true,
      destination: options.destination ?? 1,
      sync: true,
    });
    return pino(pinoOptions, stream);
  }
  // Synchronous writes to fd 1: a crash or a fast exit never loses the last lines (the fatal line with the stack
  // matters most), and at info level a service writes a handful of lines, so async buffering would buy nothing.
  const log = options.destination
    ? pino(pinoOptions, options.destination as Writable)
    : pino(pinoOptions, pino.destination({ dest: 1, sync: true }));
  if (options.format === 'pretty')
    log.warn('log format pretty needs pino-pretty (a development dependency, not installed here): writing JSON lines');
  return log;
}
