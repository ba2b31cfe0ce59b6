/**
 * `keepalive-probe watch HOST:PORT...`: the client side of the probe. It holds one connection per target with the
 * exact keepalive settings and reports each target up or down: log lines on transitions, `net_watch_target_up` and
 * `net_watch_reconnects_total` on the admin endpoint. With `--once` it is a check: connect to every target, print
 * each state, exit 0 when all are up (as soon as they are), 1 when any is still down at `--once-timeout`.
 *
 * A `runtime: true` command rather than `serve`: it listens on nothing, so `--host`/`--port`, the
 * `ready: listening on` line and the drain of accepted connections do not apply; the runtime gives it the logger,
 * metrics, admin endpoint and SIGTERM/SIGINT handling of `serve`, with the same flags, formats and metric names.
 */
import {
  ConfigError,
  type ConfigOf,
  type Endpoint,
  formatEndpoint,
  parseEndpoint,
  type RuntimeCommandInput,
  SocketOptionError,
  SocketOptionUnsupportedError,
} from '@net/core';
import type { watchOptions } from './config.js';
import { PeerDeadReporter } from './peer-dead.js';
import { checkSettings, describeInteraction, detectionWindow, type ProbeSettings } from './settings.js';
import { WatchedTarget } from './target.js';

/** Exit codes of `watch` (2, bad usage, 70 and 130 come from the runtime). */
export const WATCH_EXIT = {
  /** `--once`: every target up. Without `--once`: stopped by SIGTERM/SIGINT. */
  OK: 0,
  /** `--once`: at least one target still down at `--once-timeout` (or stopped by a signal before all were up). */
  DOWN: 1,
  /** The keepalive settings cannot be applied on this platform, or the admin endpoint cannot listen. */
  CANNOT_START: 3,
} as const;

/** At most this many targets: each is a metric label value, so the set must stay small. */
export const MAX_TARGETS = 256;

type WatchInput = RuntimeCommandInput<ReturnType<typeof watchOptions>>;
type WatchConfig = ConfigOf<ReturnType<typeof watchOptions>>;

/** Where `watch` logs: stderr with `--once`, whose stdout carries only the result lines. */
export function watchLogDestination(config: Pick<WatchConfig, 'once'>): 'stdout' | 'stderr' {
  return config.once ? 'stderr' : 'stdout';
}

/** Runs `watch` under the runtime; resolves with the exit code. */
export async function runWatch({
  config,
  positionals,
  log,
  metrics,
  readiness,
  admin,
  signal,
}: WatchInput): Promise<number> {
  const endpoints = parseTargets(positionals);
  if (config.backoffMax < config.backoffInitial) {
    throw new ConfigError(
      '--backoff-max',
      String(config.backoffMax),
      `expected a delay no shorter than --backoff-initial (${config.backoffInitial} s)`,
    );
  }
  const settings: ProbeSettings = {
    idle: config.idle,
    interval: config.interval,
    count: config.count,
    userTimeout: config.userTimeout,
  };

  let applied: Awaited<ReturnType<typeof checkSettings>>;
  try {
    applied = await checkSettings(settings);
  } catch (err) {
    if (err instanceof SocketOptionError || err instanceof SocketOptionUnsupportedError) {
      log.fatal({ err }, `cannot apply the keepalive settings: ${err.message}`);
      process.stderr.write(`keepalive-probe watch: cannot apply the keepalive settings: ${err.message}\n`);
      return WATCH_EXIT.CANNOT_START;
    }
    throw err;
  }

  const reporter = new PeerDeadReporter(log, metrics, applied);
  const window = detectionWindow(applied);
  log.info(
    {
      targets: endpoints.map(formatEndpoint),
      keepalive: applied.keepalive,
      userTimeoutMs: applied.userTimeoutMs,
      detectionSeconds: window,
      ...(admin ? { admin: admin.url } : {}),
    },
    `watching ${endpoints.length} target${endpoints.length === 1 ? '' : 's'} with keepalive idle=${applied.keepalive.idle}s interval=${applied.keepalive.interval}s count=${applied.keepalive.count} (read back)`,
  );
  log.info({ userTimeoutMs: applied.userTimeoutMs }, describeInteraction(applied));

  let settle: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    settle = resolve;
  });
  const targets = endpoints.map(
    (endpoint) =>
      new WatchedTarget({
        endpoint,
        settings,
        timing: {
          connectTimeoutMs: config.connectTimeout * 1000,
          backoffInitialMs: config.backoffInitial * 1000,
          backoffMaxMs: config.backoffMax * 1000,
        },
        log,
        metrics,
        reporter,
        onChange: () => {
          if (config.once && targets.every((t) => t.state === 'up')) settle(WATCH_EXIT.OK);
        },
      }),
  );

  // The runtime logs `stopping` and aborts the signal on SIGTERM/SIGINT (a second one exits 130 at once).
  const onAbort = () => settle(config.once ? WATCH_EXIT.DOWN : WATCH_EXIT.OK);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const onceTimer = config.once ? setTimeout(() => settle(WATCH_EXIT.DOWN), config.onceTimeout * 1000) : undefined;
  for (const target of targets) target.start();
  // Ready means doing its job: every target has its first attempt under way (/readyz 200, net_ready 1).
  if (!signal.aborted) readiness.ready = true;

  const code = await finished;
  clearTimeout(onceTimer);
  signal.removeEventListener('abort', onAbort);
  for (const target of targets) target.stop();
  if (config.once) printStates(targets);
  reporter.flush();
  return code;
}

/** `up    HOST:PORT` or `down  HOST:PORT (reason)`, one line per target, then a count. */
function printStates(targets: readonly WatchedTarget[]): void {
  const lines = targets.map((t) =>
    t.state === 'up' ? `up    ${t.name}` : `down  ${t.name} (${t.reason || 'no answer yet'})`,
  );
  const up = targets.filter((t) => t.state === 'up').length;
  lines.push(`${up} of ${targets.length} targets up`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/**
 * Parses the positional targets: TCP endpoints with a port, deduplicated.
 * @throws {ConfigError} none given, a Unix socket, port 0, too many, or an unparsable one.
 */
export function parseTargets(positionals: readonly string[]): Endpoint[] {
  if (positionals.length === 0) {
    throw new ConfigError('targets', undefined, 'expected at least one HOST:PORT to watch');
  }
  if (positionals.length > MAX_TARGETS) {
    throw new ConfigError('targets', undefined, `expected at most ${MAX_TARGETS} targets, got ${positionals.length}`);
  }
  const seen = new Map<string, Endpoint>();
  for (const raw of positionals) {
    let endpoint: Endpoint;
    try {
      endpoint = parseEndpoint(raw);
    } catch (err) {
      throw new ConfigError('target', raw, (err as Error).message);
    }
    if (endpoint.kind === 'unix') throw new ConfigError('target', raw, 'expected a TCP HOST:PORT (keepalive is TCP)');
    if (endpoint.port === 0) throw new ConfigError('target', raw, 'expected a port from 1 to 65535');
    seen.set(formatEndpoint(endpoint), endpoint);
  }
  return [...seen.values()];
}
