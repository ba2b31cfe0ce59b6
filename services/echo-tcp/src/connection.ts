/**
 * What happens to an accepted connection before and around the echo: the connection limit, the source policy,
 * tracking (drain, metrics), the idle timeout, errors, the greeting, and the choice between the echo engines
 * (stream-echo.ts, fast-echo.ts) and the test knobs (faults.ts). A PROXY listener's header is proxy-preamble.ts's.
 * Nothing here runs per chunk of echoed data.
 */
import type { Server, Socket } from 'node:net';
import {
  acceptRawHandles,
  type Cidr,
  type ConnectionTracker,
  closeRawHandleNow,
  errnoName,
  formatPeer,
  type Logger,
  type Metrics,
  noDelayRawHandle,
  type ProxyInfo,
  type RawClientHandle,
  systemError,
  tlsRawSocket,
} from '@net/core';
import {
  ConnectionState,
  clientPeer,
  type EchoContext,
  type EchoSocket,
  type EchoStats,
  type HeaderState,
  STAGE_ECHO,
  STAGE_FAST,
  STAGE_FAULTY,
} from './connection-state.js';
import { FastEcho, finishFastEcho, startFastEcho } from './fast-echo.js';
import { type FaultOptions, faultsEnabled, finishFaultyEcho, startFaultyEcho } from './faults.js';
import { acceptOnHandle, takeOver, takeOverAfterReads } from './handle-takeover.js';
import { ProxyPreamble, peerOf } from './proxy-preamble.js';
import { RateLimitedWarning } from './rate-limited-log.js';
import { RawConnection, RawEcho, type RawEchoOwner } from './raw-echo.js';
import { SourcePolicy, type SourcePolicyOptions, type SourceRejection } from './source-policy.js';
import { finishEcho, startEcho } from './stream-echo.js';
import { kConnection } from './symbols.js';

/** The limits and options that shape every connection. */
export interface ConnectionOptions {
  maxConnections: number;
  /** 0: no idle timeout. */
  idleTimeoutMs: number;
  maxBuffered: number;
  /** Bytes sent once on connect, or undefined. */
  greeting: Buffer | undefined;
  faults: FaultOptions;
  proxyTrusted: readonly Cidr[];
  /** 0 when no listener takes PROXY headers. */
  proxyTimeoutMs: number;
  /** --io: false keeps every connection on the stream path (net.Socket 'data', write, pause/drain). */
  fast: boolean;
  /** With `fast`: plain listeners' connections are echoed on their raw handles (raw-echo.ts), with no net.Socket. */
  raw: boolean;
  /** --allow, --deny, --max-per-source, --per-source-ipv6-prefix. */
  sources: SourcePolicyOptions;
}

interface AcceptContext extends EchoContext {
  /** The PROXY header reader: a connection closed under an incomplete header is reported to it. */
  readonly proxy: ProxyPreamble;
  readonly log: Logger;
  readonly metrics: Metrics;
  /**
   * Fast-path read errors (client resets) not yet added to net_errors_total, by errno: in churn with reset closes
   * every connection ends with one, and a labelled prom-client inc() per connection hashes its labels each time.
   * Moved into the counter at scrape time (flushReadErrors).
   */
  readonly readErrors: Map<number, number>;
}

/** A connection of this handler: its state's context is the handler's. */
type Conn = EchoSocket<AcceptContext>;

/** What the sweep reads and updates of a connection. */
interface SweptState {
  readonly header: HeaderState | undefined;
  readonly client: ProxyInfo | undefined;
  seenBytes: number;
  seenTick: number;
}

/**
 * The sweep runs this many times per --idle-timeout and per --proxy-timeout, the shorter one (at most every 10 s): a
 * connection is closed between the timeout and 10 % (or 10 s) later.
 */
const SWEEPS_PER_TIMEOUT = 10;
const MAX_SWEEP_MS = 10_000;

