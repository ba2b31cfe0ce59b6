/**
 * The raw echo: a plain listener's connections answered on the accepted libuv handle itself, with no `net.Socket`
 * (@net/core's raw handles, node-internals.ts), as daytime-tcp answers its clients:
 *
 *   a read lands in the engine's one read buffer -> the bytes are copied into the slab (echo-slab.ts) and written on
 *   the handle -> past --max-buffered queued, reading stops until the queued writes are out -> at the client's FIN,
 *   the handle is closed once libuv holds no echo (close(2) sends the FIN after what the kernel holds).
 *
 * It is fast-echo.ts without the socket around the handle: in connection churn that socket (its constructor, the
 * Duplex state, destroy() and the 'close' tick) was about 15 % of the server's samples (`bench:profile`), and a
 * plain connection needs none of it. A bulk connection (reads of BULK_READ or more) reads into a buffer of its own
 * and is echoed from it without the copy, as on the fast path. A PROXY listener's connection reads its header first,
 * in the same read callback ({@link RawConnection.preamble}, proxy-preamble.ts). TLS listeners and the test knobs keep
 * their sockets (connection.ts chooses).
 */
import {
  closeRawHandleNow,
  formatPeerAddress,
  type HandleConnection,
  type ProxyInfo,
  pauseRawHandle,
  RAW_READ_EOF,
  type RawClientHandle,
  type RawHandleEvents,
  rawHandlePeer,
  rawReadNextInto,
  readRawHandle,
  resumeRawHandle,
  shutdownRawHandle,
  writeBufferToRawHandle,
} from '@net/core';
import type { EchoStats, HeaderState } from './connection-state.js';
import { BULK_READ, EchoSlab, READ_BUFFER_SIZE } from './echo-slab.js';

/**
 * Takes each read of a raw connection before the echo (a PROXY header being read): returns where the echo starts in
 * `buf` (`nread` when it took every byte), or -1 when it closed the connection. `nread` 0: the client's FIN came first.
 */
export type RawPreamble = (conn: RawConnection, buf: Buffer, nread: number) => number;

const NO_BYTES = Buffer.alloc(0);

/** What the raw echo needs from its surroundings (connection.ts): one object for every connection. */
export interface RawEchoOwner {
  readonly stats: EchoStats;
  /** --max-buffered: bytes queued for sending past which the connection stops reading. */
  readonly maxBuffered: number;
  /** A connection stopped reading because of --max-buffered. */
  onBackpressure(): void;
  /** A read, write or shutdown failed with `errno` (a reset...): count it; the connection then closes. */
  failed(conn: RawConnection, errno: number, syscall: string): void;
  /** The connection's handle is closed. */
  closed(conn: RawConnection): void;
}

/** One raw echo engine: its read buffer, its slab, and what its connections report to. */
export class RawEcho {
  readonly buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  readonly slab = new EchoSlab();
  readonly owner: RawEchoOwner;

  constructor(owner: RawEchoOwner) {
    this.owner = owner;
  }
}

/**
 * One connection of the raw echo: its handle, its counts, and the state of its two directions. The handle reports
 * to it (RawHandleEvents); the connection tracker may destroy it (HandleConnection).
 */
export class RawConnection implements RawHandleEvents, HandleConnection {
  readonly handle: RawClientHandle;
  readonly #engine: RawEcho;
  /** Bytes read, and bytes handed to the handle for sending (queued ones included): as a socket's counts. */
  bytesRead = 0;
  bytesWritten = 0;
  /** The key --max-per-source counts this connection under, released when it closes. */
  source: string | undefined = undefined;
  /** The idle sweep's view: the byte count, and the sweep tick at which it last changed. */
  seenBytes = 0;
  seenTick = 0;
  /** The peer as logged, formatted at accept when debug lines are logged (a reset peer has no address to read). */
  peer: string | undefined = undefined;
  /** A PROXY listener's connection: its header so far, with its deadline (proxy-preamble.ts), and its client. */
  header: HeaderState | undefined = undefined;
  client: ProxyInfo | undefined = undefined;
  /** Takes the reads before the echo while set (the PROXY header reader). */
  preamble: RawPreamble | undefined = undefined;
  /** Set by the connection tracker. */
  trackedSince?: number;
  /** close() was called: the handle is closing or closed. */
  closing = false;
  /** Bytes of writes libuv holds. */
  #queued = 0;
  /** Reading stopped until the queued writes are out (--max-buffered). */
  #paused = false;
  /** A drain has begun: input is read and discarded. */
  #discard = false;
  /** The client's FIN has arrived. */
  #eof = false;
  /** Our FIN was asked for (uv_shutdown, after the queued writes), and has gone out. */
  #shutdown = false;
  #shutdownDone = false;
  /** The buffer this connection reads into when it is its own (a bulk connection); else the engine's. */
  #own: Buffer | undefined = undefined;
  /** A drain began while the PROXY header was on its way: finish once this read is echoed. */
  #finishAfterRead = false;

