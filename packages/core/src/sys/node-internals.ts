/**
 * Every use of Node's internals in the repository, behind one fence: the stream binding (`process.binding
 * ('stream_wrap')`: the WriteWrap request and the state array libuv's reads and writes report through), a socket's
 * `_handle` (its descriptor, its `onread`, its `writeBuffer`), a listening handle's `onconnection`, the take-over of
 * an accepted handle by a new `net.Socket` (the undocumented `handle` option, `_server`, `_connections`), a
 * stream's `_readableState.ended`, a TLS socket's `_parent`, and dgram's state symbol.
 *
 * Node keeps both halves of the handle protocol in one module, lib/internal/stream_base_commons.js (onStreamRead,
 * writeGeneric, afterWriteDispatched); the shapes used here are the ones it uses, the same on Node 20, 24 and 26.
 * {@link nodeInternalsAvailable} is the one answer to "may a fast path run here?", with the reason when not; callers
 * then take their public-API path (echo-tcp's stream echo, udp-echo's dgram engine, daytime's plain reads). Where a
 * caller needs an internal rather than falling back, a missing or different one is a `NodeInternalsError`
 * (`NET_ERR_NODE_INTERNALS`). Engines hand in callbacks and opaque owners: nothing here knows their state.
 *
 * `NET_NODE_INTERNALS=off` makes {@link nodeInternalsAvailable} say no: the seam through which tests (and an
 * operator who distrusts the fast paths) run every consumer on its fallback, with Node itself untouched.
 */
import type dgram from 'node:dgram';
import { type Server, Socket, type SocketConstructorOpts } from 'node:net';
import type { Readable } from 'node:stream';
import { ConfigError, NodeInternalsError } from '../errors.js';
import { systemError } from './errno.js';

/** The environment variable that turns the fast paths off (`off`) or leaves them to the probe (`on`, unset). */
export const NODE_INTERNALS_ENV = 'NET_NODE_INTERNALS';

/** Whether the fast paths may run here; `reason` says what is missing when they may not. */
export type NodeInternalsAnswer = { readonly available: true } | { readonly available: false; readonly reason: string };

/** The request object libuv's write completes; Node reads `oncomplete` and `handle`, and sets `error`. */
interface WriteRequest {
  // biome-ignore lint/suspicious/noExplicitAny: each writer keeps its own fields on the request it reads back
  oncomplete: (this: any, status: number) => void;
  handle: unknown;
  error?: string;
}

interface StreamBinding {
  WriteWrap: new () => WriteRequest;
  /** Shared with C++: where a read's byte count (or negative errno) and a write's outcome are left. */
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

interface TcpBinding {
  TCP?: { prototype?: Record<string, unknown> };
}

/**
 * `process.binding` is a documentation-only deprecation (DEP0111: a warning only under --pending-deprecation), and
 * `stream_wrap` and `tcp_wrap` are on its allow-list on Node 20, 24 and 26. Undefined where that stops being true.
 */
function loadStreamBinding(): StreamBinding | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): Partial<StreamBinding> }).binding('stream_wrap');
    if (
      typeof binding.WriteWrap === 'function' &&
      binding.streamBaseState instanceof Int32Array &&
      typeof binding.kReadBytesOrError === 'number' &&
      typeof binding.kLastWriteWasAsync === 'number'
    ) {
      return binding as StreamBinding;
    }
  } catch {
    // process.binding removed, or this module no longer allowed.
  }
  return undefined;
}

let streamBinding: StreamBinding | undefined | null = null;

function binding(): StreamBinding | undefined {
  if (streamBinding === null) streamBinding = loadStreamBinding();
  return streamBinding;
}

/** Undefined when every process-wide internal the fast paths use is there; else what is missing. */
function probe(): string | undefined {
  if (binding() === undefined)
    return "process.binding('stream_wrap') is missing or has no WriteWrap, streamBaseState, kReadBytesOrError, kLastWriteWasAsync";
  let proto: Record<string, unknown> | undefined;
  try {
    const tcp = (process as unknown as { binding(name: string): TcpBinding }).binding('tcp_wrap');
    proto = tcp.TCP?.prototype;
  } catch {
    return "process.binding('tcp_wrap') is not available";
  }
  const missing = ['writeBuffer', 'readStart', 'readStop'].filter((name) => typeof proto?.[name] !== 'function');
  if (missing.length > 0) return `TCP handles have no ${missing.join(', ')}`;
  return undefined;
}

