/**
 * One connection's state, all of it, in one object on its socket under `kConnection` (as ws keeps a WebSocket under
 * `kWebSocket`): the shared context of its listener group, how it is served (stage), the fast path's write
 * accounting, its PROXY header so far, its source, the idle sweep's view of it, and the test knobs' bookkeeping.
 * The engines (stream-echo.ts, fast-echo.ts, faults.ts) and the connection handler read and write it; when a
 * handle moves to a new socket (handle-takeover.ts), the state moves with it.
 */
import type { Socket } from 'node:net';
import type { ProxyInfo } from '@net/core';
import { kConnection } from './symbols.js';

/** Byte counters shared by every connection of a process, read by the metrics at scrape time. */
export interface EchoStats {
  /** Payload bytes read from clients. */
  receivedBytes: number;
  /** Payload bytes handed to sockets for sending (echoes and greetings). */
  sentBytes: number;
}

/**
 * What the echo engines need from their surroundings. One object shared by every connection of a listener group
 * (nothing is allocated per connection for it).
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

/** How a connection is being served. */
export const STAGE_HANDSHAKE = 0;
export const STAGE_ECHO = 1;
export const STAGE_FAULTY = 2;
export const STAGE_FAST = 3;
export type Stage = typeof STAGE_HANDSHAKE | typeof STAGE_ECHO | typeof STAGE_FAULTY | typeof STAGE_FAST;

/**
 * Takes each read of a fast-path connection before the echo: returns where the echo starts in `buf` (`nread` when it
 * took every byte), or -1 when it closed the connection. `buf` is the engine's read buffer, valid until it returns.
 * `nread` 0: the input ended (the client's FIN) before the preamble was done.
 */
export type Preamble = (socket: EchoSocket, buf: Buffer, nread: number) => number;

/**
 * A fast-path PROXY connection's header so far: its bytes when they came in more than one read, and its deadline
 * (--proxy-timeout), a tick of connection.ts's sweep: no timer per connection.
 */
export interface HeaderState {
  pending: Buffer | undefined;
  deadlineTick: number;
}

/** The test knobs (faults.ts), as configured. */
export interface FaultOptions {
  /** Delay each echo by this many ms (0: off). */
  delayMs: number;
  /** Echo this many bytes, then close (0: off). */
  closeAfterBytes: number;
  /** Close this many seconds after the connection opened (0: off). */
  closeAfterSeconds: number;
  /** Close with RST (SO_LINGER 0) instead of FIN. */
  closeWithReset: boolean;
}

/** A connection's bookkeeping under the test knobs. */
export interface FaultState {
  readonly options: FaultOptions;
  /** Bytes read and echo-eligible so far (for closeAfterBytes). */
  echoed: number;
  /** Bytes waiting in delay timers. */
  scheduled: number;
  /** No more input is echoed; close once `scheduled` is 0. */
  closing: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class ConnectionState<Context extends EchoContext = EchoContext> {
  readonly context: Context;
  stage: Stage = STAGE_HANDSHAKE;
  /** Fast path: bytes of direct writes libuv still holds; reading paused until they are written. */
  queuedBytes = 0;
  /** Fast path: reading stopped until the queued direct writes are out. */
  waiting = false;
  /** Fast path: a drain has begun; input is read and discarded from then on. */
  discard = false;
  /** Fast path: a step before the echo (a PROXY header being read), see fast-echo.ts setPreamble. */
  preamble: Preamble | undefined = undefined;
  /** A fast-path PROXY connection's header so far (proxy-preamble.ts). */
  header: HeaderState | undefined = undefined;
  /** A PROXY header's client, for logs (formatted by {@link clientPeer} only when a line is logged). */
  client: ProxyInfo | undefined = undefined;
  /** The key --max-per-source counts this connection under, released when it closes. */
  source: string | undefined = undefined;
  /** The idle sweep's view: the byte count, and the sweep tick at which it last changed. */
  seenBytes = 0;
  seenTick = 0;
  /** The test knobs' bookkeeping, when they are on. */
  faults: FaultState | undefined = undefined;

  constructor(context: Context) {
    this.context = context;
  }
}

/** A socket carrying a connection's state. */
export type EchoSocket<Context extends EchoContext = EchoContext> = Socket & {
  [kConnection]: ConnectionState<Context>;
};

/** A PROXY header's client as logged (`address:port`, `[v6]:port`, a Unix path), or undefined when there is none. */
export function clientPeer(state: { readonly client: ProxyInfo | undefined }): string | undefined {
  const info = state.client;
  if (info === undefined || info.source === undefined) return undefined;
  const { address, port } = info.source;
  return info.family === 'TCP6' ? `[${address}]:${port}` : info.family === 'UNIX' ? address : `${address}:${port}`;
}
