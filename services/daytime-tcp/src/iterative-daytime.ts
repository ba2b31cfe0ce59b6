/**
 * The iterative daytime server, RFC 867 over TCP: "Once a connection is established the current date and time is
 * sent out the connection as a ascii character string (and any data received is thrown away). The service
 * closes the connection after sending the quote."
 *
 * What "iterative" means here. The classic C server looped `accept(); write(ctime()); close();`: one connection answered
 * completely before the next is accepted. Node accepts eagerly (libuv drains the kernel's accept queue whenever
 * the loop runs and offers no way to pause accept(2)), so the same discipline is kept one step later: accepted
 * sockets wait in a FIFO queue (bounded by `maxPending`) and one loop answers them strictly one at a time, each
 * turn ending when the line and our FIN have been handed to the kernel. The queue is what the kernel backlog was
 * for the classic C server.
 *
 * Why a silent or slow client cannot stall it. The classic C server's `write()` could block on a peer that never read, and
 * its `close()` did not wait for the peer at all. Here a turn lasts only until the kernel has taken the bytes:
 * the line is under 40 bytes and a fresh socket's send buffer is empty (SO_SNDBUF is never below 2,048 bytes,
 * socket(7)), so write(2) returns at once whatever the peer's window; a client that never reads therefore costs
 * one turn of microseconds. Should a turn ever take longer (a kernel that will not take the bytes), `writeTimeout`
 * destroys that socket and the loop moves on. What follows the answer is out of the loop: the client's input is
 * read and discarded until it closes (closing a socket with unread input sends RST, RFC 1122 §4.2.2.13, which can
 * destroy the answer still in the client's receive buffer), and a client that never closes is destroyed after
 * `closeTimeout` (a server that only calls end() leaks half-closed sockets; docs/measurements.md §6).
 */
import type net from 'node:net';
import {
  type ConnectionTracker,
  EndOfInputHook,
  type Logger,
  type Metrics,
  nodeInternalsAvailable,
  type RawClientHandle,
} from '@net/core';
import { type DaytimeFormat, formatDaytime } from './format.js';
import { HandleClient, type ListenerCount } from './handle-client.js';

/** Settings of {@link IterativeDaytime}. */
export interface IterativeDaytimeOptions {
  format: DaytimeFormat;
  utc: boolean;
  /** Accepted connections waiting for their turn at most. */
  maxPending: number;
  writeTimeoutMs: number;
  closeTimeoutMs: number;
  /** The clock; tests inject one. */
  now?: () => Date;
  log: Logger;
  metrics: Metrics;
  connections: ConnectionTracker;
}

// Per-connection state hangs on the socket under symbols and the listeners are module-level functions (`this` is
// the socket): no closure, promise or bound function per connection (the same pattern as core's ConnectionTracker).
/** The answerer a socket belongs to. */
const kOwner: unique symbol = Symbol('daytime-tcp.owner');
/** Sweep tick at which an answered socket's --close-timeout is over; undefined while it is not lingering. */
const kDeadline: unique symbol = Symbol('daytime-tcp.deadline');

type DaytimeSocket = net.Socket & {
  [kOwner]: IterativeDaytime;
  [kDeadline]?: number | undefined;
};
/** A connection of the loop: a socket (the stream path), or a handle answered directly (handle-client.ts). */
type Client = DaytimeSocket | (HandleClient & { [kDeadline]?: number | undefined });

/**
 * Both timeouts are enforced by one sweep that ticks this many times per the shorter timeout, instead of a timer
 * per turn and per answered socket (two setTimeout/clearTimeout pairs per connection, with their Timeout objects,
 * were ~6 % of the server CPU per answer). A timeout therefore fires after its value, never before, and late by at
 * most two ticks (README, "Timeout precision").
 */
const SWEEPS_PER_TIMEOUT = 10;

function socketOnError(this: DaytimeSocket, err: NodeJS.ErrnoException): void {
  this[kOwner].socketError(err);
}

// RFC 867: "any data received is thrown away". Reading it keeps the receive buffer empty, so our eventual close
// sends FIN rather than RST.
function socketOnData(this: DaytimeSocket, chunk: Buffer): void {
  this[kOwner].received(chunk.length);
}

/** 'finish': the line and our FIN have been handed to the kernel. */
function socketOnFinish(this: DaytimeSocket): void {
  this[kOwner].answered(this);
}

function socketOnClose(this: DaytimeSocket): void {
  this[kOwner].closed(this);
}

/**
 * The end of an answered socket's input. Chunks still go through Node (read, counted, discarded). The end of the
 * input, by FIN or by reset, ends the connection quietly: Node would turn a reset into an ErrnoException whose
 * stack it then formats (destroy() reads `err.stack`), ~10 % of the server CPU per answer for clients that close
 * with a reset, when the client has had its answer and nothing is left to do but close. The hook is Node's internal
 * wiring, behind @net/core's fence (node-internals.ts; test/server.test.ts pins the behaviour); where the fence says
 * the internals are not there, or a socket's handle does not look as expected, the socket keeps Node's path.
 */
