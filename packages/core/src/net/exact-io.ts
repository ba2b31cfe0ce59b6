/**
 * Exact reads and complete writes on a stream socket. TCP is a byte stream: one write on the peer can arrive as
 * many chunks and many writes as one, so "read a message" means "read exactly n bytes", and an end of stream in
 * the middle is an error that must say how much did arrive.
 */
import type net from 'node:net';
import {
  AbortedError,
  PeerResetError,
  PrematureEofError,
  SizeLimitError,
  SocketClosedError,
  TimeoutError,
} from '../errors.js';
import { systemError } from '../sys/errno.js';
import { readSocketOption, SO_ERROR, SOL_SOCKET } from '../sys/sockopt.js';

/** Options shared by the reads. */
export interface ReadOptions {
  /** Aborting rejects with AbortedError; bytes read so far are put back on the socket. */
  signal?: AbortSignal;
  /** Deadline for the whole read; on expiry rejects with TimeoutError and puts back bytes read so far. */
  timeoutMs?: number;
}

/** Options of {@link readToEnd}. */
export interface ReadToEndOptions extends ReadOptions {
  /** Most bytes accepted before end of stream. */
  limit: number;
}

/** How a connection ended: orderly FIN, reset by the peer (RST), or another error. */
export type CloseKind = 'eof' | 'reset' | 'error';

/**
 * Tells an orderly shutdown from a reset, for logs and metrics of clients and servers: no error (or a
 * PrematureEofError) is `eof`; ECONNRESET, EPIPE (writing after the peer's RST) or a PeerResetError is `reset`;
 * anything else is `error`.
 *
 * @example socket.once('error', (err) => log.info({ close: classifyClose(err) }));
 * @throws never.
 */
export function classifyClose(err?: unknown): CloseKind {
  if (err === undefined || err === null || err instanceof PrematureEofError) return 'eof';
  if (err instanceof PeerResetError) return 'reset';
  const code = typeof err === 'object' && 'code' in err ? err.code : undefined;
  return code === 'ECONNRESET' || code === 'EPIPE' ? 'reset' : 'error';
}

/** Pending errors taken off sockets by {@link closeKind}: reading SO_ERROR clears it, so the answer is kept. */
const pendingErrors = new WeakMap<net.Socket, NodeJS.ErrnoException>();

/**
 * How a socket's connection ended, like {@link classifyClose} but also right when Node reports a clean end that
 * was a reset. On Linux a RST that arrives right behind data (or after our own FIN) reaches Node as `'end'`, not
 * as ECONNRESET: libuv reads the data, sees the hang-up in the same poll and reports EOF without reading again
 * (uv__stream_io's POLLHUP short cut; seen with Node 20's libuv 1.46, while Node 24's 1.52 reads again and reports
 * the ECONNRESET itself). The kernel still holds ECONNRESET as the socket's pending error (SO_ERROR,
 * socket(7)), which this reads while the socket still has its descriptor: in or before its `'end'` listener, not
 * in `'close'`. Reading clears the kernel's copy, so the answer is kept per socket and every later call (and the
 * reads of this module) sees it too.
 *
 * With an `err` other than a PrematureEofError, the result is `classifyClose(err)`. Without a descriptor (closed,
 * a TLS or in-memory stream) or off Linux, it falls back to `socket.errored`, else `eof`.
 *
 * @example socket.on('end', () => log.info({ close: closeKind(socket) }));
 * @throws never.
 */
export function closeKind(socket: net.Socket, err?: unknown): CloseKind {
  if (err !== undefined && err !== null && !(err instanceof PrematureEofError)) return classifyClose(err);
  const pending = pendingError(socket);
  if (pending) return classifyClose(pending);
  return classifyClose(socket.errored ?? undefined);
}

/** The socket's pending error from SO_ERROR (kept once read), or undefined when none or unreadable. */
function pendingError(socket: net.Socket): NodeJS.ErrnoException | undefined {
  const kept = pendingErrors.get(socket);
  if (kept) return kept;
  let errno: number;
  try {
    errno = readSocketOption(socket, SOL_SOCKET, SO_ERROR);
  } catch {
    return undefined; // no descriptor any more, not a TCP/Unix handle, or no libc access (not Linux)
  }
  if (errno === 0) return undefined;
  const error = systemError(errno, 'read');
  pendingErrors.set(socket, error);
  return error;
}