  constructor(handle: RawClientHandle, engine: RawEcho) {
    this.handle = handle;
    this.#engine = engine;
  }

  /** Bytes of writes libuv holds (the kernel's buffers were full): what --max-buffered bounds. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Closing or closed, as a socket's `destroyed`. */
  get destroyed(): boolean {
    return this.closing;
  }

  /**
   * Sends `greeting` first when there is one, then echoes what the client sends. The handle reports to this
   * connection from here on: so a failed greeting closes it and tells the owner like any other failure (reads come
   * in later turns of the loop: the greeting still goes first).
   */
  start(greeting: Buffer | undefined): void {
    const err = readRawHandle(this.handle, this, this.#engine.buffer);
    if (err < 0) this.#fail(err, 'read');
    else if (greeting !== undefined) this.send(greeting);
  }

  /** Closes at once (the idle timeout, the end of the drain period, a failure). */
  destroy(): void {
    this.#close(false);
  }

  /** Closes at once with a reset (a source the policy refuses). */
  reset(): void {
    this.#close(true);
  }

  /**
   * The descriptor is closed when closeRawHandleNow returns, so the owner is told now: no callback from libuv per
   * connection. Writes and a shutdown libuv still held report ECANCELED later, and are ignored (`closing`).
   */
  #close(reset: boolean): void {
    if (this.closing) return;
    this.closing = true;
    closeRawHandleNow(this.handle, reset);
    this.#engine.owner.closed(this);
  }

  /** The peer for a log line: `address:port`, `[v6]:port`, or `unix`. */
  formatPeer(): string {
    if (this.peer !== undefined) return this.peer;
    const peer = rawHandlePeer(this.handle);
    return formatPeerAddress(peer?.address, peer?.port);
  }

  /** The peer's address (as a socket's `remoteAddress`), undefined for a Unix socket's. */
  get remoteAddress(): string | undefined {
    return rawHandlePeer(this.handle)?.address;
  }

  /** Only from the preamble: a drain began while the header was on its way; finish once this read is echoed. */
  finishAfterRead(): void {
    this.#finishAfterRead = true;
  }

