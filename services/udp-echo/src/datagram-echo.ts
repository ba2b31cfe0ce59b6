/**
 * The RFC 862 UDP echo: "When a datagram is received, the data from it is sent back in an answering datagram."
 * The reply is the received Buffer itself, sent back to the datagram's source through the socket it arrived on, so
 * it can never be larger than the request (no amplification) and nothing is copied.
 *
 * Before answering, three gates, cheapest first: the reflection guard (one array load), the per-source rate limiter
 * (one Map lookup), and the bound on replies queued in user space. A datagram refused by a gate is counted by reason
 * and never answered. Counting is plain number arithmetic; the metrics read the numbers at scrape time.
 */
import type dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReflectionGuard } from '@net/core';
import { DROP, DROP_REASONS, type DropReason, type DropSlot } from './drop-reasons.js';
import { type RateLimiter, VERDICT } from './rate-limiter.js';

/** Told of one dropped datagram: why, where from, its payload size (given to engines at debug level only). */
export type DropListener = (reason: DropReason, source: { address: string; port: number }, size: number) => void;

/** Options of {@link UdpEcho}. */
export interface UdpEchoOptions {
  guard: ReflectionGuard;
  /** Undefined when both rate limits are off. */
  limiter: RateLimiter | undefined;
  /** Reply bytes queued in libuv (the kernel's send buffer full) past which datagrams are dropped. */
  maxQueuedBytes: number;
  /** Called for each dropped datagram when debug logging is on; never on the default log level. */
  onDrop?: DropListener | undefined;
  /** Called with a socket error (recv or send failure); the socket stays open. */
  onError?: (err: NodeJS.ErrnoException) => void;
}

/** What the service needs of an echo engine: this dgram one, or the batch one (batch-echo.ts). */
export interface EchoEngine {
  readonly received: number;
  readonly receivedBytes: number;
  readonly sent: number;
  readonly sentBytes: number;
  /** Dropped datagrams by reason, at each reason's slot (drop-reasons.ts). */
  readonly dropped: Float64Array;
  /** Socket errors by code (`net_errors_total`). */
  readonly errors: ReadonlyMap<string, number>;
  /** Sources in the rate limiter's table (0 without one). */
  readonly sources: number;
  /** Adds a bound socket; answering starts with {@link start} (dgram: at once). */
  attach(socket: dgram.Socket): void;
  start(): Promise<void>;
  /** Resolves once the traffic has stopped and every reply started has left, then closes the sockets. */
  drained(quietMs: number): Promise<void>;
  /** Closes every socket now. */
  close(): Promise<void>;
}

/**
 * Resolves once `received()` has not changed for `quietMs`.
 *
 * UDP has no connection whose end marks the end of the work: a client may be in the middle of an exchange, and a
 * load balancer keeps sending until its health check sees /readyz fail. So a drain keeps answering and ends when
 * the traffic does; the runtime's --drain-timeout bounds it when the traffic never stops.
 */
export async function untilQuiet(received: () => number, quietMs: number): Promise<void> {
  // Sampling the receive counter costs nothing on the hot path; quiet means `ticks` samples in a row unchanged.
  const ticks = 4;
  let seen = received();
  let unchanged = 0;
  while (quietMs > 0 && unchanged < ticks) {
    await sleep(quietMs / ticks);
    unchanged = received() === seen ? unchanged + 1 : 0;
    seen = received();
  }
}

/** Closes every socket and resolves once each has; one already closed counts as closed. */
export async function closeSockets(sockets: readonly dgram.Socket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          try {
            socket.close(() => resolve());
          } catch {
            resolve(); // already closed
          }
        }),
    ),
  );
}

/** The echo over any number of bound sockets, with its counters: one dgram 'message' event per datagram. */
export class UdpEcho implements EchoEngine {
  /** Datagrams and payload bytes received, answered; dropped ones by reason slot (drop-reasons.ts). */
  received = 0;
  receivedBytes = 0;
  sent = 0;
  sentBytes = 0;
  readonly dropped = new Float64Array(DROP_REASONS.length);
  /** Socket errors by code (`net_errors_total`). */
  readonly errors = new Map<string, number>();

  readonly #options: UdpEchoOptions;
  readonly #sockets: dgram.Socket[] = [];
  #inFlight = 0;
  #closed = false;

  constructor(options: UdpEchoOptions) {
    this.#options = options;
  }

  get sources(): number {
    return this.#options.limiter?.size ?? 0;
  }

  /** Replies not yet handed to the kernel or failed (the drain waits for them). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Starts answering on a bound socket. One message handler and one send callback per socket, none per datagram. */
  attach(socket: dgram.Socket): void {
    const { guard, limiter, maxQueuedBytes, onDrop } = this.#options;
    const afterSend = (err: Error | null, bytes: number) => {
      this.#inFlight--;
      if (err) this.#countError(err as NodeJS.ErrnoException);
      else {
        this.sent++;
        this.sentBytes += bytes;
      }
    };
    const drop = (reason: DropSlot, rinfo: dgram.RemoteInfo, size: number) => {
      this.dropped[reason]! += 1;
      if (onDrop) onDrop(DROP_REASONS[reason]!, rinfo, size);
    };
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      this.received++;
      this.receivedBytes += msg.length;
      if (this.#closed) return;
      // CVE-1999-0103: never answer a port that may answer back.
      if (guard.blocks(rinfo.port)) return drop(DROP.reflection_guard, rinfo, msg.length);
      if (limiter !== undefined) {
        const verdict = limiter.check(rinfo.address, msg.length, performance.now());
        if (verdict !== VERDICT.PASS) return drop(verdict, rinfo, msg.length);
      }
      // dgram queues a send in user space when the kernel's send buffer is full: bound that queue.
      if (socket.getSendQueueSize() > maxQueuedBytes) return drop(DROP.send_queue_full, rinfo, msg.length);
      this.#inFlight++;
      socket.send(msg, rinfo.port, rinfo.address, afterSend);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => this.#countError(err));
    this.#sockets.push(socket);
  }

  /**
   * Resolves once no datagram has arrived for `quietMs` (see {@link untilQuiet}) and every reply started has left,
   * then closes the sockets.
   */
  async drained(quietMs: number): Promise<void> {
    await untilQuiet(() => this.received, quietMs);
    while (this.#inFlight > 0) await sleep(10);
    await this.close();
  }

  /** Nothing to start: attach() starts answering at once. */
  async start(): Promise<void> {}

  /** Closes every socket now; replies still queued in user space are cancelled. */
  async close(): Promise<void> {
    this.#closed = true;
    await closeSockets(this.#sockets.splice(0));
  }

  #countError(err: NodeJS.ErrnoException): void {
    const code = err.code ?? 'UNKNOWN';
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    this.#options.onError?.(err);
  }
}