/** The sweep period for a timeout of `ms` (0: none). */
function sweepPeriod(ms: number): number {
  return ms > 0 ? Math.max(1, Math.min(MAX_SWEEP_MS, Math.floor(ms / SWEEPS_PER_TIMEOUT))) : Number.POSITIVE_INFINITY;
}

/** Accepts connections for every listener of one process. */
export class ConnectionHandler {
  readonly stats: EchoStats = { receivedBytes: 0, sentBytes: 0 };
  readonly #options: ConnectionOptions;
  readonly #connections: ConnectionTracker;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #context: AcceptContext;
  /** The fast echo engine, when --io allows it and no test knob is on. */
  readonly #fast: FastEcho | undefined;
  /** The raw echo engine of the plain listeners, when the fast path runs and raw handles work here. */
  readonly #raw: RawEcho | undefined;
  readonly #faulty: boolean;
  /** Raw sockets of TLS listeners reset by the source policy: their TLS socket's handshake error is not counted. */
  readonly #screenedOut = new WeakSet<Socket>();
  readonly #maxConnectionsWarning: RateLimitedWarning;
  /** The PROXY header of the PROXY listeners' connections (proxy-preamble.ts). */
  readonly #proxy: ProxyPreamble;
  readonly #acceptWarning: RateLimitedWarning;
  readonly #sources: SourcePolicy;
  /** Whether --allow, --deny or --max-per-source is set: the accept paths skip the policy otherwise. */
  readonly #screening: boolean;
  readonly #sourceWarnings: Record<SourceRejection, RateLimitedWarning>;
  /**
   * The sweep: its tick count, after how many ticks without traffic a connection is idle (0: no timeout), and how
   * many ticks a PROXY header may take (its deadline, one more than --proxy-timeout covers, so never early).
   */
  #tick = 0;
  readonly #idleTicks: number;
  readonly #headerTicks: number;
  /** The idle part runs every this many ticks: at --idle-timeout's own period when --proxy-timeout's is shorter. */
  readonly #idleEvery: number;
  /** Set by {@link finishAll}: a PROXY handshake that completes from then on is drained as soon as it starts. */
  #draining = false;

