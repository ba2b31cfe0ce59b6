/**
 * The echo itself (RFC 862: "any data received is sent back"), as Node's streams give it to us:
 *
 *   read a chunk -> write the same chunk back -> stop reading while too much is queued -> at EOF, flush and FIN.
 *
 * The handlers are module-level functions shared by every connection (no closure per connection) and find their
 * connection's state on the socket under a symbol. Limits, PROXY headers, greetings and the test knobs are set up
 * around this loop (connection.ts, faults.ts), never inside it.
 */
import { type Server, Socket } from 'node:net';
import { systemError } from '@net/core';
import { DirectWriter, WRITE_DONE, WRITE_FAILED } from './direct-write.js';
import { streamBinding } from './stream-binding.js';

/** Where a connection's state lives on its socket. */
export const kEcho: unique symbol = Symbol('echo-tcp.connection');

/** Byte counters shared by every connection of a process, read by the metrics at scrape time. */
export interface EchoStats {
  /** Payload bytes read from clients. */
  receivedBytes: number;
  /** Payload bytes handed to sockets for sending (echoes and greetings). */
  sentBytes: number;
}

/**
 * What the echo handlers need. One object shared by every connection of a listener group (nothing is allocated
 * per connection for it); per-connection facts such as a PROXY header's client address live under other symbols.
 */
export interface EchoContext {
  readonly stats: EchoStats;
  /** --max-buffered: bytes queued for sending past which we stop reading. */
  readonly maxBuffered: number;
  /** Called each time a connection stops reading because of --max-buffered (counted as a limit hit). */
  readonly onBackpressure: () => void;
  /**
   * A fast-path read failed (ECONNRESET: the client closed with a reset): count it as a socket error. The socket is
   * then destroyed without an Error object, so no 'error' event follows.
   */
  readonly onReadError: (socket: EchoSocket, errno: number) => void;
}

/** A socket carrying echo state. */
export type EchoSocket = Socket & { [kEcho]: EchoContext };

/** Set on a fast-path socket once a drain has begun: input is read and discarded from then on. */
const kDiscard: unique symbol = Symbol('echo-tcp.discard');

/** Fast path: bytes of direct writes libuv still holds; reading paused until they are written. */
const kQueuedBytes: unique symbol = Symbol('echo-tcp.queued-bytes');
const kWaiting: unique symbol = Symbol('echo-tcp.waiting');

/** A step before the echo on a fast-path connection (a PROXY header): see {@link setPreamble}. */
const kPreamble: unique symbol = Symbol('echo-tcp.preamble');

/**
 * Takes each read of a fast-path connection before the echo: returns where the echo starts in `buf` (`nread` when it
 * took every byte), or -1 when it closed the connection. `buf` is the shared read buffer, valid until it returns.
 */
export type Preamble = (socket: EchoSocket, buf: Buffer, nread: number) => number;

type FastSocket = EchoSocket & {
  [kDiscard]?: true;
  [kQueuedBytes]: number;
  [kWaiting]: boolean;
  [kPreamble]: Preamble | undefined;
};

/** Hands a fast-path connection's reads to `preamble` until it is set back to undefined. */
export function setPreamble(socket: EchoSocket, preamble: Preamble | undefined): void {
  (socket as FastSocket)[kPreamble] = preamble;
}

/** Bytes accepted for sending and not yet handed to the kernel: the stream's queue and the queued direct writes. */
export function bytesQueued(socket: EchoSocket): number {
  return socket.writableLength + ((socket as FastSocket)[kQueuedBytes] ?? 0);
}

/**
 * Starts echoing on a socket that has `[kEcho]` set. Expects a socket created with `allowHalfOpen: true`: the
 * client's FIN must not end our side before everything it sent has come back.
 */
export function startEcho(socket: EchoSocket): void {
  socket.on('data', socketOnData);
  socket.on('drain', socketOnDrain);
  socket.on('end', socketOnEnd);
}

/**
 * The hot path. `write(chunk)` queues the very buffer the read produced: no copy. Its `false` only says the queue
 * passed the stream's high-water mark; we stop reading once it passes our own bound, so a client that sends and
 * never reads costs at most --max-buffered bytes (plus one read), and TCP flow control then stops the client.
 */
function socketOnData(this: EchoSocket, chunk: Buffer): void {
  const echo = this[kEcho];
  echo.stats.receivedBytes += chunk.length;
  echo.stats.sentBytes += chunk.length;
  if (!this.write(chunk) && this.writableLength > echo.maxBuffered) {
    this.pause();
    echo.onBackpressure();
  }
}

