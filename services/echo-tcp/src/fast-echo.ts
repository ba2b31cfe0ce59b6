/**
 * The fast echo, of the plain listeners and of PROXY listeners once a connection's header is read
 * (docs/measurements.md §7). Node's internals it stands on (the handle's read callback, the direct write) are
 * @net/core's fence, node-internals.ts; this module only hands it callbacks:
 *
 *   a read lands in the engine's one read buffer -> the bytes are copied into the slab (echo-slab.ts) -> the copy is
 *   written straight on the handle -> past --max-buffered queued, reading stops until the queued writes are out.
 *
 * One read buffer serves every connection of the engine, so no Buffer and no 64 KiB allocation is made per read, and
 * the readable stream (push, 'data', nextTick) is skipped. A bulk connection (reads of BULK_READ or more) reads into
 * a buffer of its own instead, written from without the copy (#writeOwn): in the 8 x 64 KiB stream scenario the
 * copy and its view were 2-14 % of the server's samples (bench:profile). Measured: see the README's performance section. Everything
 * else of the stream echo (stream-echo.ts) holds: the --max-buffered bound, half-close ('end' then `end()`), drain
 * ({@link finishFastEcho}).
 */
import type { Socket } from 'node:net';
import {
  DirectWriter,
  HandleReadHook,
  type HandleSocketOptions,
  systemError,
  WRITE_DONE,
  WRITE_FAILED,
} from '@net/core';
import type { ConnectionState, EchoSocket, Preamble } from './connection-state.js';
import { BULK_READ, EchoSlab, READ_BUFFER_SIZE } from './echo-slab.js';
import { kConnection } from './symbols.js';

/**
 * One fast echo engine: its read buffer, its slab, its writer and its read hook. Sockets join it built with
 * {@link FastEcho.socketOptions} (handle-takeover.ts builds them) and {@link FastEcho.adopt}ed.
 */
export class FastEcho {
  /** The options of a fast socket: half-open, and reading into the engine's buffer with `onread`. */
  readonly socketOptions: HandleSocketOptions;
  readonly #buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  readonly #slab = new EchoSlab();
  readonly #writer = new DirectWriter(afterQueuedWrite);
  readonly #reads: HandleReadHook;

  constructor() {
    // Reads come through the hook (no timers, no Error per reset); Node's `onread` callback is the same function
    // for a socket whose handle the hook could not take.
    this.#reads = new HandleReadHook(this.#buffer, {
      data: (socket, buf, nread) => this.#read(socket as EchoSocket, buf, nread, true),
      error: readError,
    });
    const engine = this;
    this.socketOptions = {
      allowHalfOpen: true,
      readable: true,
      writable: true,
      onread: {
        buffer: this.#buffer,
        callback(this: Socket, nread: number, buf: Buffer): boolean {
          return engine.#read(this as EchoSocket, buf, nread, false);
        },
      },
    };
  }

  /** Gives a socket built with {@link socketOptions} its connection's state, and takes its reads. */
  adopt(socket: Socket, state: ConnectionState): EchoSocket {
    const echoSocket = socket as EchoSocket;
    echoSocket[kConnection] = state;
    this.#reads.install(echoSocket);
    return echoSocket;
  }

  /**
   * The fast hot path: `buf` is the engine's read buffer or the connection's own (#writeOwn), valid until this
   * returns; `hooked` when the read came through the read hook (else through Node's `onread` callback). Returning
   * false stops reading (until a 'drain' for stream writes, or the last queued direct write, resumes it).
   *
   * The echo goes straight to the handle when the socket's own queue is empty; else (a greeting still queued, say)
   * through `socket.write()`, behind what is queued there, so that bytes never overtake each other. libuv keeps its
   * own writes in order, so direct writes queue behind each other and behind the stream's.
   */
  #read(socket: EchoSocket, buf: Buffer, nread: number, hooked: boolean): boolean {
    const state = socket[kConnection];
    if (state.discard) return true;
    let start = 0;
    const preamble = state.preamble;
    if (preamble !== undefined) {
      start = preamble(socket, buf, nread);
      if (start < 0) return false;
      if (start >= nread) return true;
    }
    const length = nread - start;
    const echo = state.context;
    echo.stats.receivedBytes += length;
    echo.stats.sentBytes += length;
    const shared = buf === this.#buffer;
    if (!shared && start === 0 && socket.writableLength === 0) return this.#writeOwn(socket, buf, nread);
    const chunk = this.#slab.copy(buf, start, length);
    // A bulk read: this connection's next reads land in a buffer of its own, written from without a copy (#writeOwn).
    // Only through the read hook: Node's own `onread` callback keeps reading into the engine's buffer.
    if (shared && hooked && length >= BULK_READ)
      this.#reads.readNextInto(socket, Buffer.allocUnsafeSlow(READ_BUFFER_SIZE));
    if (socket.writableLength === 0) {
      const outcome = this.#writer.write(socket, chunk, socket);
      if (outcome === WRITE_DONE) return true;
      if (outcome === WRITE_FAILED) {
        socket.destroy(this.#writer.lastError);
        return false;
      }
      this.#slab.keepLast(length);
      return this.#queued(socket, length);
    }
    const below = socket.write(chunk);
    if (socket.writableLength === 0) return true;
    this.#slab.keepLast(length);
    if (!below && socket.writableLength > echo.maxBuffered) {
      socket.once('drain', fastOnDrain);
      echo.onBackpressure();
      return false;
    }
    return true;
  }

  /**
   * A read into the connection's own buffer (a bulk connection's: only its own reads overwrite it), nothing queued
   * on the stream: written straight from it. A write that completes at once is done with it (the kernel has copied
   * the bytes), so the next read reuses it; a write libuv queues keeps pointing into it, so the next read goes to a
   * new one. Back to the shared buffer after a read below {@link BULK_READ}, so a connection that goes quiet does not
   * keep 64 KiB for long.
   */
  #writeOwn(socket: EchoSocket, own: Buffer, nread: number): boolean {
    const outcome = this.#writer.write(socket, nread === own.length ? own : own.subarray(0, nread), socket);
    if (outcome === WRITE_DONE) {
      if (nread < BULK_READ) this.#reads.readNextInto(socket, this.#buffer);
      return true;
    }
    if (outcome === WRITE_FAILED) {
      socket.destroy(this.#writer.lastError);
      return false;
    }
    this.#reads.readNextInto(socket, nread < BULK_READ ? this.#buffer : Buffer.allocUnsafeSlow(READ_BUFFER_SIZE));
    return this.#queued(socket, nread);
  }

  /** `length` bytes of a direct write libuv queued: past --max-buffered, reading stops until they are out. */
  #queued(socket: EchoSocket, length: number): boolean {
    const state = socket[kConnection];
    state.queuedBytes += length;
    if (state.queuedBytes > state.context.maxBuffered) {
      state.waiting = true;
      state.context.onBackpressure();
      return false;
    }
    return true;
  }
}