  constructor(input: { options: ConnectionOptions; connections: ConnectionTracker; log: Logger; metrics: Metrics }) {
    const { options, connections, log, metrics } = input;
    this.#options = options;
    this.#connections = connections;
    this.#log = log;
    this.#metrics = metrics;
    this.#faulty = faultsEnabled(options.faults);
    this.#fast = options.fast && !this.#faulty ? new FastEcho() : undefined;
    this.#raw = this.#fast !== undefined && options.raw ? new RawEcho(this.#rawOwner()) : undefined;
    // Plain numbers on the hot path, read by prom-client only when /metrics is scraped.
    // prom-client reads metrics in registration order, synchronously: this reader, declared before net_errors_total,
    // moves the pending read errors into that counter just before it is read.
    metrics.collect('net_received_bytes_total', () => {
      flushReadErrors(this.#context);
      return this.stats.receivedBytes;
    });
    metrics.collect('net_sent_bytes_total', () => this.stats.sentBytes);
    // Known label values at 0 from the start, so that rate() and increase() see the first event.
    const limitHits = metrics.preset('net_limit_hits_total', { limit: ['idle_timeout', 'max_buffered'] });
    this.#sources = new SourcePolicy(options.sources);
    this.#screening = this.#sources.active;
    this.#proxy = new ProxyPreamble({
      options: { trusted: options.proxyTrusted, timeoutMs: options.proxyTimeoutMs },
      log,
      metrics,
      admitSource: this.#screening
        ? (conn, address) =>
            conn instanceof RawConnection ? this.#admitRawSource(conn, address) : this.#admitSource(conn, address)
        : undefined,
      fastHeaderDone: (conn, buf, start, nread) =>
        conn instanceof RawConnection
          ? this.#rawHeaderDone(conn, start)
          : this.#fastHeaderDone(conn as Conn, buf, start, nread),
    });
    this.#context = {
      stats: this.stats,
      maxBuffered: options.maxBuffered,
      onBackpressure: () => limitHits.inc({ limit: 'max_buffered' }),
      onReadError: (socket, errno) => readError(socket as Conn, errno),
      log,
      metrics,
      readErrors: new Map(),
      proxy: this.#proxy,
    };
    const sourceRejections: SourceRejection[] = ['denied', 'per_source'];
    metrics.preset('net_connections_rejected_total', { reason: ['max_connections', ...sourceRejections] });
    // Labelled by errno name, which cannot be listed in advance: declared (HELP and TYPE), no sample until the first.
    metrics.counter('net_errors_total');
    metrics.counter('net_accept_errors_total');
    this.#sourceWarnings = {
      denied: new RateLimitedWarning(log, 'connections from sources outside --allow or inside --deny reset at once'),
      per_source: new RateLimitedWarning(
        log,
        `--max-per-source (${options.sources.maxPerSource}) reached by a source: its new connections are reset at once`,
      ),
    };
    this.#maxConnectionsWarning = new RateLimitedWarning(
      log,
      `--max-connections (${options.maxConnections}) reached: new connections are closed at once`,
    );
    this.#acceptWarning = new RateLimitedWarning(
      log,
      'accept failed (descriptors exhausted?): connections are being dropped',
    );
    // --idle-timeout by a sweep over the open connections, not socket.setTimeout(): Node re-arms a socket's timer
    // on every read and every write, which cost ~6 % of the server CPU per 64 B echo (measured, README), and keeps
    // a Timeout object per connection. The sweep compares byte counts, so the hot path does nothing for it. The
    // same sweep holds a fast-path PROXY header to --proxy-timeout (a deadline tick on its state): a timer set and
    // cleared per connection was measurable in PROXY churn.
    const period = Math.min(sweepPeriod(options.idleTimeoutMs), sweepPeriod(options.proxyTimeoutMs));
    this.#idleEvery =
      options.idleTimeoutMs > 0 ? Math.max(1, Math.floor(sweepPeriod(options.idleTimeoutMs) / period)) : 1;
    this.#idleTicks = options.idleTimeoutMs > 0 ? Math.ceil(options.idleTimeoutMs / period) : 0;
    this.#headerTicks = options.proxyTimeoutMs > 0 ? Math.ceil(options.proxyTimeoutMs / period) + 1 : 0;
    if (period !== Number.POSITIVE_INFINITY) setInterval(() => this.#sweep(), period).unref();
  }

  /**
   * True when plain connections may take the fast path (fast-echo.ts): --io allows it and no test knob is on. Their
   * listener must then be created with `pauseOnConnect: true` and hand its sockets to {@link acceptFast}.
   */
  get fastPath(): boolean {
    return this.#fast !== undefined;
  }

  /**
   * Handles a new connection; `proxied` when its listener requires a PROXY header (the source policy then applies to
   * the header's client, once read), `screened` when {@link screen} has applied it already (TLS listeners).
   */
  accept(socket: Socket, proxied: boolean, screened = false): void {
    if (this.#refused(socket)) return;
    const source =
      this.#screening && !proxied && !screened ? this.#admitSource(socket, socket.remoteAddress) : undefined;
    if (source === false) return;
    const conn = socket as Conn;
    conn[kConnection] = new ConnectionState(this.#context);
    conn[kConnection].source = source;
    this.#track(conn);
    if (proxied) void this.#handshake(conn);
    else this.#begin(conn);
  }

  /**
   * Handles a new connection of a plain listener created with `pauseOnConnect: true` when {@link fastPath} is true:
   * its handle moves to a fast socket (handle-takeover.ts).
   */
  acceptFast(socket: Socket): void {
    if (this.#refused(socket)) return;
    const source = this.#screening ? this.#admitSource(socket, socket.remoteAddress) : undefined;
    if (source === false) return;
    // The count sits on the accepted socket; the fast socket that replaces it owns the connection from here.
    const fast = takeOver(socket, this.#fast as FastEcho, new ConnectionState(this.#context)) as Conn;
    this.#beginFastAccepted(fast, source);
  }

  /**
   * Makes `server` (a plain listener created with `pauseOnConnect: true`, listening) accept on its handle straight
   * into fast sockets (handle-takeover.ts). False when its handle does not allow it: {@link acceptFast} stays.
   */
  acceptOnHandle(server: Server): boolean {
    return acceptOnHandle(server, this.#fast as FastEcho, this.#context, (socket) => {
      if (this.#refused(socket)) return;
      const source = this.#screening ? this.#admitSource(socket, socket.remoteAddress) : undefined;
      if (source === false) return;
      this.#beginFastAccepted(socket as Conn, source);
    });
  }

  /**
   * Makes `server` (a plain listener, listening) accept raw handles, each echoed with no net.Socket (raw-echo.ts).
   * False, changing nothing, when the raw echo is off or the listening handle does not allow it: the caller keeps
   * {@link acceptOnHandle} or {@link acceptFast}.
   */
  acceptRawOnHandle(server: Server): boolean {
    const engine = this.#raw;
    if (engine === undefined) return false;
    return acceptRawHandles(
      server,
      (handle) => this.#acceptRaw(handle, engine),
      (errno) => this.acceptError(systemError(errno, 'accept')),
    );
  }

  /** A plain listener's accepted handle, in the steps every path takes: limit, source policy, tracking, greeting. */
  #acceptRaw(handle: RawClientHandle, engine: RawEcho): void {
    const conn = this.#admitRaw(handle, engine);
    if (conn === undefined) return;
    if (this.#screening) {
      const source = this.#admitRawSource(conn, conn.remoteAddress);
      if (source === false) return;
      conn.source = source;
    }
    this.#trackRaw(conn);
    const greeting = this.#options.greeting;
    if (greeting !== undefined) this.stats.sentBytes += greeting.length;
    conn.start(greeting);
  }

  /**
   * A PROXY listener on the raw path: accepts raw handles as the plain listeners do, and reads the header in the raw
   * read callback (proxy-preamble.ts), with the stream path's rules (#handshake). False when the raw echo is off or
   * the listening handle does not allow it: the caller keeps {@link acceptProxyOnHandle}.
   */
  acceptProxyRawOnHandle(server: Server): boolean {
    const engine = this.#raw;
    if (engine === undefined) return false;
    return acceptRawHandles(
      server,
      (handle) => {
        const conn = this.#admitRaw(handle, engine);
        if (conn === undefined) return;
        this.#trackRaw(conn);
        // Reading from the start: a refused connection then closes through the handle's events, like any other.
        conn.start(undefined);
        if (!this.#proxy.trusted(conn)) return;
        this.#proxy.readOnFastPath(conn, this.#tick + this.#headerTicks);
      },
      (errno) => this.acceptError(systemError(errno, 'accept')),
    );
  }

  /** A raw PROXY connection's header is in and accepted: the greeting, then the echo from `start` in this read. */
  #rawHeaderDone(conn: RawConnection, start: number): number {
    const greeting = this.#options.greeting;
    if (greeting !== undefined) {
      this.stats.sentBytes += greeting.length;
      if (!conn.send(greeting)) return -1;
    }
    // A drain began while the header was on its way: what came with the header is echoed, then it is drained.
    if (this.#draining) conn.finishAfterRead();
    return start;
  }

  /** --max-connections, then a raw connection for `handle` (undefined: closed at once). */
  #admitRaw(handle: RawClientHandle, engine: RawEcho): RawConnection | undefined {
    if (this.#overLimit()) {
      closeRawHandleNow(handle);
      return undefined;
    }
    noDelayRawHandle(handle);
    return new RawConnection(handle, engine);
  }

  /** The source policy for a raw connection: its key, or false when it was refused (reset at once). */
  #admitRawSource(conn: RawConnection, address: string | undefined): string | undefined | false {
    const verdict = this.#judgeSource(address, () => conn.formatPeer());
    if (verdict === false) conn.reset();
    return verdict;
  }

  #trackRaw(conn: RawConnection): void {
    this.#connections.track(conn);
    conn.seenTick = this.#tick;
    if (this.#log.isLevelEnabled('debug')) {
      conn.peer = conn.formatPeer();
      this.#log.debug({ peer: conn.peer }, 'connection opened');
    }
  }

  /** What the raw echo's connections report to. */
  #rawOwner(): RawEchoOwner {
    const limitHits = this.#metrics.counter('net_limit_hits_total');
    return {
      stats: this.stats,
      maxBuffered: this.#options.maxBuffered,
      onBackpressure: () => limitHits.inc({ limit: 'max_buffered' }),
      failed: (conn, errno, syscall) => connectionFailed(this.#context, conn, conn, errno, syscall),
      closed: (conn) => {
        this.#connections.untrack(conn);
        if (conn.source !== undefined) this.#sources.release(conn.source);
        if (this.#log.isLevelEnabled('debug'))
          this.#log.debug(closeFields(conn, conn, conn.formatPeer()), 'connection closed');
      },
    };
  }

  /**
   * A PROXY listener on the fast path: accepts on the listening handle as the plain ones do, and reads the header
   * inside the fast read callback (proxy-preamble.ts), with the stream path's rules (#handshake); a drain that starts
   * mid-header lets the header finish. False when the listening handle does not allow it: the 'connection' path
   * (#handshake) stays.
   */
  acceptProxyOnHandle(server: Server): boolean {
    return acceptOnHandle(server, this.#fast as FastEcho, this.#context, (socket) => {
      if (this.#refused(socket)) return;
      const conn = socket as Conn;
      this.#track(conn);
      if (!this.#proxy.trusted(conn)) return;
      // The echo's 'end' listener from the start: a FIN before the header is in goes to the header reader.
      startFastEcho(conn);
      this.#proxy.readOnFastPath(conn, this.#tick + this.#headerTicks);
    });
  }

  /**
   * A fast-path PROXY connection's header is in and accepted (proxy-preamble.ts): the echo starts at `start` in
   * this read; returns what the read callback returns.
   */
  #fastHeaderDone(conn: Conn, buf: Buffer, start: number, nread: number): number {
    this.#releaseSourceOnClose(conn, conn[kConnection].source);
    this.#greet(conn);
    conn[kConnection].stage = STAGE_FAST;
    if (!this.#draining) return start;
    // A drain began while the header was on its way: what came with the header is echoed (a copy: buf is the shared
    // read buffer), then the connection is drained like the others. The echo of this read ends here.
    if (start < nread) this.#echoOwed(conn, [Buffer.from(buf.subarray(start, nread))]);
    finishConnection(conn);
    return nread;
  }

  /** A fast socket of a plain listener, admitted: `source` is its --max-per-source key, given back when it closes. */
  #beginFastAccepted(conn: Conn, source: string | undefined): void {
    this.#releaseSourceOnClose(conn, source);
    this.#track(conn);
    this.#greet(conn);
    conn[kConnection].stage = STAGE_FAST;
    startFastEcho(conn);
  }

  /**
   * The source policy for a TLS listener, on the raw TCP connection (its 'connection' event): a refused client is
   * reset before any handshake work. Its count is released when the raw socket closes, which it does with the TLS
   * socket over it.
   */
  screen(raw: Socket): void {
    if (!this.#screening) return;
    const source = this.#admitSource(raw, raw.remoteAddress);
    if (source === false) {
      this.#screenedOut.add(raw);
      return;
    }
    this.#releaseSourceOnClose(raw, source);
  }

  /**
   * --allow/--deny/--max-per-source for a connection from `address`: false when refused, else the key it is counted
   * under (undefined unless --max-per-source is on; the caller releases it on close). A refused connection is reset at once (RST: no
   * greeting, no echo; xinetd closes such connections without running the service), counted by reason, logged at
   * debug and warned about at most once per interval.
   */
  #admitSource(socket: Socket, address: string | undefined): string | undefined | false {
    const verdict = this.#judgeSource(address, () => formatPeer(socket));
    if (verdict === false) socket.resetAndDestroy();
    return verdict;
  }

  /** {@link admitSource} without the reset: the caller resets what it refuses. `via` formats the peer for a log. */
  #judgeSource(address: string | undefined, via: () => string): string | undefined | false {
    const verdict = this.#sources.admit(address);
    if ('key' in verdict) return verdict.key;
    const reason = verdict.refused;
    this.#metrics.counter('net_connections_rejected_total').inc({ reason });
    if (this.#log.isLevelEnabled('debug')) {
      this.#log.debug({ peer: address, via: via(), reason }, 'connection refused by the source policy');
    }
    this.#sourceWarnings[reason].hit({ peer: address });
    return false;
  }

  /** Gives a --max-per-source count back when the socket that finally owns the connection closes. */
  #releaseSourceOnClose(socket: Socket, key: string | undefined): void {
    if (key === undefined) return;
    socket.once('close', () => this.#sources.release(key));
  }

  /** --greeting: sent once, before any echo, and counted as sent. */
  #greet(conn: Conn): void {
    const greeting = this.#options.greeting;
    if (greeting === undefined) return;
    this.stats.sentBytes += greeting.length;
    conn.write(greeting);
  }

  /** Over --max-connections: counted, warned about (rate-limited) and closed at once. */
  #refused(socket: Socket): boolean {
    if (!this.#overLimit()) return false;
    socket.destroy();
    return true;
  }

  /**
   * True, counted and warned about, when --max-connections are open: the caller closes the new one at once, so the
   * client learns it now instead of at its own timeout.
   */
  #overLimit(): boolean {
    if (this.#connections.size < this.#options.maxConnections) return false;
    this.#metrics.counter('net_connections_rejected_total').inc({ reason: 'max_connections' });
    this.#maxConnectionsWarning.hit({ open: this.#connections.size });
    return true;
  }

  /** Tracking, the error handler, the idle sweep's starting point and the debug log lines, common to every path. */
  #track(conn: Conn): void {
    this.#connections.add(conn);
    conn.on('error', connOnError);
    conn[kConnection].seenTick = this.#tick;
    if (this.#log.isLevelEnabled('debug')) {
      const via = formatPeer(conn);
      this.#log.debug({ peer: via }, 'connection opened');
      this.#logClose(conn, via);
    }
  }

  #logClose(conn: Conn, via: string): void {
    conn.once('close', () => this.#log.debug(closeFields(conn, conn[kConnection], via), 'connection closed'));
  }

  /**
   * A connection a listener closed before it reached us because that listener holds `server.maxConnections`
   * (Node's 'drop' event): counted and warned about like the ones {@link accept} refuses.
   */
  dropped(): void {
    this.#metrics.counter('net_connections_rejected_total').inc({ reason: 'max_connections' });
    this.#maxConnectionsWarning.hit({ open: this.#connections.size });
  }

  /** Counts and logs a failed accept on a listener (EMFILE, ENFILE...); the listener keeps going. */
  acceptError(err: NodeJS.ErrnoException): void {
    const code = err.code ?? 'unknown';
    this.#metrics.counter('net_accept_errors_total').inc({ code });
    this.#acceptWarning.hit({ code, err });
  }

  /** A TLS handshake that failed: counted as a socket error, logged at debug. */
  tlsError(err: NodeJS.ErrnoException, socket: Socket): void {
    // The reset of a connection the source policy refused (screen), seen by the TLS socket over it: counted already.
    const raw = tlsRawSocket(socket);
    if (raw !== undefined && this.#screenedOut.has(raw)) return;
    this.#metrics.counter('net_errors_total').inc({ code: err.code ?? 'TLS' });
    this.#log.debug({ peer: formatPeer(socket), err }, 'TLS handshake failed');
  }

  /**
   * Starts a drain: every connection stops echoing new input and closes its side once what it owes has been
   * sent. A connection still waiting for its PROXY header (bounded by --proxy-timeout) is not dropped: a load
   * balancer sends the header as soon as it connects, and the client's bytes right behind it, so the connection
   * finishes its header and is then drained like the others (what came with or before the drain is echoed).
   */
  finishAll(): void {
    this.#draining = true;
    this.#connections.forEach((socket) => {
      finishConnection(socket as Conn);
    });
    // The only connections that are not sockets here are the raw echo's.
    this.#connections.forEachHandle((conn) => (conn as RawConnection).finish());
  }

  /**
   * One tick of the sweep: closes the fast-path PROXY connections past their header's deadline, and the connections
   * without traffic either way for --idle-timeout.
   */
  #sweep(): void {
    const tick = ++this.#tick;
    const idleTicks = tick % this.#idleEvery === 0 ? this.#idleTicks : 0;
    this.#connections.forEach((socket) => {
      const conn = socket as Conn;
      this.#sweepOne(conn, conn[kConnection], tick, idleTicks);
    });
    // The raw echo's connections: the only ones tracked here that are not sockets.
    this.#connections.forEachHandle((handle) => {
      const conn = handle as RawConnection;
      this.#sweepOne(conn, conn, tick, idleTicks);
    });
  }

  /**
   * One connection's turn in the sweep (`state`: a socket's ConnectionState, or the raw connection itself): its PROXY
   * header's deadline, then on idle ticks its byte count.
   */
  #sweepOne(conn: Conn | RawConnection, state: SweptState, tick: number, idleTicks: number): void {
    if (state.header !== undefined && tick >= state.header.deadlineTick) this.#proxy.expired(conn);
    if (idleTicks === 0) return;
    // Bytes read, and bytes handed over for sending (queued ones included): traffic either way.
    const bytes = conn.bytesRead + conn.bytesWritten;
    if (bytes !== state.seenBytes) {
      state.seenBytes = bytes;
      state.seenTick = tick;
    } else if (tick - state.seenTick >= idleTicks && !conn.destroyed) {
      // No traffic either way for --idle-timeout: the client is gone or stuck; free its descriptor and buffers.
      this.#metrics.counter('net_limit_hits_total').inc({ limit: 'idle_timeout' });
      if (this.#log.isLevelEnabled('debug'))
        this.#log.debug({ peer: clientPeer(state) ?? peerOf(conn) }, 'idle timeout: closing');
      // Idle under an incomplete PROXY header: refused as closed, as any close under it is.
      this.#proxy.gone(conn, 'closed');
      conn.destroy();
    }
  }

  #begin(conn: Conn): void {
    this.#releaseSourceOnClose(conn, conn[kConnection].source);
    this.#greet(conn);
    if (this.#faulty) {
      conn[kConnection].stage = STAGE_FAULTY;
      startFaultyEcho(conn, this.#options.faults);
    } else {
      conn[kConnection].stage = STAGE_ECHO;
      startEcho(conn);
    }
  }

  /** A PROXY listener's connection on the stream path: served once its header is read and accepted. */
  async #handshake(conn: Conn): Promise<void> {
    if (!this.#proxy.trusted(conn) || !(await this.#proxy.readStream(conn))) return;
    if (this.#draining) {
      // A drain began while the header was on its way: served, then drained at once like the others.
      this.#begin(conn);
      finishConnection(conn);
    } else if (this.fastPath) this.#beginFast(conn);
    else this.#begin(conn);
  }

  /**
   * After a PROXY header, the plain echo takes the fast path too: the socket's handle moves to a fast socket (as for
   * the plain listeners, handle-takeover.ts `takeOverAfterReads`), which takes the old one's place in the tracking,
   * the logs and the idle sweep, with the connection's state. Bytes that came with the header are echoed first. Measured (bench, PROXY listener
   * scenarios): see the README's performance section.
   */
  #beginFast(conn: Conn): void {
    const moved = takeOverAfterReads(conn, this.#fast as FastEcho);
    if (moved === undefined) {
      this.#begin(conn);
      return;
    }
    const fast = moved.socket as Conn;
    this.#connections.replace(conn, fast);
    fast.on('error', connOnError);
    this.#releaseSourceOnClose(fast, fast[kConnection].source);
    if (this.#log.isLevelEnabled('debug')) this.#logClose(fast, formatPeer(fast));
    this.#greet(fast);
    this.#echoOwed(fast, moved.owed);
    fast[kConnection].stage = STAGE_FAST;
    startFastEcho(fast);
  }

  /** Bytes that came with a PROXY header, read before the echo began: echoed first, counted as the echo counts. */
  #echoOwed(conn: Conn, chunks: readonly Buffer[]): void {
    for (const chunk of chunks) {
      this.stats.receivedBytes += chunk.length;
      this.stats.sentBytes += chunk.length;
      conn.write(chunk);
    }
  }
}