/** The queue has been written out: read again. 'drain' is guaranteed because write() returned false. */
function socketOnDrain(this: EchoSocket): void {
  this.resume();
}

/**
 * The client half-closed (FIN). 'end' comes only after every byte before the FIN went through socketOnData, and
 * `end()` sends our FIN after the queued echoes, so nothing owed is lost at the end of a stream.
 */
function socketOnEnd(this: EchoSocket): void {
  this.end();
}

/**
 * Stops echoing new input and closes our side after what is owed (the start of a drain): bytes already read,
 * including those Node read ahead while we were paused, are echoed; later input is read and discarded, so the
 * kernel never resets the connection for unread data, until the client closes or the drain period ends.
 */
export function finishEcho(socket: EchoSocket): void {
  if (socket.destroyed || socket.writableEnded) return;
  socket.off('data', socketOnData);
  const echo = socket[kEcho];
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
    echo.stats.receivedBytes += chunk.length;
    echo.stats.sentBytes += chunk.length;
    socket.write(chunk);
  }
  socket.on('data', discard);
  socket.end();
  socket.resume();
}

function discard(): void {}

/**
 * The fast path of the plain listeners, and of PROXY listeners once a connection's header is read (docs/measurements.md §7):
 * every read lands in one buffer shared by every connection of the process (`onread`, then the handle's own read
 * callback, see hookReads), so no Buffer and no 64 KiB allocation is made per read, and the readable stream (push,
 * 'data', nextTick) is skipped. Measured: see the README's performance section.
 *
 * The shared buffer is overwritten by the next read of any connection, while a write that does not complete at once
 * keeps a pointer to the memory it was given until it does (libuv): so the echo writes a copy (see copyOut).
 * Everything else of the slow path holds: the --max-buffered bound (reading stops: the callback returns false and
 * the handle stops reading), half-close ('end' then `end()`), drain ({@link finishEcho}).
 */
const SHARED_READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * Where the echo's copies live: a 1 MiB slab. A copy whose write completes at once frees its slice at once, so the
 * next echo reuses the same (hot) memory; only a write libuv queues keeps its slice (keepLastCopy), and a full slab
 * is replaced and left to the garbage collector with its last slices. A slice is only a view (no ArrayBuffer, no
 * backing store per message): measured, 4 KiB echoes cost ~1 µs less server CPU each than with `Buffer.allocUnsafe`
 * (which pools only below 4 KiB), and reusing the memory instead of moving on through the slab saves another 0.1
 * (64 B) to 0.8 µs (4 KiB).
 */
const SLAB_SIZE = 1 << 20;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabUsed = 0;

function copyOut(source: Buffer, start: number, length: number): Buffer {
  if (slabUsed + length > SLAB_SIZE) {
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabUsed = 0;
  }
  let chunk = lastChunk;
  if (chunk === undefined || chunk.length !== length || lastOffset !== slabUsed || lastSlab !== slab) {
    chunk = slab.subarray(slabUsed, slabUsed + length);
    lastChunk = chunk;
    lastOffset = slabUsed;
    lastSlab = slab;
  }
  source.copy(chunk, 0, start, start + length);
  return chunk;
}

/** The view copyOut made last: echoes of one size at one offset (every echo that completes at once) reuse it. */
let lastChunk: Buffer | undefined;
let lastOffset = 0;
let lastSlab = slab;

/** The write of the last copyOut did not complete at once: its slice stays owned by it. */
function keepLastCopy(length: number): void {
  // 8-byte aligned, like Node's own pool.
  slabUsed = (slabUsed + length + 7) & ~7;
}

/** The options of the re-wrapped socket; `handle` is the accepted handle (undocumented option, see below). */
const FAST_OPTIONS = {
  allowHalfOpen: true,
  readable: true,
  writable: true,
  onread: { buffer: SHARED_READ_BUFFER, callback: fastOnRead },
};

/**
 * Takes over a socket accepted by a `net.Server` created with `pauseOnConnect: true` and returns a socket that
 * reads with `onread` (Node ignores `onread` in `net.createServer`, in 20, 22 and 24). The handle moves to the new
 * socket, which takes the old one's place in the server's connection count (`_server`), so that
 * `server.maxConnections`, `getConnections()` and `close()`'s callback stay right: the count drops when the new
 * socket is destroyed. The old socket is dropped without being destroyed (it owns nothing any more).
 *
 * Uses Node internals (`socket._handle`, `_server`, the `handle` option) that have been stable from Node 12 to 24;
 * the tests run on 20 and 24.
 */