let probed: NodeInternalsAnswer | undefined;

/**
 * The one answer: whether the fast paths may use Node's internals in this process. Checked once (the bindings do not
 * change while a process runs); per-object shapes (a socket's handle, a listening handle) are checked where used,
 * and a caller that finds them different keeps Node's own path.
 */
export function nodeInternalsAvailable(env: NodeJS.ProcessEnv = process.env): NodeInternalsAnswer {
  const setting = env[NODE_INTERNALS_ENV];
  if (setting === 'off') return { available: false, reason: `${NODE_INTERNALS_ENV}=off turns the fast paths off` };
  if (setting !== undefined && setting !== '' && setting !== 'on')
    throw new ConfigError(NODE_INTERNALS_ENV, setting, 'expected on or off');
  if (probed === undefined) {
    const reason = probe();
    probed = reason === undefined ? { available: true } : { available: false, reason };
  }
  return probed;
}

/** The stream binding, or a NodeInternalsError saying why a caller that needs it cannot have it. */
function requireBinding(user: string): StreamBinding {
  const b = binding();
  if (b === undefined)
    throw new NodeInternalsError("process.binding('stream_wrap')", `missing or changed: ${user} cannot run`);
  return b;
}

// ---------------------------------------------------------------------------------------------------------------
// Descriptors

/**
 * The descriptor behind a socket or a listening server (`_handle.fd`): null when there is no handle (not connected
 * yet, or closed), the handle's `fd` otherwise (-1 before libuv has one; not a number on a handle without one).
 */
export function handleFd(target: object): unknown {
  const handle = (target as { _handle?: { fd?: unknown } | null })._handle;
  return handle == null ? null : handle.fd;
}

/** Whether a socket or server still has its libuv handle (`_handle`): false before listen/connect and once closed. */
export function hasHandle(target: object): boolean {
  return (target as { _handle?: unknown })._handle != null;
}

/** A bound dgram socket's libuv handle, as `recvStop` and `fd` need it. */
export interface DatagramHandle {
  readonly fd: number;
  recvStop(): number;
}

/**
 * A dgram socket's handle, read from dgram's state (the symbol described 'state symbol'), not through the `_handle`
 * getter, which warns at run time (DEP0112). Throws NodeInternalsError when the socket is unbound or closed, or
 * dgram's state does not look as on Node 20-26.
 */
export function datagramHandle(socket: dgram.Socket): DatagramHandle {
  const stateKey = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = stateKey === undefined ? undefined : (socket as unknown as Record<symbol, unknown>)[stateKey];
  const handle = (state as { handle?: { fd?: unknown; recvStop?: unknown } | null } | undefined)?.handle;
  if (
    handle === undefined ||
    handle === null ||
    typeof handle.fd !== 'number' ||
    handle.fd < 0 ||
    typeof handle.recvStop !== 'function'
  )
    throw new NodeInternalsError(
      'dgram state',
      'cannot take over this dgram socket: unbound, closed, or a Node whose dgram internals changed',
    );
  return handle as DatagramHandle;
}

// ---------------------------------------------------------------------------------------------------------------
// Streams

/** Whether a readable stream has seen its end (`_readableState.ended`), which may be before 'end' is emitted. */
export function readEnded(stream: Readable): boolean {
  return (stream as unknown as { _readableState: { ended: boolean } })._readableState.ended;
}

