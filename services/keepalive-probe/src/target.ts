/**
 * One watched target: holds a TCP connection to it with the exact keepalive settings, so that the kernel's probes
 * tell us when the host, the path or a NAT on the way forgets the connection; reconnects with exponential backoff.
 * The state is `up` while a connection is held, `down` from the first failure until a connection is held again.
 */
import type net from 'node:net';
import {
  ConnectError,
  connect,
  type Endpoint,
  formatEndpoint,
  type Logger,
  type Metrics,
  TimeoutError,
} from '@net/core';
import { isPeerDeadError, type PeerDeadReporter } from './peer-dead.js';
import { applyProbeSettings, type ProbeSettings } from './settings.js';

export type TargetState = 'unknown' | 'up' | 'down';

/** Backoff and connect limits, in milliseconds. */
export interface TargetTiming {
  connectTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

/** A connection that stayed up this long resets the backoff: the target is not flapping. */
const STABLE_MS = 10_000;

export interface TargetOptions {
  endpoint: Endpoint;
  settings: ProbeSettings;
  timing: TargetTiming;
  log: Logger;
  metrics: Metrics;
  reporter: PeerDeadReporter;
  /** Called on every state transition (after the log line and the gauge). */
  onChange?: (target: WatchedTarget) => void;
}

/** Holds a connection to one target and reports its state. */
export class WatchedTarget {
  /** The target as given, formatted; the metric label and the log field. */
  readonly name: string;
  readonly #o: TargetOptions;
  readonly #abort = new AbortController();
  #state: TargetState = 'unknown';
  #reason = '';
  #since = performance.now();
  #failures = 0;
  #attempts = 0;
  #socket: net.Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: TargetOptions) {
    this.#o = options;
    this.name = formatEndpoint(options.endpoint);
    options.metrics.gauge('net_watch_target_up').set({ target: this.name }, 0);
    options.metrics.counter('net_watch_reconnects_total').inc({ target: this.name }, 0);
  }

  get state(): TargetState {
    return this.#state;
  }

  /** Why the target is down (an errno code, `connect timeout`, `closed by peer`), or '' when up. */
  get reason(): string {
    return this.#reason;
  }

  /** Starts the first connection attempt. */
  start(): void {
    void this.#attempt();
  }

  /** Closes the connection and stops reconnecting. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    this.#socket?.destroy();
  }

  async #attempt(): Promise<void> {
    if (this.#stopped) return;
    if (this.#attempts++ > 0) this.#o.metrics.counter('net_watch_reconnects_total').inc({ target: this.name });
    let socket: net.Socket;
    try {
      socket = await connect(this.#o.endpoint, {
        timeoutMs: this.#o.timing.connectTimeoutMs,
        signal: this.#abort.signal,
      });
    } catch (err) {
      if (this.#stopped) return;
      this.#down(reasonOf(err), err);
      this.#retry();
      return;
    }
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    try {
      applyProbeSettings(socket, this.#o.settings);
    } catch (err) {
      // Not a target problem but ours: say so at error level, and keep trying (the next socket may work).
      this.#o.log.error({ err, target: this.name }, `cannot apply keepalive to the connection to ${this.name}`);
      socket.destroy();
      this.#down('keepalive not applied', err);
      this.#retry();
      return;
    }
    this.#hold(socket);
  }

  #hold(socket: net.Socket): void {
    this.#socket = socket;
    const openedAt = performance.now();
    let lastByteAt = openedAt;
    let failure: NodeJS.ErrnoException | undefined;
    this.#up();
    // Whatever the target sends is read and dropped: reading keeps its window open and our timestamps fresh.
    socket.on('data', () => {
      lastByteAt = performance.now();
    });
    socket.on('end', () => socket.end());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failure = err;
      if (isPeerDeadError(err)) this.#o.reporter.report({ peer: this.name, openedAt, lastByteAt, err });
    });
    socket.once('close', () => {
      this.#socket = undefined;
      if (this.#stopped) return;
      if (performance.now() - openedAt >= STABLE_MS) this.#failures = 0;
      this.#down(failure?.code ?? 'closed by peer', failure);
      this.#retry();
    });
  }

  #retry(): void {
    if (this.#stopped) return;
    const { backoffInitialMs, backoffMaxMs } = this.#o.timing;
    const ceiling = Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(this.#failures, 30));
    this.#failures++;
    // Jitter between half and all of the delay: many watchers of one restarted target do not reconnect in step.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.#o.log.debug({ target: this.name, delayMs: Math.round(delay) }, 'reconnecting');
    this.#timer = setTimeout(() => void this.#attempt(), delay);
  }

  #up(): void {
    const previous = this.#state;
    const downSeconds = (performance.now() - this.#since) / 1000;
    this.#state = 'up';
    this.#reason = '';
    this.#since = performance.now();
    this.#o.metrics.gauge('net_watch_target_up').set({ target: this.name }, 1);
    this.#o.log.info(
      { event: 'target_up', target: this.name, ...(previous === 'down' ? { downSeconds: round(downSeconds) } : {}) },
      `target up: ${this.name}`,
    );
    this.#o.onChange?.(this);
  }

  #down(reason: string, err: unknown): void {
    this.#reason = reason;
    if (this.#state === 'down') {
      this.#o.log.debug({ target: this.name, reason }, 'target still down');
      return;
    }
    const previous = this.#state;
    const upSeconds = (performance.now() - this.#since) / 1000;
    this.#state = 'down';
    this.#since = performance.now();
    this.#o.metrics.gauge('net_watch_target_up').set({ target: this.name }, 0);
    this.#o.log.info(
      {
        event: 'target_down',
        target: this.name,
        reason,
        ...(previous === 'up' ? { upSeconds: round(upSeconds) } : {}),
        ...(err instanceof Error && err.message !== reason ? { detail: err.message } : {}),
      },
      `target down: ${this.name} (${reason})`,
    );
    this.#o.onChange?.(this);
  }
}

/** A short reason for logs and `--once` output: the errno of each address tried, or `connect timeout`. */
export function reasonOf(err: unknown): string {
  if (err instanceof TimeoutError) return 'connect timeout';
  if (err instanceof ConnectError) {
    const codes = [...new Set(err.attempts.map((a) => (a.error as NodeJS.ErrnoException).code ?? a.error.message))];
    return codes.join(', ') || 'no address';
  }
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message ?? String(err);
}

function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}
