/**
 * Listening on an {@link Endpoint}: one call for IPv4, IPv6, every interface, a host name or a Unix socket, with
 * bind errors turned into coded errors that say how to fix them, and stale Unix socket files cleaned up safely.
 */
import dns from 'node:dns';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { AbortedError, AccessDeniedError, AddressInUseError, BadEndpointError, SocketClosedError } from '../errors.js';
import { listenReusePort } from '../sys/reuse-port.js';
import { activatedSocket } from '../sys/socket-activation.js';
import {
  type Endpoint,
  formatEndpoint,
  formatListenEndpoint,
  isActivated,
  type ListenEndpoint,
  toEndpoint,
  toListenEndpoint,
  unixSocketPath,
} from './endpoint.js';

/** Options of {@link listen}. */
export interface ListenOptions {
  /** Length of the accept queue (listen(2) backlog); Node's default is 511, the kernel caps it at somaxconn. */
  backlog?: number;
  /**
   * Bind with SO_REUSEPORT through `listenReusePort` (reuse-port.ts): Node's own option where it works, a descriptor
   * made through libc where Node ignores it (Node 20), and the option read back either way, so a silent no-op is an
   * error (`NET_ERR_SOCKOPT_UNSUPPORTED`), never a listener that quietly does not share its port. IP endpoints only.
   */
  reusePort?: boolean;
  /** Listen with this server (handlers already attached) instead of a new one. */
  server?: net.Server;
  /** For IPv6 endpoints: refuse IPv4-mapped connections (IPV6_V6ONLY). Default false, i.e. dual stack. */
  ipv6Only?: boolean;
  /** Aborting before the server listens rejects with AbortedError; aborting later closes the server. */
  signal?: AbortSignal;
}

/**
 * Listens on `endpoint` and resolves with the listening server.
 *
 * A new server is created with `allowHalfOpen: true` (a client's FIN must not end our side before we have echoed
 * everything) and `noDelay: true` (small replies must not wait for Nagle). A `host` endpoint is resolved first and
 * the first address (resolver order) is bound. An `any` endpoint binds `::` dual stack, or `0.0.0.0` on a host
 * without IPv6. For a Unix path, a socket file left by a process that died without closing is removed, but only
 * after a connect to it is refused: a socket somebody still answers on is never removed. An `fd:N` or
 * `systemd:NAME` endpoint listens on the socket the process was given (socket-activation.ts): bound already, so
 * `reusePort` and `ipv6Only` do not apply to it; `backlog` does (listen(2) again only resizes the queue).
 *
 * @example const server = await listen('127.0.0.1:0'); console.log(formatEndpoint(boundEndpoint(server)));
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` for an invalid endpoint, a host name that does not resolve, or
 *   an address not assigned to this host (EADDRNOTAVAIL).
 * @throws {UnixPathTooLongError} `NET_ERR_UNIX_PATH_TOO_LONG` for a Unix path over 107 bytes.
 * @throws {AddressInUseError} `NET_ERR_ADDR_IN_USE` when another socket holds the address (EADDRINUSE), or a
 *   non-socket file sits at a Unix path.
 * @throws {AccessDeniedError} `NET_ERR_ACCESS` on EACCES: a port below 1024 without privilege, or a Unix path in a
 *   directory this user cannot write.
 * @throws {AbortedError} `NET_ERR_ABORTED` when `signal` aborts before the server listens.
 * @throws {SocketActivationError} `NET_ERR_SOCKET_ACTIVATION` for an `fd:`/`systemd:` endpoint that was not passed,
 *   is not open, or is not a listening stream socket.
 */
export async function listen(endpoint: ListenEndpoint | string, options: ListenOptions = {}): Promise<net.Server> {
  const wanted = toListenEndpoint(endpoint);
  if (isActivated(wanted)) {
    const label = formatListenEndpoint(wanted);
    throwIfAborted(options.signal, label);
    const { fd } = activatedSocket(wanted, 'tcp');
    const server = options.server ?? net.createServer({ allowHalfOpen: true, noDelay: true });
    await listenOnce(server, { fd, ...(options.backlog !== undefined ? { backlog: options.backlog } : {}) });
    return closeOnAbort(server, options.signal, label);
  }
  const requested = wanted;
  const label = formatEndpoint(requested);
  const { signal } = options;
  throwIfAborted(signal, label);
  const server = options.server ?? net.createServer({ allowHalfOpen: true, noDelay: true });

  const bindTo = requested.kind === 'host' ? await resolveForListen(requested, signal) : requested;
  const where = bindTo === requested ? label : `${label} (${formatEndpoint(bindTo)})`;
  const listenOptions = toListenOptions(bindTo, options);
  try {
    if (bindTo.kind === 'unix' && !bindTo.abstract) await listenUnixPath(server, bindTo.path, listenOptions, where);
    else if (options.reusePort === true && (bindTo.kind === 'ip' || bindTo.kind === 'any'))
      await listenSharedPort(server, bindTo, options);
    else await listenOnce(server, listenOptions);
  } catch (err) {
    throw toBindError(err, bindTo, where);
  }
  return closeOnAbort(server, signal, label);
}

