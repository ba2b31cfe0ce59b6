/**
 * One typed model of "where a service listens or connects": an IP literal, every interface, a host name still to
 * resolve, or a Unix socket (path or Linux abstract name). Services parse flags and environment variables with
 * {@link parseEndpoint}, log with {@link formatEndpoint} and {@link formatPeer}, and hand the typed value to
 * `listen()` and `connect()`.
 */
import net from 'node:net';
import { BadEndpointError, UnixPathTooLongError } from '../errors.js';
import { formatIpv6, ipv6Words, isV4Mapped, v4FromWords } from './ipv6-text.js';

/**
 * Where to listen or connect.
 *
 * - `ip`: an IP literal. IPv6 addresses are kept in RFC 5952 canonical text (lowercase, longest zero run
 *   compressed); `scopeId` is the zone of a link-local address, an interface name such as `lo` or an index such as `2`.
 * - `any`: every interface. Listening binds `::` dual stack (IPv4 arrives as `::ffff:a.b.c.d`), falling back to
 *   `0.0.0.0` when the host has no IPv6; connecting goes to `localhost`.
 * - `host`: a DNS name, resolved when listening or connecting, never while parsing.
 * - `unix`: a Unix stream socket. For `abstract: true` (Linux abstract namespace), `path` is the name without the
 *   leading `@`/NUL; use {@link unixSocketPath} for the string Node expects.
 */
export type Endpoint =
  | { kind: 'ip'; family: 4 | 6; address: string; port: number; scopeId?: string }
  | { kind: 'any'; port: number }
  | { kind: 'host'; host: string; port: number }
  | { kind: 'unix'; path: string; abstract: boolean };

/** Options of {@link parseEndpoint}. */
export interface ParseEndpointOptions {
  /** Port used when the input names an address or host without one (`localhost`, `[::1]`, `::1`). */
  defaultPort?: number;
}

/**
 * sun_path in `struct sockaddr_un` is 108 bytes on Linux (unix(7)). A path needs its terminating NUL, so 107 bytes
 * remain; an abstract name starts with a NUL and is not terminated, which also leaves 107. Older libuv versions
 * silently truncated longer paths, so we refuse them instead.
 */
const UNIX_PATH_MAX_BYTES = 107;

/** RFC 1123 §2.1 (amending RFC 1035 §2.3.1): letters, digits and inner hyphens; a label may start with a digit. */
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** Linux interface names are at most 15 bytes (IFNAMSIZ 16 with the NUL); indexes are decimal. */
const SCOPE_ID = /^[a-z0-9_.-]{1,15}$/i;

const ACCEPTED = 'expected host:port, IPv4:port, [IPv6]:port, :port, unix:/path or unix:@abstract-name';

/**
 * Parses an endpoint string.
 *
 * Accepted forms: `127.0.0.1:7`, `[::1]:7`, `[fe80::1%lo]:7`, `:7` (every interface, dual stack), `localhost:7`,
 * `unix:/run/x.sock`, `unix:@name` (Linux abstract namespace). A bare port such as `7000` is read as `:7000`.
 * With `defaultPort`, a host or address without a port (`localhost`, `[::1]`, or an unbracketed IPv6 literal such
 * as `::1`, which is then always read as a whole address) takes that port. IPv6 literals are canonicalised per
 * RFC 5952, so `formatEndpoint(parseEndpoint(s))` may differ from `s` only in IPv6 spelling and port leading zeros.
 *
 * @example parseEndpoint('[::1]:7') // { kind: 'ip', family: 6, address: '::1', port: 7 }
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` when the input is empty, a port is missing, not decimal or
 *   outside 0-65535, an IPv6 literal with a port is not bracketed, or a host name breaks RFC 1123.
 * @throws {UnixPathTooLongError} `NET_ERR_UNIX_PATH_TOO_LONG` when a Unix path or abstract name exceeds 107 bytes.
 */