export function takeOver(accepted: Socket, context: EchoContext): EchoSocket {
  const old = accepted as unknown as { _handle: unknown; _server: Server | null };
  const handle = old._handle;
  const server = old._server;
  old._handle = null;
  old._server = null;
  return wrapHandle(handle, server, context);
}

/** The fast socket around an accepted handle, counted in `server`'s connections (its destroy() uncounts it). */
function wrapHandle(handle: unknown, server: Server | null, context: EchoContext): EchoSocket {
  const socket = new Socket({ ...FAST_OPTIONS, handle } as ConstructorParameters<typeof Socket>[0]) as FastSocket;
  const internal = socket as unknown as { _server: Server | null; server: Server | null };
  internal._server = server;
  internal.server = server;
  socket[kEcho] = context;
  socket[kQueuedBytes] = 0;
  socket[kWaiting] = false;
  socket[kPreamble] = undefined;
  hookReads(socket);
  return socket;
}

interface ListenHandle {
  onconnection: (err: number, clientHandle: ClientHandle) => void;
}
interface ClientHandle {
  setNoDelay?(on: boolean): number;
  close(): void;
}
type CountedServer = Server & { _handle: ListenHandle | null; _connections: number };

/**
 * Accepts on the listening handle itself: each accepted handle goes straight into the fast socket, without the
 * `net.Socket` that Node's own `onconnection` (lib/net.js) builds first and {@link takeOver} then throws away (in
 * connection churn, Node's Socket constructor, its Duplex state and takeOver were 10 % of the server's samples,
 * `bench:profile`). Does what Node's onconnection does for a server created with `allowHalfOpen`, `noDelay` and
 * `pauseOnConnect`: an accept error becomes the server's 'error', past `maxConnections` the handle is closed and
 * 'drop' emitted, TCP_NODELAY set, the server's connection count raised (the socket's destroy() lowers it).
 * cluster's round-robin workers hand connections to the same `onconnection` property, so they take this path too.
 *
 * Returns false, changing nothing, when the server's handle does not look like Node 20-24's: the caller keeps
 * its 'connection' listener (takeOver) then.
 */
export function acceptOnHandle(server: Server, context: EchoContext, onSocket: (socket: EchoSocket) => void): boolean {
  const counted = server as CountedServer;
  const handle = counted._handle;
  if (handle === null || typeof handle.onconnection !== 'function' || typeof counted._connections !== 'number')
    return false;
  handle.onconnection = (err, clientHandle) => {
    if (err !== 0 && err !== undefined) {
      server.emit('error', systemError(err, 'accept'));
      return;
    }
    if (server.maxConnections && counted._connections >= server.maxConnections) {
      clientHandle.close();
      server.emit('drop');
      return;
    }
    clientHandle.setNoDelay?.(true);
    const socket = wrapHandle(clientHandle, server, context);
    counted._connections++;
    onSocket(socket);
  };
  return true;
}

/** libuv's UV_EOF: the same value on every platform. */
const UV_EOF = -4095;
const readState = streamBinding?.streamBaseState;
const kReadBytesOrError = streamBinding?.kReadBytesOrError ?? 0;
/** Node's own read callback (net's onStreamRead), kept for the end of stream. */
let nodeOnRead: ((this: ReadHandle, arrayBuffer: unknown) => unknown) | undefined;
/** The socket a hooked handle belongs to. */
const kOwner: unique symbol = Symbol('echo-tcp.owner');

interface ReadHandle {
  onread: (this: ReadHandle, arrayBuffer: unknown) => unknown;
  reading: boolean;
  readStop(): number;
  [kOwner]: FastSocket;
}

/**
 * Takes the handle's read callback from net's onStreamRead, which for each read updates timers the fast path does not
 * use before calling fastOnRead, and for a failed read builds an Error with a stack trace: 8 % of the server's CPU in
 * connection churn with reset closes (`--cpu-prof`, ErrnoException and the stack captured by destroy()). Data goes
 * straight to fastOnRead; a failed read is counted and the socket destroyed; the end of stream still goes through
 * Node (push(null), 'end', half-close).
 */
function hookReads(socket: FastSocket): void {
  if (readState === undefined) return;
  const handle = (socket as unknown as { _handle: ReadHandle | null })._handle;
  if (handle === null) return;
  nodeOnRead ??= handle.onread;
  handle[kOwner] = socket;
  handle.onread = handleOnRead;
}