/** Node's listen({ signal }) contract for our listen: an abort before listening throws, a later one closes. */
function closeOnAbort(server: net.Server, signal: AbortSignal | undefined, label: string): net.Server {
  if (signal !== undefined) {
    if (signal.aborted) {
      // Aborted while the last step ran: give the address back before reporting.
      server.close();
      throw new AbortedError(`listen on ${label}`, { cause: signal.reason });
    }
    // Same contract as Node's own listen({ signal }): a later abort closes the server.
    const onAbort = () => server.close();
    signal.addEventListener('abort', onAbort, { once: true });
    server.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return server;
}

/**
 * The endpoint a listening server is actually bound to: the real port after listening on port 0, the resolved
 * address after listening on a host name, `[::]:port` after listening on every interface.
 *
 * @throws {SocketClosedError} `NET_ERR_SOCKET_CLOSED` when the server is not listening (never was, or closed).
 */
export function boundEndpoint(server: net.Server): Endpoint {
  const address = server.address();
  if (address === null) throw new SocketClosedError('boundEndpoint() (the server is not listening)');
  if (typeof address === 'string') {
    // Linux reports abstract names with their leading NUL, the same way Node takes them.
    return address.startsWith('\0')
      ? { kind: 'unix', path: address.slice(1), abstract: true }
      : { kind: 'unix', path: address, abstract: false };
  }
  // Node appends "%ifname" to link-local IPv6 addresses it reports.
  const percent = address.address.indexOf('%');
  const ip = percent === -1 ? address.address : address.address.slice(0, percent);
  const family = address.family === 'IPv6' || net.isIPv6(ip) ? 6 : 4;
  const text = family === 6 ? `[${address.address}]:${address.port}` : `${ip}:${address.port}`;
  return toEndpoint(text);
}

async function resolveForListen(host: Extract<Endpoint, { kind: 'host' }>, signal?: AbortSignal): Promise<Endpoint> {
  const label = formatEndpoint(host);
  let addresses: dns.LookupAddress[];
  try {
    // verbatim: keep the resolver's order (RFC 6724 on glibc) instead of Node 20's IPv4-first reordering.
    addresses = await raceAbort(dns.promises.lookup(host.host, { all: true, verbatim: true }), signal, label);
  } catch (err) {
    if (err instanceof AbortedError) throw err;
    throw new BadEndpointError(label, `host "${host.host}" does not resolve (${errnoOf(err) ?? String(err)})`, {
      cause: err,
    });
  }
  const first = addresses[0];
  if (first === undefined) throw new BadEndpointError(label, `host "${host.host}" has no address`);
  return toEndpoint(first.family === 6 ? `[${first.address}]:${host.port}` : `${first.address}:${host.port}`);
}

// `fd`: Node's listen({ fd }) form (net.md "server.listen(handle)"), which @types/node declares separately.
type NodeListenOptions = net.ListenOptions & { fd?: number };

function toListenOptions(e: Endpoint, options: ListenOptions): NodeListenOptions {
  const out: NodeListenOptions = {};
  switch (e.kind) {
    case 'unix':
      out.path = unixSocketPath(e);
      break;
    case 'any':
      // No host: Node binds "::" with IPV6_V6ONLY off (dual stack) and falls back to 0.0.0.0 without IPv6.
      // Asking for ipv6Only means the caller wants "::" exactly.
      out.port = e.port;
      if (options.ipv6Only === true) out.host = '::';
      break;
    case 'ip':
      out.port = e.port;
      out.host = e.scopeId === undefined ? e.address : `${e.address}%${e.scopeId}`;
      break;
    case 'host':
      throw new Error('unreachable: host endpoints are resolved before listening');
  }
  if (options.backlog !== undefined) out.backlog = options.backlog;
  // libuv refuses IPV6_V6ONLY on an IPv4 socket (EINVAL), so the flag only goes to sockets that can be IPv6.
  const mayBeIpv6 = e.kind === 'any' || (e.kind === 'ip' && e.family === 6);
  if (options.ipv6Only !== undefined && mayBeIpv6) out.ipv6Only = options.ipv6Only;
  // SO_REUSEPORT never goes to Node from here: Node 20 accepts the option and ignores it (see listenSharedPort).
  // SO_REUSEADDR needs no option: libuv sets it on every TCP listener, so TIME_WAIT leftovers never block a restart.
  return out;
}

/**
 * The one SO_REUSEPORT path for a TCP listener: `listenReusePort`, which reads the option back after binding. An
 * `any` endpoint binds `::` (dual stack unless `ipv6Only`), or `0.0.0.0` on a host without IPv6, as Node's own
 * listen without a host does.
 */
async function listenSharedPort(
  server: net.Server,
  e: Exclude<Endpoint, { kind: 'unix' | 'host' }>,
  options: ListenOptions,
): Promise<void> {
  const shared = {
    ...(options.backlog !== undefined ? { backlog: options.backlog } : {}),
    ...(options.ipv6Only !== undefined && (e.kind === 'any' || e.family === 6) ? { ipv6Only: options.ipv6Only } : {}),
  };
  if (e.kind === 'ip') {
    const host = e.scopeId === undefined ? e.address : `${e.address}%${e.scopeId}`;
    return await listenReusePort(server, { host, port: e.port, ...shared });
  }
  try {
    await listenReusePort(server, { host: '::', port: e.port, ...shared });
  } catch (err) {
    if (errnoOf(err) !== 'EAFNOSUPPORT' || options.ipv6Only === true) throw err;
    await listenReusePort(server, {
      host: '0.0.0.0',
      port: e.port,
      ...(options.backlog !== undefined ? { backlog: options.backlog } : {}),
    });
  }
}

function listenOnce(server: net.Server, options: NodeListenOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(options);
  });
}