const lingerHook = nodeInternalsAvailable().available ? new EndOfInputHook(destroySocket) : undefined;

function destroySocket(socket: net.Socket): void {
  socket.destroy();
}

function sweep(owner: IterativeDaytime): void {
  owner.sweep();
}

/**
 * Answers accepted daytime connections one at a time, in arrival order. Hand it every accepted socket with
 * {@link IterativeDaytime.accept}.
 */
export class IterativeDaytime {
  readonly #options: IterativeDaytimeOptions;
  readonly #now: (() => Date) | undefined;
  /** The last line formatted and the second (ms since the epoch / 1000, floored) it is for: see #line. */
  #lineSecond = Number.NaN;
  #lineText = '';
  /** FIFO of sockets waiting for their turn: an array with a moving head, so taking the next one is O(1). */
  #queue: (Client | undefined)[] = [];
  #head = 0;
  /** The socket whose turn it is, and the sweep tick at which its --write-timeout is over. */
  #current: Client | undefined;
  #currentDeadline = 0;
  /** Length of the line the current turn writes. */
  #currentBytes = 0;
  #idleWaiters: (() => void)[] = [];
  /** Plain numbers on the hot path, read by prom-client only when /metrics is scraped. */
  #requests = 0;
  #sentBytes = 0;
  #receivedBytes = 0;
  readonly #rejected;
  readonly #limitHits;
  readonly #errors;
  #lastQueueFullWarning = 0;
  /**
   * The timeout sweep: its period, its tick count, and the timeouts in ticks. It runs only while a turn is under way
   * or a socket lingers, and is unref'd. Answered sockets linger in insertion order, which is deadline order (one
   * --close-timeout for all), so a sweep stops at the first one not yet due.
   */
  readonly #sweepMs: number;
  #sweeper: NodeJS.Timeout | undefined;
  #tick = 0;
  readonly #writeTicks: number;
  readonly #closeTicks: number;
  readonly #lingering = new Set<Client>();

