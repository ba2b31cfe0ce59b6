/**
 * Open-connection bookkeeping for drain and limits. `net.Server` has no `closeAllConnections()` (only
 * `http.Server` does) and its own count goes wrong for sockets re-wrapped around a handle, so services track
 * their sockets here: one Set, O(1) add and delete, and a promise that resolves when the last one closes.
 */
import type { Socket } from 'node:net';
import type { Metrics, PlainHistogram } from './metrics.js';

// Per-connection state hangs on the socket under a symbol and one module-level 'close' listener serves every
// socket: no closure per connection. Measured by the echo-tcp churn benchmark: a closure, `once` and two
// prom-client calls per connection cost 1.2 us against 0.17 us for a Set add with a shared listener.
const kTracked = Symbol('net.connectionTracker');
interface Tracked {
  tracker: ConnectionTracker;
  opened: number;
}
type TrackedSocket = Socket & { [kTracked]?: Tracked };

/**
 * A connection that is not a `net.Socket` (a service answering on the accepted libuv handle, as daytime-tcp does):
 * it tells the tracker itself when it has closed ({@link ConnectionTracker.untrack}). The tracker keeps its opening
 * time on it.
 */
export interface HandleConnection {
  /** Closes it at once (the end of the drain period). */
  destroy(): void;
  /** @internal Set by the tracker. */
  trackedSince?: number;
}

function trackedSocketOnClose(this: TrackedSocket): void {
  const state = this[kTracked];
  if (state) state.tracker.closed(this, state.opened);
}

export class ConnectionTracker {
  readonly #open = new Set<Socket>();
  readonly #handles = new Set<HandleConnection>();
  #idleWaiters: (() => void)[] = [];
  readonly #metrics: Metrics | undefined;
  #registered = false;
  /** Accepted connections, read by prom-client at scrape time (a plain add per connection). */
  #total = 0;
  #duration: PlainHistogram | undefined;

  /**
   * @param options.eager register `net_connections_open`, `net_connections_total` and
   *   `net_connection_duration_seconds` now (default), so that a TCP service shows `net_connections_open 0` before
   *   its first client; `false` registers them on the first `add()` only, so a UDP service never shows them.
   */
  constructor(metrics?: Metrics, options: { eager?: boolean } = {}) {
    this.#metrics = metrics;
    if (options.eager !== false) this.#register();
  }

  #register(): void {
    const metrics = this.#metrics;
    if (!metrics || this.#registered) return;
    this.#registered = true;
    metrics.collect('net_connections_open', () => this.size);
    metrics.collect('net_connections_total', () => this.#total);
    // Observed once per connection: plain numbers, handed to prom-client at scrape time.
    this.#duration = metrics.plainHistogram('net_connection_duration_seconds');
  }

  /** Number of open connections. */
  get size(): number {
    return this.#open.size + this.#handles.size;
  }

  /** Tracks a socket until it closes; counts it and observes its lifetime when it does. */
  add(socket: Socket): void {
    if (!this.#registered) this.#register();
    this.#open.add(socket);
    this.#total++;
    (socket as TrackedSocket)[kTracked] = { tracker: this, opened: performance.now() };
    socket.on('close', trackedSocketOnClose);
  }

  /** Tracks a connection that is not a socket until {@link untrack}; counts it. */
  track(connection: HandleConnection): void {
    if (!this.#registered) this.#register();
    this.#handles.add(connection);
    this.#total++;
    connection.trackedSince = performance.now();
  }

  /** A connection given to {@link track} has closed: observes its lifetime. */
  untrack(connection: HandleConnection): void {
    if (!this.#handles.delete(connection)) return;
    this.#duration?.observe((performance.now() - (connection.trackedSince ?? 0)) / 1000);
    this.#idleIfEmpty();
  }

  /**
   * A tracked socket's handle moved to `replacement` (a service re-wrapped it, as echo-tcp does after a PROXY
   * header): tracks the replacement instead, as the same connection (same opening time, not counted again). The
   * old socket is never destroyed in such a move, so its 'close' would never come.
   */
  replace(old: Socket, replacement: Socket): void {
    const state = (old as TrackedSocket)[kTracked];
    if (state === undefined || state.tracker !== this || !this.#open.delete(old)) {
      this.add(replacement);
      return;
    }
    old.off('close', trackedSocketOnClose);
    delete (old as TrackedSocket)[kTracked];
    this.#open.add(replacement);
    (replacement as TrackedSocket)[kTracked] = state;
    replacement.on('close', trackedSocketOnClose);
  }

  /** @internal Called by the shared 'close' listener. */
  closed(socket: Socket, opened: number): void {
    if (!this.#open.delete(socket)) return;
    this.#duration?.observe((performance.now() - opened) / 1000);
    this.#idleIfEmpty();
  }

  #idleIfEmpty(): void {
    if (this.size !== 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once no connection is open. */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Calls `fn` on every open socket (e.g. to half-close them at the start of a drain); not on tracked handles. */
  forEach(fn: (socket: Socket) => void): void {
    for (const s of this.#open) fn(s);
  }

  /** Calls `fn` on every connection given to {@link track} (the ones that are not sockets). */
  forEachHandle(fn: (connection: HandleConnection) => void): void {
    for (const c of this.#handles) fn(c);
  }

  /** Destroys every open socket (end of the drain period). */
  destroyAll(): void {
    for (const s of this.#open) s.destroy();
    for (const c of this.#handles) c.destroy();
  }
}