export function parseEndpoint(input: string, options: ParseEndpointOptions = {}): Endpoint {
  const { defaultPort } = options;
  if (defaultPort !== undefined && !(Number.isInteger(defaultPort) && defaultPort >= 0 && defaultPort <= 65535)) {
    throw new BadEndpointError(input, `default port ${defaultPort} out of range, expected 0-65535`);
  }
  if (input.startsWith('unix:')) return parseUnix(input, input.slice('unix:'.length));
  if (input === '') throw new BadEndpointError(input, `empty endpoint, ${ACCEPTED}`);
  if (/^[0-9]+$/.test(input)) return { kind: 'any', port: parsePort(input, input) };
  if (input.startsWith('[')) return parseBracketed(input, defaultPort);

  const colon = input.indexOf(':');
  const lastColon = input.lastIndexOf(':');
  if (colon !== lastColon) {
    // Two or more colons: an IPv6 literal. Its last group cannot be told from a port, hence the brackets (RFC 3986).
    const { address, scopeId } = splitScope(input);
    const validScope = scopeId === undefined || SCOPE_ID.test(scopeId);
    if (net.isIPv6(address) && validScope && defaultPort !== undefined)
      return ipEndpoint(6, address, defaultPort, scopeId);
    if ((net.isIPv6(address) && validScope) || net.isIPv6(splitScope(input.slice(0, lastColon)).address)) {
      throw new BadEndpointError(input, 'an IPv6 address with a port must be bracketed, as in "[::1]:7"');
    }
    throw new BadEndpointError(input, ACCEPTED);
  }
  if (input.startsWith('/') || input.startsWith('./')) {
    throw new BadEndpointError(input, `a Unix socket is written "unix:${input}"`);
  }
  if (colon === 0) return { kind: 'any', port: parsePort(input, input.slice(1)) };
  const host = colon === -1 ? input : input.slice(0, colon);
  const port = colon === -1 ? requireDefaultPort(input, defaultPort) : parsePort(input, input.slice(colon + 1));
  if (net.isIPv4(host)) return { kind: 'ip', family: 4, address: host, port };
  validateHostName(input, host);
  return { kind: 'host', host, port };
}

/**
 * Formats an endpoint in the syntax {@link parseEndpoint} reads back: `127.0.0.1:7`, `[fe80::1%lo]:7`, `:7`,
 * `localhost:7`, `unix:/run/x.sock`, `unix:@name`.
 *
 * @throws never; the endpoint is formatted as given, without validation.
 */
export function formatEndpoint(e: Endpoint): string {
  switch (e.kind) {
    case 'ip':
      return e.family === 6
        ? `[${e.address}${e.scopeId === undefined ? '' : `%${e.scopeId}`}]:${e.port}`
        : `${e.address}:${e.port}`;
    case 'any':
      return `:${e.port}`;
    case 'host':
      return `${e.host}:${e.port}`;
    case 'unix':
      return e.abstract ? `unix:@${e.path}` : `unix:${e.path}`;
  }
}

/**
 * Returns a validated endpoint: strings are parsed, objects are checked (and IPv6 canonicalised) by a
 * format/parse round trip, so a hand-built object obeys the same rules as a flag value.
 *
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` as {@link parseEndpoint}.
 * @throws {UnixPathTooLongError} `NET_ERR_UNIX_PATH_TOO_LONG` as {@link parseEndpoint}.
 */
export function toEndpoint(input: Endpoint | string): Endpoint {
  return parseEndpoint(typeof input === 'string' ? input : formatEndpoint(input));
}

/**
 * The path string Node's `listen({ path })` and `connect({ path })` expect for a Unix endpoint: the file path, or
 * for an abstract name a leading NUL, which is how Linux (unix(7)) and libuv mark the abstract namespace.
 *
 * @throws never.
 */
export function unixSocketPath(e: Extract<Endpoint, { kind: 'unix' }>): string {
  return e.abstract ? `\0${e.path}` : e.path;
}

/**
 * Normalises an IP address for logs and comparisons: an IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual
 * stack listener reports for IPv4 peers) becomes `1.2.3.4`; other IPv6 addresses get RFC 5952 canonical text
 * (lowercase, leading zeros dropped, the longest run of two or more zero groups compressed), keeping a `%scope`.
 * IPv4 addresses and anything that is not an IP address are returned unchanged.
 *
 * @throws never.
 */
export function normalizeAddress(addr: string): string {
  const { address, scopeId } = splitScope(addr);
  if (!net.isIPv6(address)) return addr;
  const words = ipv6Words(address);
  if (isV4Mapped(words)) return v4FromWords(words);
  return scopeId === undefined ? formatIpv6(words) : `${formatIpv6(words)}%${scopeId}`;
}