/** The 'connection closed' line's fields; `state` is a socket's ConnectionState, or the raw connection itself. */
function closeFields(
  conn: Conn | RawConnection,
  state: { readonly client: ProxyInfo | undefined },
  via: string,
): Record<string, unknown> {
  return {
    peer: clientPeer(state) ?? via,
    ...(state.client?.source !== undefined ? { via } : {}),
    receivedBytes: conn.bytesRead,
    // The handle's own count: direct writes on it included.
    sentBytes: conn.bytesWritten,
  };
}

/**
 * Starts a connection's drain on whichever path serves it (finishAll, and a PROXY connection whose header completes
 * during the drain). One still waiting for its header has nothing to finish yet: it finishes when the header is in.
 */
function finishConnection(conn: Conn): void {
  const { stage } = conn[kConnection];
  if (stage === STAGE_FAST) finishFastEcho(conn);
  else if (stage === STAGE_ECHO) finishEcho(conn);
  else if (stage === STAGE_FAULTY) finishFaultyEcho(conn);
}

/** Resets and other socket errors are the client's business: counted by code, logged at debug, never thrown. */
function connOnError(this: Conn, err: NodeJS.ErrnoException): void {
  const state = this[kConnection];
  const { context } = state;
  context.metrics.counter('net_errors_total').inc({ code: err.code ?? 'unknown' });
  if (context.log.isLevelEnabled('debug'))
    context.log.debug({ peer: clientPeer(state) ?? formatPeer(this), err }, 'connection error');
  // Closed under an incomplete PROXY header (where Node's read callback kept the socket: no read hook).
  context.proxy.gone(this, 'closed');
}