/** The raw TCP socket a TLS server's socket wraps (`_parent`, Node 12 to 26), if any. */
export function tlsRawSocket(socket: Socket): Socket | undefined {
  return (socket as unknown as { _parent?: Socket | null })._parent ?? undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Handle take-over: an accepted handle moved into a socket built with options `net.createServer` ignores

/** Options of a socket built around an accepted handle; `onread` is the documented net.Socket option. */
export type HandleSocketOptions = SocketConstructorOpts & {
  onread?: { buffer: Buffer; callback: (this: Socket, nread: number, buf: Buffer) => boolean | undefined };
};

/** A new socket around `handle`, counted in `server`'s connections (Node's destroy() uncounts it via `_server`). */
function socketOnHandle(handle: unknown, server: Server | null, options: HandleSocketOptions): Socket {
  const socket = new Socket({ ...options, handle } as ConstructorParameters<typeof Socket>[0]);
  const internal = socket as unknown as { _server: Server | null; server: Server | null };
  internal._server = server;
  internal.server = server;
  return socket;
}

/**
 * Moves the handle of a socket accepted by a `net.Server` created with `pauseOnConnect: true` into a new socket
 * built with `options` (Node ignores `onread` in `net.createServer`, in 20, 22 and 24). The new socket takes the old
 * one's place in the server's connection count (`_server`), so `server.maxConnections`, `getConnections()` and
 * `close()`'s callback stay right; the old socket is dropped without being destroyed (it owns nothing any more).
 */
export function takeOverSocket(accepted: Socket, options: HandleSocketOptions): Socket {
  const old = accepted as unknown as { _handle: unknown; _server: Server | null };
  const handle = old._handle;
  const server = old._server;
  old._handle = null;
  old._server = null;
  return socketOnHandle(handle, server, options);
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
 * Accepts on the listening handle itself: each accepted handle goes straight into a socket built with `options`,
 * without the `net.Socket` Node's own `onconnection` (lib/net.js) builds first and a take-over then throws away.
 * Does what Node's onconnection does for a server created with `allowHalfOpen`, `noDelay` and `pauseOnConnect`: an
 * accept error becomes the server's 'error', past `maxConnections` the handle is closed and 'drop' emitted,
 * TCP_NODELAY set, the server's connection count raised (the socket's destroy() lowers it). cluster's round-robin
 * workers hand connections to the same `onconnection` property, so they take this path too.
 *
 * Returns false, changing nothing, when the server's handle does not look like Node 20-26's: the caller keeps its
 * 'connection' listener then.
 */
export function acceptOnListeningHandle(
  server: Server,
  options: HandleSocketOptions,
  onSocket: (socket: Socket) => void,
): boolean {
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
    const socket = socketOnHandle(clientHandle, server, options);
    counted._connections++;
    onSocket(socket);
  };
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Read hooks: a handle's `onread`, which libuv calls for every read (stream_base_commons.js onStreamRead)

/** libuv's UV_EOF: the same value on every platform. */
const UV_EOF = -4095;

/** The socket a hooked handle belongs to. */
const kHookOwner: unique symbol = Symbol('net.nodeInternals.hookOwner');

/**
 * A handle reading into a caller's buffer (`onread: { buffer }`, or useUserBuffer on a raw handle): the buffer it reads
 * into when it has changed (libuv keeps only a pointer, so the handle holds it), and the one it is to read into from
 * its next read on, set during a read callback.
 */
const kReadBuffer: unique symbol = Symbol('net.nodeInternals.readBuffer');
const kNextReadBuffer: unique symbol = Symbol('net.nodeInternals.nextReadBuffer');

interface SwitchableReads {
  [kReadBuffer]?: Buffer | undefined;
  [kNextReadBuffer]?: Buffer | undefined;
}

/**
 * At the end of a read callback: the buffer set for the handle's next reads, now held by the handle, which Node
 * makes the handle read into when the callback returns it (src/stream_base.cc CustomBufferJSListener::OnStreamRead:
 * net's `onread.buffer` function form is built on it); undefined to keep the current one.
 */
function switchReadBuffer(handle: SwitchableReads): Buffer | undefined {
  const next = handle[kNextReadBuffer];
  if (next === undefined) return undefined;
  handle[kNextReadBuffer] = undefined;
  handle[kReadBuffer] = next;
  return next;
}

type NodeOnRead = (this: HookedHandle, arrayBuffer: unknown) => unknown;

interface HookedHandle extends SwitchableReads {
  onread: NodeOnRead;
  reading: boolean;
  readStop(): number;
  [kHookOwner]: Socket;
}

/**
 * Puts `onread` on `socket`'s handle in place of Node's own read callback, remembered in `hook` (one function for
 * every socket: net's onStreamRead). False, changing nothing, where the handle or its callback looks different.
 */
function installOnRead(socket: Socket, onread: NodeOnRead, hook: { nodeOnRead: NodeOnRead | undefined }): boolean {
  const handle = (socket as unknown as { _handle?: HookedHandle | null })._handle;
  if (handle == null || typeof handle.onread !== 'function') return false;
  if (hook.nodeOnRead === undefined) hook.nodeOnRead = handle.onread;
  else if (handle.onread !== hook.nodeOnRead) return false;
  handle[kHookOwner] = socket;
  handle.onread = onread;
  return true;
}

/** What a {@link HandleReadHook} hands its reads to. */
export interface ReadCallbacks {
  /**
   * `nread` bytes landed at the start of `buffer` (the socket's `onread` buffer, or the one last given to
   * {@link HandleReadHook.readNextInto}; valid until this returns). False stops reading, as net's onStreamRead does,
   * until `socket.resume()` starts it again.
   */
  data(socket: Socket, buffer: Buffer, nread: number): boolean;
  /** A read failed with `errno` (a reset, say): the socket is destroyed right after, with no Error object built. */
  error(socket: Socket, errno: number): void;
}

/**
 * Takes a handle's read callback from net's onStreamRead, which for each read updates timers a fast path does not
 * use before calling the socket's `onread` callback, and for a failed read builds an Error with a stack trace (8 %
 * of echo-tcp's CPU in connection churn with reset closes, `--cpu-prof`). Data goes straight to `data`; a failed
 * read goes to `error` and the socket is destroyed; the end of stream still goes through Node (push(null), 'end',
 * half-close). For sockets built with `onread: { buffer }` (the same buffer).
 */
export class HandleReadHook {
  nodeOnRead: NodeOnRead | undefined;
  readonly #onread: NodeOnRead;

  constructor(buffer: Buffer, callbacks: ReadCallbacks) {
    const { streamBaseState: state, kReadBytesOrError } = requireBinding('a read hook');
    const { data, error } = callbacks;
    const hook = this;
    this.#onread = function onread(this: HookedHandle, arrayBuffer: unknown): unknown {
      const nread = state[kReadBytesOrError] as number;
      const socket = this[kHookOwner];
      if (nread > 0) {
        if (socket.destroyed) return undefined;
        if (!data(socket, this[kReadBuffer] ?? buffer, nread)) {
          this.reading = false;
          if (!socket.destroyed) {
            const err = this.readStop();
            if (err !== 0) socket.destroy(systemError(err, 'read'));
          }
        }
        return switchReadBuffer(this);
      }
      if (nread === UV_EOF || nread === 0) return (hook.nodeOnRead as NodeOnRead).call(this, arrayBuffer);
      error(socket, nread);
      socket.destroy();
      return undefined;
    };
  }

  /** Hooks `socket`'s reads; false (the socket keeps Node's callback) where its handle looks different. */
  install(socket: Socket): boolean {
    return installOnRead(socket, this.#onread, this);
  }

  /**
   * Only inside `data()`: `socket`'s reads land in `buffer` from its next read on (the hook's own buffer to go
   * back), so the one just read stays as it is: a write libuv queued from it may keep pointing at it. False, nothing
   * changed, when this hook does not read for `socket` (Node's `onread` callback does: its buffer stays).
   */
  readNextInto(socket: Socket, buffer: Buffer): boolean {
    const handle = (socket as unknown as { _handle?: HookedHandle | null })._handle;
    if (handle == null || handle.onread !== this.#onread) return false;
    handle[kNextReadBuffer] = buffer;
    return true;
  }
}

/**
 * Leaves a socket's data to Node (read, 'data') but takes the end of its input: at EOF or a failed read (a reset)
 * `onEnd` is called instead of Node's path, which turns a reset into an ErrnoException whose stack destroy() then
 * formats (~10 % of daytime-tcp's CPU per answer for clients that close with a reset).
 */
export class EndOfInputHook {
  nodeOnRead: NodeOnRead | undefined;
  readonly #onread: NodeOnRead;

  constructor(onEnd: (socket: Socket) => void) {
    const hook = this;
    // Node calls onread with the chunk's ArrayBuffer, or with none when the read hit EOF or failed (nread < 0).
    this.#onread = function onread(this: HookedHandle, arrayBuffer: unknown): unknown {
      if (arrayBuffer !== undefined) return (hook.nodeOnRead as NodeOnRead).call(this, arrayBuffer);
      onEnd(this[kHookOwner]);
      return undefined;
    };
  }

  /** Hooks `socket`'s end of input; false (the socket keeps Node's path) where its handle looks different. */
  install(socket: Socket): boolean {
    return installOnRead(socket, this.#onread, this);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Direct writes: a socket's handle written below net.Socket's Writable (stream_base_commons.js writeGeneric)

/** What {@link DirectWriter.write} reports: done, queued by libuv (the callback will come), or failed. */
export const WRITE_DONE = 0;
export const WRITE_QUEUED = 1;
export const WRITE_FAILED = 2;
export type WriteOutcome = typeof WRITE_DONE | typeof WRITE_QUEUED | typeof WRITE_FAILED;

/** Called once for each write that was queued: with the owner given to write() and 0 or a negative errno. */
export type QueuedWriteDone = (owner: unknown, length: number, status: number) => void;

/** A write request with the fields the writer keeps on it. */
interface DirectWriteRequest extends WriteRequest {
  /** The memory libuv writes from: kept alive until the write completes. */
  buffer: Buffer | null;
  owner: unknown;
  done: QueuedWriteDone;
}

interface WritableHandle {
  writeBuffer(req: WriteRequest, data: Buffer): number;
}

/**
 * Writes on a socket's libuv handle directly. `socket.write()` costs a Writable state update, a WriteWrap object, a
 * callback and a nextTick per message; here a write that completes at once (the common case: the kernel's send
 * buffer has room) reuses one request object and ends there; only a write that libuv has to queue gets its own
 * request, whose completion `done` is told of. Measured on 64 B and 4 KiB ping-pong x50 (echo-tcp, bench, same
 * run): 0.81x -> 0.90x and 0.82x -> 0.90x of the C reference.
 *
 * One spare request serves the writes that complete at once: libuv never sees a request object then (Node's
 * StreamBase::Write only wraps it when the write is queued).
 */
export class DirectWriter {
  readonly #done: QueuedWriteDone;
  readonly #binding: StreamBinding;
  readonly #state: Int32Array;
  readonly #kLastWriteWasAsync: number;
  #spare: DirectWriteRequest;

  constructor(done: QueuedWriteDone) {
    this.#done = done;
    this.#binding = requireBinding('a direct writer');
    this.#state = this.#binding.streamBaseState;
    this.#kLastWriteWasAsync = this.#binding.kLastWriteWasAsync;
    this.#spare = this.#newRequest();
  }

  /** False when the fast paths may not run here (see nodeInternalsAvailable): use `socket.write()`. */
  static get available(): boolean {
    return nodeInternalsAvailable().available;
  }

  /**
   * Writes `data` on `socket`'s handle. `data` must stay unchanged until the write completes: at once
   * ({@link WRITE_DONE}: the caller may reuse it now) or, when {@link WRITE_QUEUED}, when `done` is called.
   * On {@link WRITE_FAILED}, `lastError` holds the errno as a Node system error; nothing was queued.
   */
  write(socket: Socket, data: Buffer, owner: unknown): WriteOutcome {
    const handle = (socket as unknown as { _handle: WritableHandle | null })._handle;
    if (handle === null) {
      this.lastError = systemError(-32 /* EPIPE */, 'write');
      return WRITE_FAILED;
    }
    const req = this.#spare;
    const err = handle.writeBuffer(req, data);
    if (err !== 0) {
      this.lastError = systemError(err, 'write');
      // The request was handed to libuv and disposed of: it is not reused.
      this.#spare = this.#newRequest();
      return WRITE_FAILED;
    }
    if (this.#state[this.#kLastWriteWasAsync] === 0) return WRITE_DONE;
    req.handle = handle;
    req.buffer = data;
    req.owner = owner;
    this.#spare = this.#newRequest();
    return WRITE_QUEUED;
  }

  /** The error of the last {@link WRITE_FAILED}. */
  lastError: NodeJS.ErrnoException | undefined;

  #newRequest(): DirectWriteRequest {
    const req = new this.#binding.WriteWrap() as DirectWriteRequest;
    req.buffer = null;
    req.owner = null;
    req.handle = null;
    req.done = this.#done;
    req.oncomplete = onWriteComplete;
    return req;
  }
}

/** libuv finished a queued write (status 0), or failed or cancelled it (a negative errno: reset, closed...). */
function onWriteComplete(this: DirectWriteRequest, status: number): void {
  const { owner, buffer } = this;
  this.owner = null;
  this.buffer = null;
  this.handle = null;
  this.done(owner, buffer === null ? 0 : buffer.length, status);
}

// ---------------------------------------------------------------------------------------------------------------
// Raw accepted handles: a connection answered on its libuv TCP handle, with no net.Socket at all

/**
 * A connection answered on the accepted handle itself, below `net.Socket`: the listening handle's
 * `onconnection(err, clientHandle)`, then on the client handle `writeLatin1String(req, text)`, `shutdown(req)`,
 * `readStart()`, `onread` and `close(callback)`, as lib/net.js drives them, with `WriteWrap`, `ShutdownWrap` and
 * `streamBaseState` from the stream binding. For services whose connection is a few calls (daytime: accept, one
 * write, FIN, read to the client's close), where the Socket (a Duplex with both stream states, its listeners and
 * events) is most of the JavaScript cost per connection. The system calls stay libuv's.
 */

/** What a raw handle's owner is told; one object per connection, no closure per event. */
export interface RawHandleEvents {
  /**
   * n > 0 bytes read ({@link readRawHandle} with a buffer: at its start, or in the one last given to
   * {@link rawReadNextInto}; else dropped), {@link RAW_READ_EOF} at the peer's FIN, or a negative errno (a reset...).
   */
  onRead(bytes: number): void;
  /** A write of `bytes` that libuv had to queue completed: 0, or a negative errno. */
  onQueuedWrite(status: number, bytes: number): void;
  /** Our FIN went out after every write (uv_shutdown): 0, or a negative errno. */
  onShutdown(status: number): void;
  /** libuv is done with the handle ({@link closeRawHandle}, {@link resetRawHandle}; never after {@link closeRawHandleNow}). */
  onClosed(): void;
}

/** The events object a raw handle or its pending request reports to. */
const kRawEvents: unique symbol = Symbol('net.nodeInternals.rawEvents');

/** An accepted TCP handle, opaque to its owner: only the functions below use it. */
export interface RawClientHandle {
  readonly [kRawEvents]?: RawHandleEvents | undefined;
}

interface RawHandle extends SwitchableReads {
  writeLatin1String(req: RawRequest, text: string): number;
  writeBuffer(req: RawRequest, data: Buffer): number;
  shutdown(req: RawRequest): number;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Buffer): void;
  close(callback?: () => void): void;
  /** TCP handles only (not pipes). */
  getpeername?(out: Record<string, unknown>): number;
  setNoDelay?(on: boolean): number;
  reset?(callback?: () => void): number;
  onread: (this: RawHandle) => Buffer | undefined;
  [kRawEvents]?: RawHandleEvents | undefined;
}

interface RawRequest {
  oncomplete: (this: RawRequest, status: number) => void;
  handle: unknown;
  /** A queued write's bytes, and the memory libuv writes from (kept alive until it completes). */
  bytes?: number;
  buffer?: Buffer | undefined;
  [kRawEvents]?: RawHandleEvents | undefined;
}

/** libuv's UV_EOF, as {@link RawHandleEvents.onRead} reports the peer's FIN. */
export const RAW_READ_EOF = UV_EOF;

type ShutdownWrapClass = new () => RawRequest;

function shutdownWrap(): ShutdownWrapClass | undefined {
  const b = binding() as (StreamBinding & { ShutdownWrap?: unknown }) | undefined;
  return typeof b?.ShutdownWrap === 'function' ? (b.ShutdownWrap as ShutdownWrapClass) : undefined;
}

/**
 * Undefined when raw handles can be used here (the fence's answer, plus `ShutdownWrap`, `writeLatin1String`,
 * `shutdown` and `close` on TCP handles); else why not, for the caller's one warning before it keeps net.Socket.
 */
export function rawHandleUnsupported(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const answer = nodeInternalsAvailable(env);
  if (!answer.available) return answer.reason;
  if (shutdownWrap() === undefined) return "process.binding('stream_wrap') has no ShutdownWrap";
  let proto: Record<string, unknown> | undefined;
  try {
    proto = (process as unknown as { binding(name: string): TcpBinding }).binding('tcp_wrap').TCP?.prototype;
  } catch {
    return "process.binding('tcp_wrap') is not available";
  }
  // writeBuffer, readStart and readStop are the probe's (nodeInternalsAvailable, above): these are the rest.
  const missing = [
    'writeLatin1String',
    'shutdown',
    'useUserBuffer',
    'getpeername',
    'setNoDelay',
    'reset',
    'close',
  ].filter((name) => typeof proto?.[name] !== 'function');
  return missing.length > 0 ? `TCP handles have no ${missing.join(', ')}` : undefined;
}

/**
 * Takes `server`'s accepted handles before Node wraps them in a `net.Socket`: `onHandle(handle)` for each, or
 * `onError(errno)` for a failed accept (libuv keeps listening). Returns false, changing nothing, when the listening
 * handle does not look like Node 20-26's (the caller keeps its 'connection' listener then). Node's `maxConnections`
 * check and connection count are bypassed: the caller counts.
 */
export function acceptRawHandles(
  server: Server,
  onHandle: (handle: RawClientHandle) => void,
  onError: (errno: number) => void,
): boolean {
  const listening = (server as unknown as { _handle: { onconnection?: unknown } | null })._handle;
  if (listening === null || typeof listening.onconnection !== 'function') return false;
  listening.onconnection = (err: number, handle: RawClientHandle) => {
    if (err !== 0 && err !== undefined) onError(err);
    else onHandle(handle);
  };
  return true;
}

/** libuv read on a raw handle. Without a user buffer (readRawHandle's `buffer`), Node ignores what it returns. */
function onRawRead(this: RawHandle): Buffer | undefined {
  const b = binding() as StreamBinding;
  const nread = b.streamBaseState[b.kReadBytesOrError] as number;
  // 0: libuv's read found nothing (EAGAIN) and hands the buffer back; onStreamRead ignores it too.
  if (nread === 0) return undefined;
  this[kRawEvents]?.onRead(nread);
  return switchReadBuffer(this);
}

/**
 * Tells `events` what happens on `handle` from now on, and starts reading: into `buffer` when given (the bytes of each
 * read at its start; several handles may share one, as each read is handed over before the next), else into memory
 * Node allocates and drops. Returns 0 or a negative errno.
 */
export function readRawHandle(handle: RawClientHandle, events: RawHandleEvents, buffer?: Buffer): number {
  const raw = handle as RawHandle;
  raw[kRawEvents] = events;
  raw.onread = onRawRead;
  if (buffer !== undefined) {
    raw[kReadBuffer] = buffer;
    raw.useUserBuffer(buffer);
  }
  return raw.readStart();
}

/**
 * Only inside `onRead`, on a handle read with a buffer: its reads land in `buffer` from the next one on, so the one
 * just read stays as it is (a write libuv queued from it may keep pointing at it).
 */
export function rawReadNextInto(handle: RawClientHandle, buffer: Buffer): void {
  (handle as RawHandle)[kNextReadBuffer] = buffer;
}

/** Stops reading (flow control: the peer's sends then fill the kernel's buffers). Returns 0 or a negative errno. */
export function pauseRawHandle(handle: RawClientHandle): number {
  return (handle as RawHandle).readStop();
}

/** Reads again after {@link pauseRawHandle}. Returns 0 or a negative errno. */
export function resumeRawHandle(handle: RawClientHandle): number {
  return (handle as RawHandle).readStart();
}

/** Sets TCP_NODELAY on a TCP handle (nothing on a pipe's). */
export function noDelayRawHandle(handle: RawClientHandle): void {
  (handle as RawHandle).setNoDelay?.(true);
}

/** The peer of a TCP handle as `net.Socket` gives it (remoteAddress, remotePort); undefined for a pipe's. */
export function rawHandlePeer(handle: RawClientHandle): { address: string; port: number } | undefined {
  const raw = handle as RawHandle;
  if (raw.getpeername === undefined) return undefined;
  const out: Record<string, unknown> = {};
  if (raw.getpeername(out) !== 0 || typeof out.address !== 'string' || typeof out.port !== 'number') return undefined;
  return { address: out.address, port: out.port };
}

/** One write request for the writes that complete at once: libuv never keeps a request then. */
let spareRawWrite: RawRequest | undefined;

function onRawWriteComplete(this: RawRequest, status: number): void {
  const events = this[kRawEvents];
  const bytes = this.bytes ?? 0;
  this[kRawEvents] = undefined;
  this.handle = null;
  this.buffer = undefined;
  events?.onQueuedWrite(status, bytes);
}

/**
 * Writes `text` (latin1) on the handle: 0 when the kernel took it at once, 1 when libuv queued it (then
 * `onQueuedWrite` tells when it completes), or a negative errno.
 */
export function writeLatin1ToRawHandle(handle: RawClientHandle, text: string): number {
  return writeOnRawHandle(handle as RawHandle, text);
}

/**
 * Writes `data` on the handle: 0 when the kernel took it at once (the caller may reuse `data` now), 1 when libuv
 * queued it (`data` must stay unchanged until `onQueuedWrite` tells it is written), or a negative errno.
 */
export function writeBufferToRawHandle(handle: RawClientHandle, data: Buffer): number {
  return writeOnRawHandle(handle as RawHandle, data);
}

/** Both writes: one spare request for those that complete at once; a queued one holds what libuv writes from. */
function writeOnRawHandle(raw: RawHandle, data: string | Buffer): number {
  const b = binding() as StreamBinding;
  const req = spareRawWrite ?? (new b.WriteWrap() as unknown as RawRequest);
  spareRawWrite = undefined;
  req.oncomplete = onRawWriteComplete;
  const err = typeof data === 'string' ? raw.writeLatin1String(req, data) : raw.writeBuffer(req, data);
  if (err !== 0) return err; // the request went to libuv and was disposed of: not reused
  if (b.streamBaseState[b.kLastWriteWasAsync] === 0) {
    spareRawWrite = req;
    return 0;
  }
  req.handle = raw;
  req.bytes = data.length;
  // A string was copied by Node; a Buffer's memory is libuv's to write from until the write completes.
  req.buffer = typeof data === 'string' ? undefined : data;
  req[kRawEvents] = raw[kRawEvents];
  return 1;
}

function onRawShutdownComplete(this: RawRequest, status: number): void {
  const events = this[kRawEvents];
  this[kRawEvents] = undefined;
  this.handle = null;
  events?.onShutdown(status);
}

/** Sends our FIN once every queued write is out (uv_shutdown). Returns 0, or a negative errno. */
export function shutdownRawHandle(handle: RawClientHandle): number {
  const raw = handle as RawHandle;
  const req = new (shutdownWrap() as ShutdownWrapClass)();
  req.oncomplete = onRawShutdownComplete;
  req.handle = raw;
  req[kRawEvents] = raw[kRawEvents];
  return raw.shutdown(req);
}

function onRawHandleClosed(this: RawHandle): void {
  const events = this[kRawEvents];
  this[kRawEvents] = undefined; // (onread stays: Node only accepts a function there)
  events?.onClosed();
}

/** Closes the handle (close(2): a FIN, or a reset when unread input is left); `onClosed` once libuv is done. */
export function closeRawHandle(handle: RawClientHandle): void {
  (handle as RawHandle).close(onRawHandleClosed);
}

/**
 * Closes a TCP handle with a reset (SO_LINGER 0, uv_tcp_close_reset), as `socket.resetAndDestroy()` does; a pipe's,
 * which cannot reset, is closed. `onClosed` once libuv is done.
 */
export function resetRawHandle(handle: RawClientHandle): void {
  resetOrClose(handle as RawHandle, onRawHandleClosed);
}

function resetOrClose(raw: RawHandle, callback: (() => void) | undefined): void {
  if (raw.reset === undefined || raw.reset(callback) !== 0) raw.close(callback);
}

/**
 * {@link closeRawHandle} (or, with `reset`, {@link resetRawHandle}) that tells no one: for an owner that does its
 * closing bookkeeping itself, when this returns. The descriptor is closed by then (uv_close closes a stream's
 * descriptor at once: libuv src/unix/stream.c, uv__stream_close), and Node calls into JavaScript when libuv is done
 * only when close() was given a function (src/handle_wrap.cc, HandleWrap::OnClose): one C++ to JavaScript call fewer
 * per connection. Writes and a shutdown still pending are cancelled by libuv later (ECANCELED, to their events).
 */
export function closeRawHandleNow(handle: RawClientHandle, reset = false): void {
  const raw = handle as RawHandle;
  raw[kRawEvents] = undefined;
  if (reset) resetOrClose(raw, undefined);
  else raw.close();
}