/**
 * Formats a socket's peer for logs: `1.2.3.4:5678` (IPv4-mapped peers unmapped) or `[::1]:5678`. Returns `unix`
 * when the socket has no IP peer, which is the case for Unix sockets and for TCP sockets destroyed before their
 * peer address was read; call it when the connection arrives.
 *
 * @throws never.
 */
export function formatPeer(socket: net.Socket): string {
  return formatPeerAddress(socket.remoteAddress, socket.remotePort);
}

/** {@link formatPeer} for a peer known by its address and port (a connection that is not a `net.Socket`). */
export function formatPeerAddress(address: string | undefined, port: number | undefined): string {
  if (address === undefined || port === undefined) return 'unix';
  const normalized = normalizeAddress(address);
  return normalized.includes(':') ? `[${normalized}]:${port}` : `${normalized}:${port}`;
}

function parseUnix(input: string, rest: string): Endpoint {
  const abstract = rest.startsWith('@');
  const path = abstract ? rest.slice(1) : rest;
  if (path === '')
    throw new BadEndpointError(input, abstract ? 'empty abstract socket name' : 'empty Unix socket path');
  // A NUL would end the path early in the kernel (or, in an abstract name, be indistinguishable from padding).
  if (path.includes('\0')) throw new BadEndpointError(input, 'a Unix socket path cannot contain NUL bytes');
  const bytes = Buffer.byteLength(path, 'utf8');
  if (bytes > UNIX_PATH_MAX_BYTES) throw new UnixPathTooLongError(rest, bytes, UNIX_PATH_MAX_BYTES);
  return { kind: 'unix', path, abstract };
}

function parseBracketed(input: string, defaultPort: number | undefined): Endpoint {
  const close = input.indexOf(']');
  if (close === -1) throw new BadEndpointError(input, `missing "]" after the IPv6 address, ${ACCEPTED}`);
  const { address, scopeId } = splitScope(input.slice(1, close));
  if (!net.isIPv6(address)) throw new BadEndpointError(input, `"${address}" is not an IPv6 address`);
  if (scopeId !== undefined && !SCOPE_ID.test(scopeId)) {
    throw new BadEndpointError(input, `invalid IPv6 scope "${scopeId}", expected an interface name or index`);
  }
  const rest = input.slice(close + 1);
  let port: number;
  if (rest === '') port = requireDefaultPort(input, defaultPort);
  else if (rest.startsWith(':')) port = parsePort(input, rest.slice(1));
  else throw new BadEndpointError(input, `unexpected "${rest}" after "]", expected ":port"`);
  return ipEndpoint(6, address, port, scopeId);
}

function ipEndpoint(family: 6, address: string, port: number, scopeId: string | undefined): Endpoint {
  const canonical = formatIpv6(ipv6Words(address));
  // exactOptionalPropertyTypes: leave scopeId out rather than set it to undefined.
  return scopeId === undefined
    ? { kind: 'ip', family, address: canonical, port }
    : { kind: 'ip', family, address: canonical, port, scopeId };
}

function requireDefaultPort(input: string, defaultPort: number | undefined): number {
  if (defaultPort === undefined)
    throw new BadEndpointError(input, 'missing port, expected host:port with port 0-65535');
  return defaultPort;
}

function parsePort(input: string, text: string): number {
  if (text === '') throw new BadEndpointError(input, 'missing port, expected 0-65535');
  if (!/^[0-9]+$/.test(text))
    throw new BadEndpointError(input, `port "${text}" is not a decimal number, expected 0-65535`);
  const port = Number(text);
  if (port > 65535) throw new BadEndpointError(input, `port ${text} out of range, expected 0-65535`);
  return port;
}

