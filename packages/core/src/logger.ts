/**
 * Logging with pino: JSON lines on stdout by default, pretty when stdout is a terminal or when asked.
 * Every line carries `service` and `instance` (host name by default, or POD_NAME/HOSTNAME) so that replicas
 * behind a load balancer can be told apart. Per-connection lines belong at `debug`: at `info` a busy service
 * writes nothing per connection, which keeps logging off the hot path (measured in the benchmark).
 */
import { hostname } from 'node:os';
import type { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

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
  if (usePretty) {
    // pino-pretty as a stream in this thread, not a transport: no worker thread, and lines are never lost on exit.
    const stream = pretty({
      colorize: process.stdout.isTTY === true,
      destination: options.destination ?? 1,
      sync: true,
    });
    return pino(pinoOptions, stream);
  }
  if (options.destination) return pino(pinoOptions, options.destination as Writable);
  // Synchronous writes to fd 1: a crash or a fast exit never loses the last lines (the fatal line with the stack
  // matters most), and at info level a service writes a handful of lines, so async buffering would buy nothing.
  return pino(pinoOptions, pino.destination({ dest: 1, sync: true }));
}