  constructor(options: IterativeDaytimeOptions) {
    this.#options = options;
    this.#now = options.now;
    this.#sweepMs = Math.max(
      1,
      Math.floor(Math.min(options.writeTimeoutMs, options.closeTimeoutMs) / SWEEPS_PER_TIMEOUT),
    );
    // + 1: an item may start just before a tick, so n ticks later is only (n - 1) periods later; never fire early.
    this.#writeTicks = Math.ceil(options.writeTimeoutMs / this.#sweepMs) + 1;
    this.#closeTicks = Math.ceil(options.closeTimeoutMs / this.#sweepMs) + 1;
    const { metrics } = options;
    metrics.collect('net_requests_total', () => this.#requests);
    metrics.collect('net_sent_bytes_total', () => this.#sentBytes);
    metrics.collect('net_received_bytes_total', () => this.#receivedBytes);
    // Known label values at 0 from the start, so that rate() and increase() see the first event.
    this.#rejected = metrics.preset('net_connections_rejected_total', { reason: ['pending_queue_full'] });
    this.#limitHits = metrics.preset('net_limit_hits_total', { limit: ['write_timeout', 'close_timeout'] });
    this.#errors = metrics.counter('net_errors_total');
  }

  /** Connections accepted and not yet answered. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Takes a freshly accepted socket: tracks it, discards its input, and queues it for its answer. */
  accept(accepted: net.Socket): void {
    const socket = accepted as DaytimeSocket;
    socket[kOwner] = this;
    this.#options.connections.add(socket);
    socket.on('error', socketOnError);
    socket.on('data', socketOnData);
    if (this.pending >= this.#options.maxPending) {
      this.#rejected.inc({ reason: 'pending_queue_full' });
      this.#warnQueueFull();
      socket.destroy();
      return;
    }
    socket.on('finish', socketOnFinish);
    socket.on('close', socketOnClose);
    this.#queue.push(socket);
    if (this.#current === undefined) this.#run();
  }

  /**
   * Takes a freshly accepted handle (@net/core acceptRawHandles): the same as {@link accept} without a
   * `net.Socket`. `listener` counts the open connections of the listener it came from.
   */
  acceptHandle(handle: RawClientHandle, listener: ListenerCount): void {
    const client = new HandleClient(handle, this, listener);
    this.#options.connections.track(client);
    if (client.destroyed) return; // reading could not start: counted as an error, closing
    if (this.pending >= this.#options.maxPending) {
      this.#rejected.inc({ reason: 'pending_queue_full' });
      this.#warnQueueFull();
      client.destroy();
      return;
    }
    this.#queue.push(client);
    if (this.#current === undefined) this.#run();
  }

  /** Resolves once no connection waits for its answer. */
  idle(): Promise<void> {
    if (this.#current === undefined && this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * The loop: starts the turn of the next queued socket that is still there. A turn ends in {@link answered},
   * {@link closed} or {@link writeTimedOut}, which call this again: strictly one turn at a time.
   */
  #run(): void {
    for (let socket = this.#next(); socket !== undefined; socket = this.#next()) {
      // A client that gave up while queued needs no answer.
      if (socket.destroyed || !socket.writable) continue;
      this.#current = socket;
      this.#currentDeadline = this.#tick + this.#writeTicks;
      if (this.#sweeper === undefined) this.#startSweep();
      // end(data): 'finish' once the data and our FIN have been handed to the kernel; 'close' instead when the
      // socket fails first (then nothing was answered).
      const line = this.#line();
      this.#currentBytes = line.length;
      socket.end(line, 'latin1');
      return;
    }
    // Nothing left: the queue restarts empty and idle() waiters are told.
    this.#queue = [];
    this.#head = 0;
    const waiters = this.#idleWaiters;
    if (waiters.length === 0) return;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #next(): Client | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const socket = this.#queue[this.#head];
    this.#queue[this.#head++] = undefined; // let the socket be collected once it closes
    // Compact now and then so the array does not grow for ever under steady load.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return socket;
  }

  /** Ends the current turn and starts the next one. */
  #endTurn(): void {
    this.#current = undefined;
    this.#run();
  }

  /**
   * The line for the current second. The time is read when the turn starts, not when the connection arrived: it
   * is "the current date". The text only changes once a second (seconds are truncated), so it is formatted once per
   * second and reused. Keyed by the instant's second, so an injected clock gets exactly what formatDaytime would
   * give it.
   */
  #line(): string {
    const ms = this.#now === undefined ? Date.now() : this.#now().getTime();
    const second = Math.floor(ms / 1000);
    if (second !== this.#lineSecond) {
      const { format, utc } = this.#options;
      this.#lineText = formatDaytime(new Date(ms), format, { utc });
      this.#lineSecond = second;
    }
    return this.#lineText;
  }

  /** @internal The socket's 'finish': its answer is with the kernel. Gives the client --close-timeout to close. */
  answered(socket: Client): void {
    this.#requests++;
    this.#sentBytes += this.#currentBytes;
    if (!socket.destroyed) {
      socket[kDeadline] = this.#tick + this.#closeTicks;
      this.#lingering.add(socket);
      if (this.#sweeper === undefined) this.#startSweep();
      // A handle connection ends quietly on a reset by itself (handle-client.ts); a socket's handle is hooked.
      if (!(socket instanceof HandleClient)) lingerHook?.install(socket);
    }
    if (socket === this.#current) this.#endTurn();
  }

  /** @internal The socket's 'close'. */
  closed(socket: Client): void {
    if (socket instanceof HandleClient) this.#options.connections.untrack(socket);
    if (socket[kDeadline] !== undefined) {
      socket[kDeadline] = undefined;
      this.#lingering.delete(socket);
    }
    if (socket === this.#current) this.#endTurn();
  }

  #startSweep(): void {
    this.#sweeper = setInterval(sweep, this.#sweepMs, this);
    this.#sweeper.unref();
  }

  /** @internal One tick of the timeout sweep. */
  sweep(): void {
    const tick = ++this.#tick;
    for (const socket of this.#lingering) {
      const deadline = socket[kDeadline] ?? 0;
      if (deadline > tick) break;
      // --close-timeout: the client had its answer and did not close in time.
      socket[kDeadline] = undefined;
      this.#lingering.delete(socket);
      if (!socket.destroyed) {
        this.#limitHits.inc({ limit: 'close_timeout' });
        socket.destroy();
      }
    }
    const current = this.#current;
    if (current !== undefined && this.#currentDeadline <= tick) {
      // --write-timeout: the kernel would not take the answer; the next client must not wait for this one.
      this.#limitHits.inc({ limit: 'write_timeout' });
      this.#options.log.debug('write timeout: destroying a client that would not take its answer');
      current.destroy();
      this.#endTurn();
    }
    if (this.#current === undefined && this.#lingering.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /** @internal A client socket's 'error'. */
  socketError(err: NodeJS.ErrnoException): void {
    // ECONNRESET from a client that gave up is ordinary; counted, logged at debug only.
    this.#errors.inc({ code: err.code ?? 'unknown' });
    this.#options.log.debug({ err }, 'client socket error');
  }

  /** @internal Bytes a client sent (read and discarded). */
  received(bytes: number): void {
    this.#receivedBytes += bytes;
  }

  #warnQueueFull(): void {
    // At most one warning per 10 s: a flood must not become a log flood.
    const now = performance.now();
    if (now - this.#lastQueueFullWarning < 10_000) return;
    this.#lastQueueFullWarning = now;
    this.#options.log.warn(
      { maxPending: this.#options.maxPending },
      'pending queue full: closing new connections at once (see net_connections_rejected_total{reason="pending_queue_full"})',
    );
  }
}
