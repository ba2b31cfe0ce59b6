/**
 * The iterative daytime server, RFC 867 over TCP: "Once a connection is established the current date and time is
 * sent out the connection as a ascii character string (and any data received is thrown away). The service
 * closes the connection after sending the quote."
 *
 * What "iterative" means here. The seed looped `accept(); write(ctime()); close();`: one connection answered
 * completely before the next is accepted. Node accepts eagerly (libuv drains the kernel's accept queue whenever
 * the loop runs and offers no way to pause accept(2)), so the same discipline is kept one step later: accepted
 * sockets wait in a FIFO queue (bounded by `maxPending`) and one loop answers them strictly one at a time, each
 * turn ending when the line and our FIN have been handed to the kernel. The queue is what the kernel backlog was
 * for the seed.
 *
 * Why a silent or slow client cannot stall it. The seed's `write()` could block on a peer that never read, and
 * its `close()` did not wait for the peer at all. Here a turn lasts only until the kernel has taken the bytes:
 * the line is under 40 bytes and a fresh socket's send buffer is empty (SO_SNDBUF is never below 2,048 bytes,
 * socket(7)), so write(2) returns at once whatever the peer's window; a client that never reads therefore costs
 * one turn of microseconds. Should a turn ever take longer (a kernel that will not take the bytes), `writeTimeout`
 * destroys that socket and the loop moves on. What follows the answer is out of the loop: the client's input is
 * read and discarded until it closes (closing a socket with unread input sends RST, RFC 1122 §4.2.2.13, which can
 * destroy the answer still in the client's receive buffer), and a client that never closes is destroyed after
 * `closeTimeout` (a server that only calls end() leaks half-closed sockets; research §6).
 */
import type net from 'node:net';
import type { ConnectionTracker, Logger, Metrics } from '@net/core';
import { type DaytimeFormat, formatDaytime } from './format.js';

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

/**
 * Answers accepted daytime connections one at a time, in arrival order. Hand it every accepted socket with
 * {@link IterativeDaytime.accept}.
 */
export class IterativeDaytime {
  readonly #options: IterativeDaytimeOptions;
  readonly #now: () => Date;
  /** FIFO of sockets waiting for their turn: an array with a moving head, so taking the next one is O(1). */
  #queue: (net.Socket | undefined)[] = [];
  #head = 0;
  #busy = false;
  #idleWaiters: (() => void)[] = [];
  #sentBytes = 0;
  #receivedBytes = 0;
  readonly #requests;
  readonly #rejected;
  readonly #limitHits;
  readonly #errors;
  #lastQueueFullWarning = 0;

  constructor(options: IterativeDaytimeOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    const { metrics } = options;
    metrics.collect('net_sent_bytes_total', () => this.#sentBytes);
    metrics.collect('net_received_bytes_total', () => this.#receivedBytes);
    this.#requests = metrics.counter('net_requests_total');
    this.#rejected = metrics.counter('net_connections_rejected_total');
    this.#limitHits = metrics.counter('net_limit_hits_total');
    this.#errors = metrics.counter('net_errors_total');
  }

  /** Connections accepted and not yet answered. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Takes a freshly accepted socket: tracks it, discards its input, and queues it for its answer. */
  accept(socket: net.Socket): void {
    const { connections, log } = this.#options;
    connections.add(socket);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // ECONNRESET from a client that gave up is ordinary; counted, logged at debug only.
      this.#errors.inc({ code: err.code ?? 'unknown' });
      log.debug({ err }, 'client socket error');
    });
    // RFC 867: "any data received is thrown away". Reading it keeps the receive buffer empty, so our eventual
    // close sends FIN rather than RST.
    socket.on('data', (chunk: Buffer) => {
      this.#receivedBytes += chunk.length;
    });
    if (this.pending >= this.#options.maxPending) {
      this.#rejected.inc({ reason: 'pending_queue_full' });
      this.#warnQueueFull();
      socket.destroy();
      return;
    }
    this.#queue.push(socket);
    if (!this.#busy) void this.#run();
  }

  /** Resolves once no connection waits for its answer. */
  idle(): Promise<void> {
    if (!this.#busy && this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** The loop: one turn per queued socket, strictly one at a time. */
  async #run(): Promise<void> {
    this.#busy = true;
    try {
      for (let socket = this.#next(); socket !== undefined; socket = this.#next()) {
        await this.#answer(socket);
      }
    } finally {
      this.#busy = false;
      this.#queue = [];
      this.#head = 0;
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  #next(): net.Socket | undefined {
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

  /** One turn: resolves once the line and FIN are with the kernel, the socket is gone, or the write timed out. */
  #answer(socket: net.Socket): Promise<void> {
    // A client that gave up while queued needs no answer.
    if (socket.destroyed || !socket.writable) return Promise.resolve();
    const { format, utc, writeTimeoutMs } = this.#options;
    // The time is read when the turn starts, not when the connection arrived: it is "the current date".
    const line = formatDaytime(this.#now(), format, { utc });
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.off('close', finish);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#limitHits.inc({ limit: 'write_timeout' });
        this.#options.log.debug('write timeout: destroying a client that would not take its answer');
        socket.destroy();
        finish();
      }, writeTimeoutMs);
      socket.once('close', finish);
      // end(data, cb): cb runs on 'finish', when the data and our FIN have been handed to the kernel.
      // It is also called, with an error, when the socket fails first; then nothing was answered.
      socket.end(line, 'latin1', (err?: Error | null) => {
        if (!err) {
          this.#requests.inc();
          this.#sentBytes += line.length;
          this.#lingerThenDestroy(socket);
        }
        finish();
      });
    });
  }

  /** Gives the client `closeTimeout` to read the answer and close, then destroys the socket. */
  #lingerThenDestroy(socket: net.Socket): void {
    if (socket.destroyed) return;
    const timer = setTimeout(() => {
      this.#limitHits.inc({ limit: 'close_timeout' });
      socket.destroy();
    }, this.#options.closeTimeoutMs);
    socket.once('close', () => clearTimeout(timer));
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
