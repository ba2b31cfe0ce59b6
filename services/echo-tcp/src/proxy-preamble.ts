/**
 * The PROXY protocol header in front of a connection of a PROXY listener, on every path: read inside the read callback
 * of a raw connection (raw-echo.ts `preamble`) or of a fast socket (fast-echo.ts setPreamble), or as a stream (core's
 * readProxyHeader). The rules are the same on both: only
 * a trusted source may speak for a client (else anyone could choose the address we log), the whole header within
 * --proxy-timeout (CVE-2021-23409), the same reasons when refused, and the source policy on the header's client.
 * A v2 LOCAL header (HAProxy's health checks) and a v1 UNKNOWN one carry no client: the connection is served as
 * itself. What happens once the header is in (greeting, echo, drain) is connection.ts's.
 */
import {
  type Cidr,
  cidrContains,
  formatPeer,
  type Logger,
  type Metrics,
  type ProxyInfo,
  ProxyProtocolError,
  parseProxyHeader,
  readProxyHeader,
} from '@net/core';
import { clientPeer, type EchoSocket, type HeaderState } from './connection-state.js';
import { setPreamble } from './fast-echo.js';
import { RateLimitedWarning } from './rate-limited-log.js';
import { RawConnection } from './raw-echo.js';
import { kConnection } from './symbols.js';

/** A connection whose header is read in its read callback: a fast socket, or a raw connection. */
export type HeaderConn = EchoSocket | RawConnection;

/** What the header reader keeps on a connection: on a socket's state, or on the raw connection itself. */
interface HeaderFields {
  header: HeaderState | undefined;
  client: ProxyInfo | undefined;
  source: string | undefined;
}

function fieldsOf(conn: HeaderConn): HeaderFields {
  return conn instanceof RawConnection ? conn : conn[kConnection];
}

/** The peer of a socket or a raw connection, as logged. */
export function peerOf(conn: HeaderConn): string {
  return conn instanceof RawConnection ? conn.formatPeer() : formatPeer(conn);
}

/** --allow/--deny/--max-per-source for `address`: false when refused (the connection is reset), else its key. */
export type AdmitSource = (conn: HeaderConn, address: string) => string | undefined | false;

/**
 * The header of a fast-path or raw connection is in and accepted: `start` is where the payload starts in `buf` (the
 * engine's read buffer, valid until the callback returns). Returns what the read callback returns: where the echo
 * starts, `nread` when nothing is left to echo, -1 when the connection was closed.
 */
export type FastHeaderDone = (conn: HeaderConn, buf: Buffer, start: number, nread: number) => number;

export interface ProxyPreambleOptions {
  /** --proxy-trusted. */
  trusted: readonly Cidr[];
  /** --proxy-timeout, in ms. */
  timeoutMs: number;
}

/** Reads and checks the PROXY headers of every PROXY listener of one process. */
export class ProxyPreamble {
  readonly #options: ProxyPreambleOptions;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #warning: RateLimitedWarning;
  /** The source policy, when --allow, --deny or --max-per-source is set. */
  readonly #admitSource: AdmitSource | undefined;
  readonly #fastHeaderDone: FastHeaderDone;

  constructor(input: {
    options: ProxyPreambleOptions;
    log: Logger;
    metrics: Metrics;
    admitSource: AdmitSource | undefined;
    fastHeaderDone: FastHeaderDone;
  }) {
    this.#options = input.options;
    this.#log = input.log;
    this.#metrics = input.metrics;
    this.#admitSource = input.admitSource;
    this.#fastHeaderDone = input.fastHeaderDone;
    this.#warning = new RateLimitedWarning(input.log, 'connections closed because of their PROXY protocol header');
  }