/** A failed read (a reset): counted by the connection's context; the fence destroys the socket, with no Error. */
function readError(socket: Socket, errno: number): void {
  const echoSocket = socket as EchoSocket;
  echoSocket[kConnection].context.onReadError(echoSocket, errno);
}

/** A direct write libuv had queued is done: read again once none is left, if reading stopped for them. */
function afterQueuedWrite(owner: unknown, length: number, status: number): void {
  const socket = owner as EchoSocket;
  const state = socket[kConnection];
  state.queuedBytes -= length;
  if (status < 0) {
    // Reset or closed under the write; ECANCELED when we destroyed it ourselves.
    if (!socket.destroyed) socket.destroy(systemError(status, 'write'));
    return;
  }
  if (state.waiting && state.queuedBytes === 0) {
    state.waiting = false;
    if (!socket.destroyed) socket.resume();
  }
}

function fastOnDrain(this: EchoSocket): void {
  // Socket.resume() on an `onread` socket restarts reading on the handle.
  this.resume();
}

/** Hands a fast-path connection's reads to `preamble` until it is set back to undefined. */
export function setPreamble(socket: EchoSocket, preamble: Preamble | undefined): void {
  socket[kConnection].preamble = preamble;
}

/** Bytes accepted for sending and not yet handed to the kernel: the stream's queue and the queued direct writes. */
export function bytesQueued(socket: EchoSocket): number {
  return socket.writableLength + socket[kConnection].queuedBytes;
}

/**
 * Starts echoing on an adopted socket: reading has begun already; the client's FIN ends our side after the echo. With
 * a preamble set (a PROXY header to read first), the echo starts once the preamble is done.
 */
export function startFastEcho(socket: EchoSocket): void {
  socket.on('end', endOnEnd);
}

/**
 * As the stream echo's 'end': `end()` sends our FIN after what is queued. A FIN before the preamble is done (a PROXY
 * header cut short) goes to the preamble, with `nread` 0.
 */
function endOnEnd(this: EchoSocket): void {
  const preamble = this[kConnection].preamble;
  if (preamble !== undefined && preamble(this, NO_BYTES, 0) < 0) return;
  this.end();
}

const NO_BYTES = Buffer.alloc(0);

/** Drain for a fast-path socket: what was read has been echoed already; later input is discarded. */
export function finishFastEcho(socket: EchoSocket): void {
  if (socket.destroyed || socket.writableEnded) return;
  socket[kConnection].discard = true;
  socket.end();
  socket.resume();
}
