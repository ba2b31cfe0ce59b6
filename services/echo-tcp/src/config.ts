/**
 * The settings of `echo-tcp serve`, beyond the common ones (--host, --port, --listen, --admin-port, logging,
 * --drain-timeout) that the runtime adds. Every limit has a default that keeps one misbehaving client from hurting
 * the others; every test knob is off by default, so that out of the box the service is a plain RFC 862 echo.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import {
  boolean,
  type Cidr,
  custom,
  decimal,
  endpointType,
  integer,
  list,
  oneOf,
  option,
  parseCidr,
  type Schema,
  string,
  tcpLimitOptions,
  workersOption,
} from '@net/core';

/** The RFC 862 port is 7; like the classic C example (port 15000), a local run uses an unprivileged one. */
export const DEFAULT_PORT = 15_000;

/**
 * Smallest accepted --max-buffered. Node pauses a writer at the stream's high-water mark (16 KiB on Node 20,
 * 64 KiB from Node 22) and only emits 'drain' after write() returned false, so a bound below it could never be
 * enforced exactly; 64 KiB is also one read's worth (libuv reads at most 64 KiB at a time).
 */
export const MIN_MAX_BUFFERED = 64 * 1024;

const CIDR_ACCEPTS =
  'networks in CIDR notation such as 10.0.0.0/8 or ::1/128, comma-separated (a bare address is one host)';

const cidr = custom<Cidr>(
  CIDR_ACCEPTS,
  (raw) => {
    let parsed: Cidr;
    try {
      parsed = parseCidr(raw);
    } catch (err) {
      // Keep parseCidr's reason (e.g. "did you mean 10.0.0.0/8?") without repeating what is accepted.
      const reason = (err as Error).message.replace(/^invalid CIDR "[^"]*": /, '').split(/;? ?expected /)[0];
      throw new Error(`expected ${CIDR_ACCEPTS}; "${raw}" ${reason ? `is wrong: ${reason}` : 'is not one'}`);
    }
    // Logged as its text in the start-up configuration line, not as a Buffer dump.
    return Object.defineProperty(parsed, 'toJSON', { value: () => parsed.text, enumerable: false });
  },
  (c) => c.text,
);

/**
 * A path to a PEM file that must be readable now: a typo in --tls-cert/--tls-key is bad configuration (exit 2 with
 * the setting named), not a failure found later by the listener. The content is checked when the pair is loaded
 * (tls.ts). Opened and closed only (a FIFO or device would block a read); a directory is refused here too.
 */
function readablePemFile(what: string) {
  const accepts = `a path to a PEM ${what} (a readable file)`;
  return custom<string>(accepts, (raw) => {
    let fd: number | undefined;
    let problem: string | undefined;
    try {
      fd = openSync(raw, 'r');
      if (!fstatSync(fd).isFile()) problem = 'not a regular file';
    } catch (err) {
      problem = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (problem !== undefined) throw new Error(`expected a readable PEM ${what} (${problem})`);
    return raw;
  });
}

/** Loopback only: a load balancer on the same host. */
const DEFAULT_PROXY_TRUSTED = list(cidr).parse('127.0.0.1/32,::1/128');

/** The service's own settings. */
export const echoOptions = {
  ...tcpLimitOptions({ maxConnections: 10_000, idleTimeout: 300 }),
  ...workersOption(),
  maxBuffered: option({
    type: integer(MIN_MAX_BUFFERED, 1 << 30),
    default: 1 << 20,
    description:
      'Bytes queued for one client that does not read its echo; past it the service stops reading from that client until it reads (backpressure)',
  }),
  backlog: option({
    type: integer(1, 65_535),
    default: 511,
    description: 'Length of the accept queue of each listener (listen(2) backlog; the kernel caps it at somaxconn)',
  }),
  proxyProtocol: option({
    type: boolean(),
    default: false,
    description:
      'Require a PROXY protocol v1 or v2 header on the --host/--port/--listen listeners (from --proxy-trusted sources only)',
  }),
  proxyListen: option({
    type: list(endpointType),
    repeatable: true,
    default: [],
    description: 'More listeners that require a PROXY protocol header, beside the plain ones',
  }),
  proxyTrusted: option({
    type: list(cidr),
    default: DEFAULT_PROXY_TRUSTED,
    description:
      'Networks allowed to send a PROXY header; a connection from elsewhere to a PROXY listener is closed at once',
  }),
  proxyTimeout: option({
    type: decimal(0.001, 3600, 'seconds'),
    default: 5,
    description: 'Time for the whole PROXY header to arrive; a connection still without one is closed',
  }),
  greeting: option({
    type: string({ maxLength: 1024, accepts: 'a template of at most 1024 characters' }),
    description:
      'Line sent once on connect, before any echo: {instance} and {hostname} are replaced, \\n \\r \\t \\\\ unescaped (off when unset)',
  }),
  delayMs: option({
    type: integer(0, 60_000),
    default: 0,
    description: 'Test knob: delay every echo by this many milliseconds (0: off)',
  }),
  closeAfterBytes: option({
    type: integer(0, Number.MAX_SAFE_INTEGER),
    default: 0,
    description: 'Test knob: echo this many bytes, then close the connection (0: off)',
  }),
  closeAfterSeconds: option({
    type: decimal(0, 86_400, 'seconds'),
    default: 0,
    description: 'Test knob: close every connection this long after it opened, after echoing what is owed (0: off)',
  }),
  closeWithReset: option({
    type: boolean(),
    default: false,
    description:
      'Test knob: end connections the service closes (after the knobs above, or after a client half-close) with a reset (RST) instead of a FIN',
  }),
  io: option({
    type: oneOf(['auto', 'stream', 'fast', 'raw'] as const),
    default: 'auto',
    description:
      'How plain and PROXY connections are read and echoed: raw (on the accepted libuv handle, with no net.Socket: reads into one shared buffer, writes on the handle, through Node internals), fast (the same reads and writes on a net.Socket built around the handle), stream (plain net.Socket: data events, write, pause/drain), auto (raw, else fast, else stream with one warning, where the internals they need are missing or look different)',
  }),
  tlsListen: option({
    type: list(endpointType),
    repeatable: true,
    default: [],
    description: 'TLS listeners beside the plain ones (needs --tls-cert and --tls-key; reloaded on SIGHUP)',
  }),
  tlsCert: option({
    type: readablePemFile('certificate chain'),
    description: 'PEM certificate chain of the TLS listeners',
  }),
  tlsKey: option({
    type: readablePemFile('private key'),
    description: 'PEM private key of the TLS listeners',
  }),
  allow: option({
    type: list(cidr),
    default: [],
    description:
      "Only these client networks may connect (xinetd's only_from); others are reset at once. Empty: everyone. Behind a PROXY listener, the header's client is checked",
  }),
  deny: option({
    type: list(cidr),
    default: [],
    description:
      "Client networks reset at once (xinetd's no_access); where --allow matches too, the longer prefix decides, a tie denies",
  }),
  maxPerSource: option({
    type: integer(0, 1_000_000),
    default: 0,
    description:
      "Connections open at once from one client address (xinetd's per_source); past it new ones are reset at once (0: off)",
  }),
  perSourceIpv6Prefix: option({
    type: integer(1, 128),
    default: 64,
    description: 'IPv6 clients are counted for --max-per-source per network of this prefix length (a host owns a /64)',
  }),
} satisfies Schema;