/**
 * Reads exactly `n` bytes. Bytes beyond `n` are never taken off the socket, so the next reader sees them. The socket
 * is left paused (no data flows until somebody reads) and every listener added here is removed.
 * The socket must be in binary mode (no `setEncoding`) and must not be read by a `'data'` listener at the same time.
 *
 * @example const header = await readExactly(socket, 4); const body = await readExactly(socket, header.readUInt32BE());
 * @throws {PrematureEofError} `NET_ERR_PREMATURE_EOF` when the peer ends the stream first; `received` and `data`
 *   hold what arrived.
 * @throws {PeerResetError} `NET_ERR_PEER_RESET` on ECONNRESET or EPIPE, also when the reset reached Node as an end
 *   of stream (see {@link closeKind}).
 * @throws {SocketClosedError} `NET_ERR_SOCKET_CLOSED` when the socket is destroyed locally.
 * @throws {TimeoutError} `NET_ERR_TIMEOUT` when `timeoutMs` passes first (bytes read so far are put back).
 * @throws {AbortedError} `NET_ERR_ABORTED` when `signal` aborts first (bytes read so far are put back).
 * @throws {RangeError} when `n` is not a non-negative safe integer; {TypeError} when the socket has an encoding.
 * Other socket errors (ETIMEDOUT from keepalive, EHOSTUNREACH) are rethrown as they are.
 */
export function readExactly(socket: net.Socket, n: number, options: ReadOptions = {}): Promise<Buffer> {
  checkCount('n', n);
  return pull(socket, options, {
    what: `reading ${n} bytes`,
    wanted: (received) => n - received,
    atLimit: (data) => ({ value: data }),
    atEnd: (data) => ({ error: new PrematureEofError(n, data.length, data) }),
  });
}

/**
 * Reads until the peer ends the stream, accepting at most `limit` bytes. When more arrive, the socket is destroyed
 * (the peer is misbehaving and the rest would be discarded anyway) and the read rejects.
 *
 * @example const request = await readToEnd(socket, { limit: 64 * 1024, timeoutMs: 10_000 });
 * @throws {SizeLimitError} `NET_ERR_SIZE_LIMIT` when more than `limit` bytes arrive.
 * @throws {PeerResetError} `NET_ERR_PEER_RESET` on ECONNRESET or EPIPE, also when the reset reached Node as an end
 *   of stream (see {@link closeKind}).
 * @throws {SocketClosedError} `NET_ERR_SOCKET_CLOSED` when the socket is destroyed locally.
 * @throws {TimeoutError} `NET_ERR_TIMEOUT` when `timeoutMs` passes first (bytes read so far are put back).
 * @throws {AbortedError} `NET_ERR_ABORTED` when `signal` aborts first (bytes read so far are put back).
 * @throws {RangeError} when `limit` is not a non-negative safe integer; {TypeError} when the socket has an encoding.
 */
export function readToEnd(socket: net.Socket, options: ReadToEndOptions): Promise<Buffer> {
  const { limit } = options;
  checkCount('limit', limit);
  return pull(socket, options, {
    what: 'reading to end of stream',
    // Ask for one byte past the limit: that is the only way to know the limit was exceeded.
    wanted: (received) => limit + 1 - received,
    atLimit: (data) => {
      socket.destroy();
      return { error: new SizeLimitError(limit, data.length) };
    },
    atEnd: (data) => ({ value: data }),
  });
}

/** Chunk size of {@link writeAll}: large enough to amortise syscalls, small enough to keep buffering bounded. */
const WRITE_CHUNK_BYTES = 64 * 1024;

/**
 * Writes every byte and resolves once all of it has been handed to the kernel (the last write callback). Large
 * inputs are written in 64 KiB slices and the next slice waits for `'drain'` whenever `write()` returns false, so
 * the socket's `writableLength` stays near its high water mark instead of holding the whole input.
 *
 * @example await writeAll(socket, 'hello\r\n');
 * @throws {PeerResetError} `NET_ERR_PEER_RESET` on ECONNRESET or EPIPE (the peer reset or closed).
 * @throws {SocketClosedError} `NET_ERR_SOCKET_CLOSED` when the socket is, or becomes, destroyed or ended locally.
 * Other socket errors are rethrown as they are.
 */
export function writeAll(socket: net.Socket, data: Buffer | Uint8Array | string): Promise<void> {
  const bytes =
    typeof data === 'string' ? Buffer.from(data, 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (socket.destroyed || socket.writableEnded) return Promise.reject(new SocketClosedError('writeAll'));
  if (bytes.length === 0) return Promise.resolve();

  return new Promise<void>((resolve, reject) => {
    let offset = 0;
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      socket.off('drain', pump);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err === undefined) resolve();
      else reject(toWriteError(socket, err));
    };
    const onError = (err: Error) => settle(err);
    const onClose = () => settle(new SocketClosedError('writeAll'));
    const onLastWritten = (err?: Error | null) => settle(err ?? undefined);
    function pump(): void {
      while (!settled && offset < bytes.length) {
        const end = Math.min(offset + WRITE_CHUNK_BYTES, bytes.length);
        const last = end === bytes.length;
        // Write callbacks run in order, so the last one means every earlier slice reached the kernel too.
        const ok = socket.write(bytes.subarray(offset, end), last ? onLastWritten : undefined);
        offset = end;
        if (!ok) return; // resume on 'drain'
      }
    }
    socket.on('drain', pump);
    socket.on('error', onError);
    socket.on('close', onClose);
    pump();
  });
}