  /**
   * The start of a drain: what was read has been echoed already; our FIN goes after it, later input is read and
   * discarded (so the kernel never resets the connection for unread data) until the client closes or the drain
   * period ends.
   */
  finish(): void {
    // Still waiting for its PROXY header: it finishes when the header is in (finishAfterRead).
    if (this.closing || this.#shutdown || this.preamble !== undefined) return;
    this.#discard = true;
    this.#endAfterEcho();
    if (this.#paused && !this.closing) {
      this.#paused = false;
      const err = resumeRawHandle(this.handle);
      if (err < 0) this.#fail(err, 'read');
    }
  }

  /** @internal */
  onRead(bytes: number): void {
    if (bytes > 0) this.#echo(bytes);
    else if (bytes === RAW_READ_EOF) {
      this.#eof = true;
      // A FIN before the PROXY header is done goes to the header reader, which refuses it.
      if (this.preamble !== undefined && this.preamble(this, NO_BYTES, 0) < 0) return;
      this.#endAfterEcho();
    } else this.#fail(bytes, 'read');
  }

  /** @internal */
  onQueuedWrite(status: number, bytes: number): void {
    this.#queued -= bytes;
    if (status < 0) {
      // Reset or closed under the write; ECANCELED when we closed it ourselves (#fail ignores that).
      this.#fail(status, 'write');
      return;
    }
    if (this.#paused && this.#queued === 0 && !this.closing) {
      this.#paused = false;
      const err = resumeRawHandle(this.handle);
      if (err < 0) this.#fail(err, 'read');
    }
  }

  /** @internal */
  onShutdown(status: number): void {
    if (this.closing) return;
    if (status < 0) {
      this.#fail(status, 'shutdown');
      return;
    }
    this.#shutdownDone = true;
    if (this.#eof) this.destroy();
  }

  /** @internal Never called: the connection closes its handle with closeRawHandleNow, which tells no one. */
  onClosed(): void {}

  /** The hot path: `bytes` landed in the engine's buffer, or in the connection's own. */
  #echo(bytes: number): void {
    if (this.closing) return;
    this.bytesRead += bytes;
    if (this.#discard) return;
    const own = this.#own;
    if (own !== undefined) {
      this.#count(bytes);
      this.#echoOwn(own, bytes);
      return;
    }
    const engine = this.#engine;
    let start = 0;
    if (this.preamble !== undefined) {
      start = this.preamble(this, engine.buffer, bytes);
      if (start < 0) return;
    }
    if (start < bytes) this.#echoCopy(engine, start, bytes - start);
    if (this.#finishAfterRead) {
      this.#finishAfterRead = false;
      this.finish();
    }
  }

  #count(bytes: number): void {
    const stats = this.#engine.owner.stats;
    stats.receivedBytes += bytes;
    stats.sentBytes += bytes;
  }

  /** `length` bytes at `start` of the engine's buffer: echoed from a copy (the next read of any connection lands there). */
  #echoCopy(engine: RawEcho, start: number, length: number): void {
    this.#count(length);
    const chunk = engine.slab.copy(engine.buffer, start, length);
    const outcome = writeBufferToRawHandle(this.handle, chunk);
    if (outcome < 0) {
      this.#fail(outcome, 'write');
      return;
    }
    this.bytesWritten += length;
    if (outcome === 1) {
      engine.slab.keepLast(length);
      this.#queuedWrite(length);
    }
    // A bulk read: this connection's next reads land in a buffer of its own, written from without a copy.
    if (length >= BULK_READ && !this.closing) {
      this.#own = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
      rawReadNextInto(this.handle, this.#own);
    }
  }

  /**
   * A read into the connection's own buffer (only its own reads overwrite it), written straight from it. A write that
   * completes at once is done with it (the kernel has copied the bytes), so the next read reuses it; a write libuv
   * queues keeps pointing into it, so the next read goes to a new one. Back to the engine's buffer after a read below
   * {@link BULK_READ}, so a connection that goes quiet does not keep 64 KiB for long.
   */
  #echoOwn(own: Buffer, bytes: number): void {
    const outcome = writeBufferToRawHandle(this.handle, bytes === own.length ? own : own.subarray(0, bytes));
    if (outcome < 0) {
      this.#fail(outcome, 'write');
      return;
    }
    this.bytesWritten += bytes;
    if (outcome === 0) {
      if (bytes < BULK_READ) this.#readIntoEngineBuffer();
      return;
    }
    if (bytes < BULK_READ) this.#readIntoEngineBuffer();
    else {
      this.#own = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE);
      rawReadNextInto(this.handle, this.#own);
    }
    this.#queuedWrite(bytes);
  }

  #readIntoEngineBuffer(): void {
    this.#own = undefined;
    rawReadNextInto(this.handle, this.#engine.buffer);
  }

  /** Writes bytes that are not an echo (the greeting): false when the write failed (the connection closes). */
  send(data: Buffer): boolean {
    const outcome = writeBufferToRawHandle(this.handle, data);
    if (outcome < 0) {
      this.#fail(outcome, 'write');
      return false;
    }
    this.bytesWritten += data.length;
    if (outcome === 1) this.#queuedWrite(data.length);
    return true;
  }

  /** `bytes` of a write libuv queued: past --max-buffered, reading stops until they are out. */
  #queuedWrite(bytes: number): void {
    this.#queued += bytes;
    if (this.#queued <= this.#engine.owner.maxBuffered || this.#paused || this.closing) return;
    this.#paused = true;
    this.#engine.owner.onBackpressure();
    const err = pauseRawHandle(this.handle);
    if (err < 0) this.#fail(err, 'read');
  }

  /**
   * The client's FIN (or a drain): our FIN goes after the echo. With nothing queued in libuv the handle is closed at
   * once, which sends it (close(2): the kernel still sends what it holds, then the FIN) and saves the shutdown's
   * system call and callback; else uv_shutdown sends it after the queued writes, and the handle closes once both
   * FINs are through.
   */
  #endAfterEcho(): void {
    if (this.closing) return;
    if (this.#shutdown) {
      if (this.#eof && this.#shutdownDone) this.destroy();
      return;
    }
    if (this.#eof && this.#queued === 0) {
      this.destroy();
      return;
    }
    this.#shutdown = true;
    const err = shutdownRawHandle(this.handle);
    if (err < 0) this.#fail(err, 'shutdown');
  }

  #fail(errno: number, syscall: string): void {
    if (this.closing) return;
    this.#engine.owner.failed(this, errno, syscall);
    this.destroy();
  }
}
