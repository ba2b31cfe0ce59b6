/**
 * Answering on the accepted libuv TCP handle itself, below `net.Socket`: every use of Node internals by daytime-tcp
 * is in this module, as small functions.
 *
 * Why. A daytime connection is accept, one write of under 40 bytes, a FIN, and reading to the client's close. Node's
 * own path builds a `net.Socket` per connection (a Duplex with its Readable and Writable states, listeners, a
 * 'connection', 'finish' and 'close' event): at 5,000 connections/s that was 14 % of the server's samples in the
 * Socket constructor alone, and 20 % with the stream states and the garbage they leave (`pnpm bench:profile --
 * --target daytime-tcp --scenario daytime`). The system calls stay what libuv makes them (accept4, write, shutdown,
 * read to EOF, close, two epoll_ctl).
 *
 * What is used, as Node's own lib/net.js uses it (Node 20 to 24): the listening handle's `onconnection(err,
 * clientHandle)`; on the client handle `writeLatin1String(req, text)`, `shutdown(req)`, `readStart()`, `onread`,
 * `close(callback)`; `process.binding('stream_wrap')` for `WriteWrap`, `ShutdownWrap` and `streamBaseState`, where
 * libuv leaves a read's byte count and whether a write was queued. `process.binding` is a documentation-only
 * deprecation (DEP0111) and `stream_wrap` and `tcp_wrap` are on its allow-list. {@link handleAnswerUnsupported}
 * says when any of it is missing: the service then answers through `net.Socket` as before.
 */
import type { Server } from 'node:net';

/** What a connection is told of its handle; one object per connection, no closure per event. */
export interface HandleEvents {
  /** n > 0 bytes read (and discarded), {@link READ_EOF} at the client's FIN, or a negative errno (a reset...). */
  onRead(bytes: number): void;
  /** A write that libuv had to queue completed: 0, or a negative errno. */
  onQueuedWrite(status: number): void;
  /** Our FIN went out after every write (uv_shutdown): 0, or a negative errno. */
  onShutdown(status: number): void;
  /** libuv is done with the handle. */
  onClosed(): void;
}

/** The request objects libuv completes; Node calls `oncomplete(status)` on them. */
interface Request {
  oncomplete: (this: Request, status: number) => void;
  handle: unknown;
  [kEvents]?: HandleEvents | undefined;
}
interface StreamWrapBinding {
  WriteWrap: new () => Request;
  ShutdownWrap: new () => Request;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

/** A connected TCP handle as lib/net.js drives it. */
export interface ClientHandle {
  writeLatin1String(req: Request, text: string): number;
  shutdown(req: Request): number;
  readStart(): number;
  close(callback?: () => void): void;
  onread: (this: ClientHandle) => void;
  [kEvents]?: HandleEvents | undefined;
}

const kEvents: unique symbol = Symbol('daytime-tcp.events');

/** libuv's UV_EOF: the same value on every platform. */
export const READ_EOF = -4095;

function loadBinding(): StreamWrapBinding | undefined {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    if (
      typeof b.WriteWrap === 'function' &&
      typeof b.ShutdownWrap === 'function' &&
      b.streamBaseState instanceof Int32Array &&
      typeof b.kReadBytesOrError === 'number' &&
      typeof b.kLastWriteWasAsync === 'number'
    )
      return b as StreamWrapBinding;
  } catch {
    // process.binding gone, or stream_wrap no longer allowed: the stream path answers.
  }
  return undefined;
}

const binding = loadBinding();

/** Undefined when this Node offers what answering on the handle needs; else what is missing. */
export function handleAnswerUnsupported(): string | undefined {
  if (binding === undefined)
    return "process.binding('stream_wrap') is missing or has no WriteWrap, ShutdownWrap, streamBaseState";
  let proto: Record<string, unknown> | undefined;
  try {
    proto = (
      process as unknown as { binding(name: string): { TCP?: { prototype?: Record<string, unknown> } } }
    ).binding('tcp_wrap').TCP?.prototype;
  } catch {
    return "process.binding('tcp_wrap') is not available";
  }
  const missing = ['writeLatin1String', 'shutdown', 'readStart', 'close'].filter(
    (name) => typeof proto?.[name] !== 'function',
  );
  return missing.length > 0 ? `TCP handles have no ${missing.join(', ')}` : undefined;
}

/**
 * Takes the accepted handles of `server` before Node wraps them in a `net.Socket`: `onHandle(handle)` for each, or
 * `onError(errno)` for a failed accept (libuv keeps listening). Returns false, changing nothing, when the server's
 * listening handle does not look like Node 20-24's (the caller keeps its 'connection' listener then). Node's own
 * `maxConnections` check and connection count are bypassed: the caller counts.
 */
export function acceptHandles(
  server: Server,
  onHandle: (handle: ClientHandle) => void,
  onError: (errno: number) => void,
): boolean {
  const listening = (server as unknown as { _handle: { onconnection?: unknown } | null })._handle;
  if (listening === null || typeof listening.onconnection !== 'function') return false;
  listening.onconnection = (err: number, handle: ClientHandle) => {
    if (err !== 0 && err !== undefined) onError(err);
    else onHandle(handle);
  };
  return true;
}

function onRead(this: ClientHandle): void {
  const b = binding as StreamWrapBinding;
  this[kEvents]?.onRead(b.streamBaseState[b.kReadBytesOrError] as number);
}

/** Tells `events` what happens on `handle` from now on, and starts reading. Returns 0 or a negative errno. */
export function attachAndRead(handle: ClientHandle, events: HandleEvents): number {
  handle[kEvents] = events;
  handle.onread = onRead;
  return handle.readStart();
}

/** One write request for the writes that complete at once: libuv never keeps a request then. */
let spareWrite: Request | undefined;

function onWriteComplete(this: Request, status: number): void {
  const events = this[kEvents];
  this[kEvents] = undefined;
  this.handle = null;
  events?.onQueuedWrite(status);
}

/**
 * Writes `text` (latin1) on the handle: 0 when the kernel took it at once, 1 when libuv queued it (then
 * `onQueuedWrite` tells when it completes), or a negative errno.
 */
export function writeLatin1(handle: ClientHandle, text: string): number {
  const b = binding as StreamWrapBinding;
  const req = spareWrite ?? new b.WriteWrap();
  spareWrite = undefined;
  req.oncomplete = onWriteComplete;
  const err = handle.writeLatin1String(req, text);
  if (err !== 0) return err; // the request went to libuv and was disposed of: not reused
  if (b.streamBaseState[b.kLastWriteWasAsync] === 0) {
    spareWrite = req;
    return 0;
  }
  req.handle = handle;
  req[kEvents] = handle[kEvents];
  return 1;
}

function onShutdownComplete(this: Request, status: number): void {
  const events = this[kEvents];
  this[kEvents] = undefined;
  this.handle = null;
  events?.onShutdown(status);
}

/** Sends our FIN once every queued write is out (uv_shutdown). Returns 0, or a negative errno. */
export function shutdownHandle(handle: ClientHandle): number {
  const req = new (binding as StreamWrapBinding).ShutdownWrap();
  req.oncomplete = onShutdownComplete;
  req.handle = handle;
  req[kEvents] = handle[kEvents];
  return handle.shutdown(req);
}

function onHandleClosed(this: ClientHandle): void {
  const events = this[kEvents];
  this[kEvents] = undefined; // (onread stays: Node only accepts a function there)
  events?.onClosed();
}

/** Closes the handle (close(2): a FIN, or a reset when unread input is left); `onClosed` once libuv is done. */
export function closeHandle(handle: ClientHandle): void {
  handle.close(onHandleClosed);
}