function validateHostName(input: string, host: string): void {
  // A trailing dot marks a fully qualified name (RFC 1034 §3.1); it does not count towards the 253 limit.
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name === '') throw new BadEndpointError(input, 'empty host, expected a host name or IP address before ":port"');
  if (name.length > 253)
    throw new BadEndpointError(input, `host name is ${name.length} characters long, at most 253 are accepted`);
  const labels = name.split('.');
  for (const label of labels) {
    if (!HOST_LABEL.test(label)) {
      throw new BadEndpointError(
        input,
        `invalid host name "${host}": each dot-separated label must be 1-63 letters, digits or inner hyphens (RFC 1123)`,
      );
    }
  }
  // RFC 1123 §2.1: a host name is never all-numeric dotted decimal, so "1.2.3.256" is a bad IPv4 address, not a
  // name; like the WHATWG URL host parser we extend that to any name whose last label is a number.
  if (labels.every((label) => /^[0-9]+$/.test(label))) {
    throw new BadEndpointError(input, `"${host}" is not a valid IPv4 address (four decimal numbers 0-255)`);
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) {
    throw new BadEndpointError(input, `invalid host name "${host}": the last label cannot be all digits (RFC 1123)`);
  }
}

function splitScope(text: string): { address: string; scopeId?: string } {
  const percent = text.indexOf('%');
  return percent === -1 ? { address: text } : { address: text.slice(0, percent), scopeId: text.slice(percent + 1) };
}

/**
 * A listening socket the process was given instead of one it creates (inetd-style socket activation):
 *
 * - `fd`: an inherited descriptor by number (`fd:3`), e.g. from `systemd-socket-activate`, a supervisor, or a
 *   shell's `3<>`. It must be a socket of the service's transport, listening for TCP.
 * - `systemd`: the descriptor systemd passed under a name (`systemd:echo-tcp`, the socket unit's
 *   `FileDescriptorName=`, by default the unit's name), looked up in `LISTEN_FDNAMES` (sd_listen_fds_with_names(3)).
 *
 * Resolved to a descriptor only when listening (socket-activation.ts), never while parsing.
 */
export type ActivatedEndpoint = { kind: 'fd'; fd: number } | { kind: 'systemd'; name: string };

/** Where a service may listen: an address it binds itself, or a socket it was given. */
export type ListenEndpoint = Endpoint | ActivatedEndpoint;

const FD_ACCEPTS = 'expected fd:N with N a decimal descriptor number from 0 to 2147483647';
/**
 * systemd's FileDescriptorName= (systemd.socket(5)): at most 255 printable ASCII characters without ':' (the
 * separator of LISTEN_FDNAMES) or spaces.
 */
const FD_NAME = /^[\x21-\x39\x3b-\x7e]{1,255}$/;

/** True for `fd:` and `systemd:` endpoints. */
export function isActivated(e: ListenEndpoint): e is ActivatedEndpoint {
  return e.kind === 'fd' || e.kind === 'systemd';
}

/**
 * {@link parseEndpoint} plus the socket-activation forms `fd:N` and `systemd:NAME`, for settings that say where to
 * listen. These prefixes are read before host names, so a host literally named `fd` or `systemd` cannot be given
 * with a port here (write its address instead).
 *
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` as {@link parseEndpoint}, or for a bad descriptor number or name.
 */
export function parseListenEndpoint(input: string, options: ParseEndpointOptions = {}): ListenEndpoint {
  if (input.startsWith('fd:')) {
    const text = input.slice('fd:'.length);
    if (!/^(0|[1-9]\d{0,9})$/.test(text) || Number(text) > 2 ** 31 - 1) throw new BadEndpointError(input, FD_ACCEPTS);
    return { kind: 'fd', fd: Number(text) };
  }
  if (input.startsWith('systemd:')) {
    const name = input.slice('systemd:'.length);
    if (!FD_NAME.test(name)) {
      throw new BadEndpointError(
        input,
        'expected systemd:NAME with NAME the socket unit\'s FileDescriptorName= (1-255 printable characters, no ":" or space)',
      );
    }
    return { kind: 'systemd', name };
  }
  return parseEndpoint(input, options);
}

/** {@link formatEndpoint} for every listen endpoint: `fd:3`, `systemd:echo-tcp`, or the address forms. */
export function formatListenEndpoint(e: ListenEndpoint): string {
  if (e.kind === 'fd') return `fd:${e.fd}`;
  if (e.kind === 'systemd') return `systemd:${e.name}`;
  return formatEndpoint(e);
}

/** {@link toEndpoint} for every listen endpoint: strings are parsed, objects checked by a round trip. */
export function toListenEndpoint(input: ListenEndpoint | string): ListenEndpoint {
  return parseListenEndpoint(typeof input === 'string' ? input : formatListenEndpoint(input));
}