function handleOnRead(this: ReadHandle, arrayBuffer: unknown): unknown {
  const nread = (readState as Int32Array)[kReadBytesOrError] as number;
  const socket = this[kOwner];
  if (nread > 0) {
    if (socket.destroyed) return undefined;
    // As net's onStreamRead: returning false stops reading until resume() starts it again.
    if (!fastOnRead.call(socket, nread, SHARED_READ_BUFFER)) {
      this.reading = false;
      if (!socket.destroyed) {
        const err = this.readStop();
        if (err !== 0) socket.destroy(systemError(err, 'read'));
      }
    }
    return undefined;
  }
  if (nread === UV_EOF || nread === 0) return (nodeOnRead as NonNullable<typeof nodeOnRead>).call(this, arrayBuffer);
  socket[kEcho].onReadError(socket, nread);
  socket.destroy();
  return undefined;
}

/**
 * {@link takeOver} for a socket that has been read as a stream (a PROXY listener's, once its header is read): returns
 * the new socket and the bytes the old one had buffered (to be echoed first, after any greeting), or undefined when
 * the client's FIN has arrived already (the handle reads no more then: the stream path finishes that connection).
 */
export function takeOverAfterReads(
  socket: EchoSocket,
  context: EchoContext,
): { socket: EchoSocket; owed: Buffer[] } | undefined {
  if ((socket as unknown as { _readableState: { ended: boolean } })._readableState.ended) return undefined;
  const owed: Buffer[] = [];
  // Synchronous from here to the handle's move: libuv delivers no read to the old socket in between.
  for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null)
    owed.push(chunk);
  return { socket: takeOver(socket, context), owed };
}

/** Starts echoing on a socket returned by {@link takeOver}: reading has begun already. */
export function startFastEcho(socket: EchoSocket): void {
  socket.on('end', socketOnEnd);
}

/**
 * The fast hot path: `buf` is the shared buffer, valid until this function returns. Returning false stops reading
 * (Node calls readStop) until a 'drain' (stream writes) or the last queued direct write resumes it.
 *
 * The echo goes straight to the handle (direct-write.ts) when the socket's own queue is empty; else (a greeting still
 * queued, say) through `socket.write()`, behind what is queued there, so that bytes never overtake each other.
 * libuv keeps its own writes in order, so direct writes queue behind each other and behind the stream's.
 */
function fastOnRead(this: FastSocket, nread: number, buf: Buffer): boolean {
  if (this[kDiscard] === true) return true;
  let start = 0;
  const preamble = this[kPreamble];
  if (preamble !== undefined) {
    start = preamble(this, buf, nread);
    if (start < 0) return false;
    if (start >= nread) return true;
  }
  const length = nread - start;
  const echo = this[kEcho];
  echo.stats.receivedBytes += length;
  echo.stats.sentBytes += length;
  const chunk = copyOut(buf, start, length);
  if (writer !== undefined && this.writableLength === 0) {
    const outcome = writer.write(this, chunk, this);
    if (outcome === WRITE_DONE) return true;
    if (outcome === WRITE_FAILED) {
      this.destroy(writer.lastError);
      return false;
    }
    keepLastCopy(length);
    this[kQueuedBytes] += length;
    if (this[kQueuedBytes] > echo.maxBuffered) {
      this[kWaiting] = true;
      echo.onBackpressure();
      return false;
    }
    return true;
  }
  const below = this.write(chunk);
  if (this.writableLength === 0) return true;
  keepLastCopy(length);
  if (!below && this.writableLength > echo.maxBuffered) {
    this.once('drain', fastOnDrain);
    echo.onBackpressure();
    return false;
  }
  return true;
}

const writer = DirectWriter.available ? new DirectWriter(afterQueuedWrite) : undefined;

/** A direct write libuv had queued is done: read again once none is left, if reading stopped for them. */
function afterQueuedWrite(owner: unknown, length: number, status: number): void {
  const socket = owner as FastSocket;
  socket[kQueuedBytes] -= length;
  if (status < 0) {
    // Reset or closed under the write; ECANCELED when we destroyed it ourselves.
    if (!socket.destroyed) socket.destroy(systemError(status, 'write'));
    return;
  }
  if (socket[kWaiting] && socket[kQueuedBytes] === 0) {
    socket[kWaiting] = false;
    if (!socket.destroyed) socket.resume();
  }
}

function fastOnDrain(this: FastSocket): void {
  // Socket.resume() on an `onread` socket restarts reading on the handle.
  this.resume();
}

/** Drain for a fast-path socket: what was read has been echoed already; later input is discarded. */
export function finishFastEcho(socket: EchoSocket): void {
  if (socket.destroyed || socket.writableEnded) return;
  (socket as FastSocket)[kDiscard] = true;
  socket.end();
  socket.resume();
}