/** A fast-path read error, counted as connOnError counts an 'error' event, with no Error built unless logged. */
function readError(conn: Conn, errno: number): void {
  connectionFailed(conn[kConnection].context, conn, conn[kConnection], errno, 'read');
}

/**
 * A read, write or shutdown that failed on the fast or raw path (a reset, say), with no Error object built unless a
 * line is logged: counted by errno (net_errors_total, at scrape time), logged at debug; under an incomplete PROXY
 * header, the header is refused as closed. `state`: a socket's ConnectionState, or the raw connection itself.
 */
function connectionFailed(
  context: AcceptContext,
  conn: Conn | RawConnection,
  state: { readonly client: ProxyInfo | undefined },
  errno: number,
  syscall: string,
): void {
  context.readErrors.set(errno, (context.readErrors.get(errno) ?? 0) + 1);
  if (context.log.isLevelEnabled('debug'))
    context.log.debug(
      { peer: clientPeer(state) ?? peerOf(conn), err: systemError(errno, syscall) },
      'connection error',
    );
  context.proxy.gone(conn, 'closed');
}

function flushReadErrors(context: AcceptContext): void {
  if (context.readErrors.size === 0) return;
  const counter = context.metrics.counter('net_errors_total');
  for (const [errno, count] of context.readErrors) counter.inc({ code: errnoName(errno) }, count);
  context.readErrors.clear();
}