/**
 * bind(2) on an existing path fails with EADDRINUSE whether or not anybody listens: a process killed without
 * close() leaves its socket file behind. Only a refused connect (ECONNREFUSED) proves nobody is there.
 */
async function listenUnixPath(server: net.Server, file: string, options: NodeListenOptions, where: string) {
  try {
    return await listenOnce(server, options);
  } catch (err) {
    if (errnoOf(err) !== 'EADDRINUSE') throw err;
  }
  const stat = await fs.lstat(file).catch(() => undefined);
  if (stat !== undefined) {
    if (!stat.isSocket()) throw new AddressInUseError(`${where} (a file that is not a socket is in the way)`);
    if (await answers(file)) throw new AddressInUseError(where);
    await fs.unlink(file).catch((err: unknown) => {
      if (errnoOf(err) !== 'ENOENT') throw err; // somebody else cleaned up first: fine
    });
  }
  return await listenOnce(server, options);
}

/** True unless a connect is refused; any other outcome (EAGAIN on a full backlog, EACCES) counts as alive. */
function answers(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({ path: file });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', (err) => {
      probe.destroy();
      resolve(errnoOf(err) !== 'ECONNREFUSED');
    });
  });
}

/**
 * Turns a failed bind(2) or listen(2) into the coded error {@link listen} throws, with a hint saying how to fix it;
 * any other error is returned as it is. Shared by every socket kind that binds an address (TCP here, UDP in
 * `bindUdp`) so that they all report the same failure the same way.
 *
 * @param e the endpoint actually bound (after name resolution): it picks the EACCES hint (privileged port, Unix path).
 * @param where how the message names the endpoint, e.g. `127.0.0.1:7` or `127.0.0.1:7/udp`.
 * @returns AddressInUseError for EADDRINUSE, AccessDeniedError for EACCES, BadEndpointError for EADDRNOTAVAIL, each
 *   with `err` as its cause; `err` itself otherwise.
 */
export function toBindError(err: unknown, e: Endpoint, where: string): unknown {
  const options = { cause: err };
  switch (errnoOf(err)) {
    case 'EADDRINUSE':
      return new AddressInUseError(where, options);
    case 'EACCES':
      return new AccessDeniedError(where, accessHint(e), options);
    case 'EADDRNOTAVAIL':
      return new BadEndpointError(where, 'the address is not assigned to any interface of this host', options);
    default:
      return err;
  }
}

function accessHint(e: Endpoint): string {
  if (e.kind === 'unix') {
    return e.abstract
      ? 'a security policy (SELinux, AppArmor) forbids this abstract socket'
      : `make ${path.dirname(e.path)} writable by this user or choose a socket path in a writable directory`;
  }
  // Linux (ip(7)): binding below net.ipv4.ip_unprivileged_port_start (default 1024, IPv6 included) needs the
  // capability CAP_NET_BIND_SERVICE.
  if (e.kind !== 'host' && e.port > 0 && e.port < 1024) {
    return (
      'ports below 1024 are privileged: run with CAP_NET_BIND_SERVICE (e.g. AmbientCapabilities=CAP_NET_BIND_SERVICE ' +
      'in a systemd unit, or setcap cap_net_bind_service=+ep on the node binary), lower ' +
      '`sysctl net.ipv4.ip_unprivileged_port_start`, or use a port >= 1024'
    );
  }
  return 'check `sysctl net.ipv4.ip_unprivileged_port_start` and any security policy (SELinux, AppArmor, seccomp)';
}

function throwIfAborted(signal: AbortSignal | undefined, label: string): void {
  if (signal?.aborted) throw new AbortedError(`listen on ${label}`, { cause: signal.reason });
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined, label: string): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new AbortedError(`listen on ${label}`, { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}