type Outcome = { value: Buffer } | { error: Error };

interface PullSpec {
  what: string;
  /** Bytes still to take given `received`; 0 means done. */
  wanted(received: number): number;
  /** Called when wanted() reaches 0. */
  atLimit(data: Buffer): Outcome;
  /** Called on end of stream before wanted() reached 0. */
  atEnd(data: Buffer): Outcome;
}

/**
 * The read engine. It uses paused mode ('readable' + `read(k)`) instead of 'data' events: `read(k)` with k no
 * larger than the buffered length takes exactly k bytes, so nothing past the request is ever consumed and no
 * `unshift` is needed on success. Chunks are kept in a list with a byte count and concatenated once (O(n)).
 */
function pull(socket: net.Socket, options: ReadOptions, spec: PullSpec): Promise<Buffer> {
  if (socket.readableEncoding !== null) {
    return Promise.reject(
      new TypeError(`${spec.what}: the socket has encoding ${socket.readableEncoding}, expected none`),
    );
  }
  if (spec.wanted(0) === 0) return Promise.resolve(Buffer.alloc(0));
  const { signal, timeoutMs } = options;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) {
    return Promise.reject(new RangeError(`invalid timeoutMs ${timeoutMs}: expected a finite number >= 0`));
  }

  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;

    const collected = () =>
      chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, received);

    const settle = (outcome: Outcome, putBack = false) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('readable', drain);
      socket.off('end', onEnd);
      socket.off('error', onError);
      socket.off('close', onClose);
      // Removing the last 'readable' listener does not resume the stream: it stays paused until the next reader.
      socket.pause();
      // A timeout or abort must not lose data: the caller may retry, and the bytes belong to the next read.
      if (putBack && received > 0 && !socket.destroyed) socket.unshift(collected());
      if ('value' in outcome) resolve(outcome.value);
      else reject(outcome.error);
    };

    function drain(): void {
      while (!settled) {
        const wanted = spec.wanted(received);
        if (wanted === 0) {
          settle(spec.atLimit(collected()));
          return;
        }
        const buffered = socket.readableLength;
        if (buffered === 0) {
          // read(0) asks the stream to refill, arms the next 'readable', and if the stream has ended with an
          // empty buffer schedules 'end' (which a read(k) that emptied the buffer exactly would not).
          socket.read(0);
          return;
        }
        // Capped at the high water mark: read(k) above it would raise the socket's buffer size for good.
        const chunk = socket.read(Math.min(wanted, buffered, socket.readableHighWaterMark)) as Buffer | null;
        if (chunk === null) return;
        chunks.push(chunk);
        received += chunk.length;
      }
    }
    function onEnd(): void {
      // A reset can look like an orderly end (see closeKind): the kernel's pending error tells them apart.
      const reset = pendingError(socket);
      if (reset) settle({ error: toReadError(reset, received) });
      else settle(spec.atEnd(collected()));
    }
    function onError(err: Error): void {
      settle({ error: toReadError(err, received) });
    }
    function onClose(): void {
      // 'close' after 'end' or 'error' finds us settled; on its own it means somebody destroyed the socket here.
      settle({ error: new SocketClosedError(spec.what) });
    }
    function onAbort(): void {
      settle({ error: new AbortedError(spec.what, { cause: signal?.reason }) }, true);
    }

    if (signal?.aborted) return onAbort();
    if (socket.readableEnded) return onEnd();
    if (socket.destroyed) {
      const errored = socket.errored;
      return settle({ error: errored === null ? new SocketClosedError(spec.what) : toReadError(errored, 0) });
    }
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => settle({ error: new TimeoutError(spec.what, timeoutMs) }, true), timeoutMs);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('readable', drain);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    drain(); // data may already be buffered; 'readable' fires only for data that arrives from now on
  });
}

function toReadError(err: Error, received: number): Error {
  if (classifyClose(err) === 'reset') return new PeerResetError(received, { cause: err });
  if (isDestroyedStreamError(err)) return new SocketClosedError('the read', { cause: err });
  return err;
}

function toWriteError(socket: net.Socket, err: unknown): Error {
  // PeerResetError counts received bytes; for a write, the socket's total is the honest figure.
  if (classifyClose(err) === 'reset') return new PeerResetError(socket.bytesRead, { cause: err });
  if (isDestroyedStreamError(err)) return new SocketClosedError('writeAll', { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}

function isDestroyedStreamError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  return code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END';
}

function checkCount(name: string, value: number): void {
  if (!(Number.isSafeInteger(value) && value >= 0)) {
    throw new RangeError(`invalid ${name} ${value}: expected an integer >= 0`);
  }
}