  /** --proxy-trusted: false, the connection refused, when its source may not send a header. */
  trusted(conn: HeaderConn): boolean {
    // A Unix socket peer has no address: access to the socket file is the trust boundary there.
    const address = conn.remoteAddress;
    if (address === undefined || cidrContains(this.#options.trusted, address)) return true;
    this.#refused(conn, 'untrusted', `source ${peerOf(conn)} is not in --proxy-trusted`);
    return false;
  }

  /**
   * A fast-path connection (trusted, its echo started): its reads go to the header reader until the header is
   * complete, then to the echo. So a PROXY connection costs no readable stream, promise or second socket (in PROXY
   * churn they cost 5.7x the C reference's CPU per connection), and no timer or listener of its own either: the
   * caller's sweep calls {@link expired} at `deadlineTick`, the echo's 'end' hands the FIN to the preamble, and a
   * connection closed under it (a reset, the idle timeout) is reported with {@link gone}.
   */
  readOnFastPath(conn: HeaderConn, deadlineTick: number): void {
    fieldsOf(conn).header = { pending: undefined, deadlineTick };
    if (conn instanceof RawConnection) conn.preamble = this.#preamble;
    else setPreamble(conn, this.#preamble);
  }

  /**
   * A stream-path connection (trusted): true when its header was read and accepted, the connection still open; the
   * caller then serves it. False when it was refused (closed) or closed meanwhile.
   */
  async readStream(conn: EchoSocket): Promise<boolean> {
    let info: ProxyInfo;
    try {
      info = await readProxyHeader(conn, { timeoutMs: this.#options.timeoutMs });
    } catch (err) {
      if (!(err instanceof ProxyProtocolError)) throw err;
      this.#refused(conn, err.reason, err.message);
      return false;
    }
    if (conn.destroyed) return false;
    return this.#accepted(conn, info);
  }

  /** A fast-path connection ended (FIN) or closed before its whole header came; nothing when the header is in. */
  gone(conn: HeaderConn, what: string): void {
    const header = fieldsOf(conn).header;
    if (header === undefined) return;
    const received = header.pending?.length ?? 0;
    this.#done(conn);
    if (received === 0) this.#refused(conn, 'closed', `the connection ${what} before a header arrived`);
    else this.#refused(conn, 'truncated', `the connection ${what} after ${received} bytes of an incomplete header`);
  }

  readonly #preamble = (conn: HeaderConn, buf: Buffer, nread: number): number => this.#read(conn, buf, nread);

  /** Bytes of a fast-path or raw connection before its header is complete: returns where the payload starts. */
  #read(conn: HeaderConn, buf: Buffer, nread: number): number {
    if (nread === 0) {
      this.gone(conn, 'ended (FIN)');
      return -1;
    }
    const state = fieldsOf(conn).header as HeaderState;
    const previous = state.pending?.length ?? 0;
    // Most headers come whole in one read and are parsed in place; the parser bounds what needs keeping.
    const bytes =
      state.pending === undefined ? buf.subarray(0, nread) : Buffer.concat([state.pending, buf.subarray(0, nread)]);
    let parsed: ReturnType<typeof parseProxyHeader>;
    try {
      parsed = parseProxyHeader(bytes);
    } catch (err) {
      if (!(err instanceof ProxyProtocolError)) throw err;
      this.#done(conn);
      this.#refused(conn, err.reason, err.message);
      return -1;
    }
    if ('needMore' in parsed) {
      // buf is the shared read buffer: keep a copy.
      state.pending = state.pending === undefined ? Buffer.from(bytes) : bytes;
      return nread;
    }
    this.#done(conn);
    if (!this.#accepted(conn, parsed.info)) return -1;
    return this.#fastHeaderDone(conn, buf, parsed.headerLength - previous, nread);
  }

  /** The header is complete or refused: its state and the preamble go. */
  #done(conn: HeaderConn): void {
    fieldsOf(conn).header = undefined;
    if (conn instanceof RawConnection) conn.preamble = undefined;
    else setPreamble(conn, undefined);
  }

  /** --proxy-timeout passed (the sweep's deadline tick) with the header still incomplete. */
  expired(conn: HeaderConn): void {
    const header = fieldsOf(conn).header;
    if (header === undefined || conn.destroyed) return;
    const received = header.pending?.length ?? 0;
    this.#done(conn);
    this.#refused(
      conn,
      'timeout',
      `no complete header within ${this.#options.timeoutMs} ms (${received} bytes received)`,
    );
  }

  /**
   * The real client's address for logs, the source policy on it, and the debug line. False when the policy refused
   * the client: the connection has been reset.
   */
  #accepted(conn: HeaderConn, info: ProxyInfo): boolean {
    const fields = fieldsOf(conn);
    if (info.command === 'PROXY' && info.source !== undefined) {
      const { address } = info.source;
      fields.client = info;
      // The header's client is the one --allow/--deny/--max-per-source mean: the proxy's own address would put
      // every client behind it in one source. A LOCAL or UNKNOWN header (a health check) is the trusted proxy
      // speaking for itself: neither checked nor counted.
      if (this.#admitSource !== undefined && info.family !== 'UNIX') {
        const source = this.#admitSource(conn, address);
        if (source === false) return false;
        fields.source = source;
      }
    }
    if (this.#log.isLevelEnabled('debug')) {
      this.#log.debug(
        {
          peer: clientPeer(fields) ?? peerOf(conn),
          via: peerOf(conn),
          proxy: `v${info.version} ${info.command} ${info.family}`,
        },
        'PROXY header accepted',
      );
    }
    return true;
  }

  /** Counted by reason, logged at debug, warned about (rate-limited), and closed. */
  #refused(conn: HeaderConn, reason: string, message: string): void {
    this.#metrics.counter('net_proxy_header_errors_total').inc({ reason });
    if (this.#log.isLevelEnabled('debug'))
      this.#log.debug({ peer: peerOf(conn), reason }, `PROXY header refused: ${message}`);
    this.#warning.hit(() => ({ reason, peer: peerOf(conn) }));
    conn.destroy();
  }
}
