/**
 * SO_REUSEPORT listeners (socket(7)): several processes bind the same address and port and the kernel spreads new
 * connections (TCP) or datagrams (UDP) across them by a hash of the 4-tuple.
 *
 * Node 20 silently ignores `listen({ reusePort: true })` and dgram's `reusePort` (strace shows only SO_REUSEADDR; the
 * second process gets EADDRINUSE). Node 22.12+/23.1+ honour them. On Node 20 we create the socket ourselves through
 * libc (socket, SO_REUSEADDR + SO_REUSEPORT, bind, listen) and hand the descriptor to Node with `listen({ fd })` /
 * dgram `bind({ fd })`. Whatever the path, SO_REUSEPORT is read back after binding: a silent no-op never passes.
 */
import type dgram from 'node:dgram';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { endianness } from 'node:os';
import { SocketOptionError, SocketOptionUnsupportedError } from '../errors.js';
import {
  AF_INET,
  AF_INET6,
  errnoError,
  getIntOption,
  getSocketFd,
  IPPROTO_IPV6,
  IPV6_V6ONLY,
  loadLibc,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOL_SOCKET,
  setIntOption,
} from './sockopt.js';

/** How SO_REUSEPORT is obtained here: Node's own option, a descriptor made through libc, or not at all. */
export type ReusePortSupport = 'native' | 'fd' | 'none';

export interface ReusePortListenOptions {
  /** IP address or host name to bind (a name is resolved once, first address). */
  host: string;
  /** 0..65535; 0 picks a free port (read it with `server.address()`, then give it to the other listeners). */
  port: number;
  /** listen(2) backlog; Node's default 511. */
  backlog?: number;
  /** For an IPv6 address: refuse IPv4-mapped connections (IPV6_V6ONLY); by default the system's (dual stack). */
  ipv6Only?: boolean;
  /** Force a path (tests, diagnosis); by default 'native' where Node has the option, else 'fd'. */
  via?: 'native' | 'fd';
}

export interface ReusePortBindOptions {
  address: string;
  port: number;
  type: 'udp4' | 'udp6';
}

const OPTION = 'SO_REUSEPORT';

// Set to false when a native listen did not read back SO_REUSEPORT=1: later listens go straight to the fd path.
let nativeHonoured: boolean | undefined;

/** Node added `reusePort` to net and dgram in 23.1.0 and backported it to 22.12.0. */
function nodeHasReusePortOption(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

/** Why SO_REUSEPORT cannot be used here, or undefined when it can. */
function unsupportedReason(): SocketOptionUnsupportedError | undefined {
  try {
    // The read-back needs libc even where Node sets the option itself.
    loadLibc(OPTION);
    return undefined;
  } catch (error) {
    return error as SocketOptionUnsupportedError;
  }
}

/**
 * Which path `listenReusePort` takes for TCP on this platform and Node. 'native' is Node's option (22.12+), 'fd' a
 * descriptor created through libc (Node 20), 'none' off Linux or without koffi. UDP always takes the 'fd' path
 * unless this is 'none' (see `bindUdpReusePort`).
 */
export function reusePortSupport(): ReusePortSupport {
  if (unsupportedReason()) return 'none';
  return nodeHasReusePortOption() && nativeHonoured !== false ? 'native' : 'fd';
}

/**
 * Listens `server` on host:port with SO_REUSEPORT (and `exclusive`, so a cluster worker binds its own socket instead of
 * sharing the primary's). Resolves on 'listening'; rejects with Node's errno error (EADDRINUSE...) if the bind fails,
 * SocketOptionUnsupportedError where SO_REUSEPORT is unavailable or did not read back as 1.
 */
export async function listenReusePort(server: net.Server, opts: ReusePortListenOptions): Promise<void> {
  validatePort(opts.port);
  if (server.listening) throw new SocketOptionError(OPTION, 'the server is already listening');
  const backlog = opts.backlog ?? 511;
  const reason = unsupportedReason();
  if (reason) throw reason;

  const native = opts.via ? opts.via === 'native' : nodeHasReusePortOption() && nativeHonoured !== false;
  if (native) {
    // `reusePort` is not in @types/node 20's ListenOptions.
    const options: net.ListenOptions & { reusePort: boolean } = {
      host: opts.host,
      port: opts.port,
      backlog,
      exclusive: true,
      reusePort: true,
      ...(opts.ipv6Only !== undefined ? { ipv6Only: opts.ipv6Only } : {}),
    };
    await waitForListening(server, () => server.listen(options));
    if (getIntOption(getSocketFd(server, OPTION), SOL_SOCKET, SO_REUSEPORT, OPTION) === 1) {
      nativeHonoured = true;
      return;
    }
    // A Node that accepted the option without setting it (Node 20): remember, and redo the listen through our own
    // descriptor, unless the caller insisted on the native path.
    nativeHonoured = false;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (opts.via === 'native') {
      throw new SocketOptionUnsupportedError(OPTION, `Node ${process.version} ignores listen({ reusePort: true })`);
    }
  }

  const { address, family } = await resolveHost(opts.host);
  const fd = createBoundSocket(SOCK_STREAM, family, address, opts.port, opts.ipv6Only);
  const lib = loadLibc(OPTION);
  if (lib.listen(fd, backlog) !== 0) {
    const error = errnoError(lib, 'listen');
    lib.close(fd);
    throw error;
  }
  try {
    await waitForListening(server, () => server.listen({ fd, backlog, exclusive: true }));
  } catch (error) {
    // If Node never took the descriptor (it throws synchronously for a wrong fd type), it is still ours to close.
    if (!(server as unknown as { _handle?: unknown })._handle) lib.close(fd);
    throw error;
  }
  await verifyReusePort(fd, () => new Promise<void>((resolve) => server.close(() => resolve())));
}

/**
 * Binds a UDP socket to address:port with SO_REUSEPORT. Always through a libc descriptor and dgram's `bind({ fd })`
 * (supported since Node 0.x, so on Node 20 too): Node's own `reusePort` is a `createSocket` option, fixed before this
 * function sees the socket, while the descriptor path works for any socket on every Node version. The socket's type
 * must match `type`. Resolves on 'listening'.
 */
export async function bindUdpReusePort(socket: dgram.Socket, opts: ReusePortBindOptions): Promise<void> {
  validatePort(opts.port);
  const reason = unsupportedReason();
  if (reason) throw reason;
  const family = net.isIP(opts.address);
  if (family !== (opts.type === 'udp4' ? 4 : 6)) {
    throw new SocketOptionError(
      OPTION,
      `address "${opts.address}" is not an IPv${opts.type === 'udp4' ? 4 : 6} address`,
    );
  }
  const fd = createBoundSocket(SOCK_DGRAM, family, opts.address, opts.port);
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => reject(error);
      socket.once('error', onError);
      socket.bind({ fd, exclusive: true }, () => {
        socket.off('error', onError);
        resolve();
      });
    });
  } catch (error) {
    // dgram throws synchronously (ERR_INVALID_FD_TYPE, open) before it owns the descriptor.
    loadLibc(OPTION).close(fd);
    throw error;
  }
  await verifyReusePort(fd, () => new Promise<void>((resolve) => socket.close(() => resolve())));
}

function validatePort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SocketOptionError(OPTION, `invalid port ${String(port)}: expected an integer in 0..65535`);
  }
}

async function verifyReusePort(fd: number, close: () => Promise<void>): Promise<void> {
  const value = getIntOption(fd, SOL_SOCKET, SO_REUSEPORT, OPTION);
  if (value !== 1) {
    await close();
    throw new SocketOptionUnsupportedError(OPTION, `the kernel reports SO_REUSEPORT=${value} after it was set to 1`);
  }
}

function waitForListening(server: net.Server, listen: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    try {
      listen();
    } catch (error) {
      server.off('error', onError);
      server.off('listening', onListening);
      reject(error);
    }
  });
}

async function resolveHost(host: string): Promise<{ address: string; family: 4 | 6 }> {
  const literal = net.isIP(host.split('%')[0] ?? '');
  if (literal === 4 || literal === 6) return { address: host, family: literal };
  const { address, family } = await lookup(host);
  return { address, family: family === 6 ? 6 : 4 };
}

/** socket(2) + SO_REUSEADDR (TCP) + SO_REUSEPORT + bind(2); closes the descriptor on any failure. */
function createBoundSocket(kind: number, family: 4 | 6, address: string, port: number, ipv6Only?: boolean): number {
  const lib = loadLibc(OPTION);
  const sockaddr = buildSockaddr(family, address, port);
  const fd = lib.socket(family === 4 ? AF_INET : AF_INET6, kind | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError(lib, 'socket');
  try {
    // SO_REUSEADDR as Node sets it on every TCP listener (restart through TIME_WAIT). For UDP it is left off: alone it
    // hands every datagram to the last binder, and SO_REUSEPORT already allows the shared bind.
    if (kind === SOCK_STREAM) setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, 'SO_REUSEADDR');
    setIntOption(fd, SOL_SOCKET, SO_REUSEPORT, 1, OPTION);
    // Before bind(2), as ipv6(7) requires; unset, the socket follows net.ipv6.bindv6only (0: dual stack).
    if (family === 6 && ipv6Only !== undefined) {
      setIntOption(fd, IPPROTO_IPV6, IPV6_V6ONLY, ipv6Only ? 1 : 0, 'IPV6_V6ONLY');
    }
    if (lib.bind(fd, sockaddr, sockaddr.length) !== 0) {
      const error = errnoError(lib, 'bind');
      error.message = `bind ${error.code} ${address}:${port}`;
      Object.assign(error, { address, port });
      throw error;
    }
    return fd;
  } catch (error) {
    lib.close(fd);
    throw error;
  }
}

/**
 * struct sockaddr_in (16 bytes) or sockaddr_in6 (28 bytes), ip(7)/ipv6(7): family in host byte order, port and
 * flowinfo in network order, scope id in host order. inet_pton parses the address exactly as the kernel's tools do.
 */
function buildSockaddr(family: 4 | 6, address: string, port: number): Buffer {
  const lib = loadLibc(OPTION);
  const little = endianness() === 'LE';
  const [ip = '', zone] = address.split('%');
  const buf = Buffer.alloc(family === 4 ? 16 : 28);
  if (little) buf.writeUInt16LE(family === 4 ? AF_INET : AF_INET6, 0);
  else buf.writeUInt16BE(family === 4 ? AF_INET : AF_INET6, 0);
  buf.writeUInt16BE(port, 2);
  const addressBytes = buf.subarray(family === 4 ? 4 : 8, family === 4 ? 8 : 24);
  if (lib.inet_pton(family === 4 ? AF_INET : AF_INET6, ip, addressBytes) !== 1) {
    throw new SocketOptionError(OPTION, `cannot bind to "${address}": not an IPv${family} address`);
  }
  if (family === 6 && zone !== undefined) {
    const scope = /^\d+$/.test(zone) ? Number(zone) : lib.if_nametoindex(zone);
    if (!scope) throw new SocketOptionError(OPTION, `cannot bind to "${address}": no interface "${zone}"`);
    if (little) buf.writeUInt32LE(scope, 24);
    else buf.writeUInt32BE(scope, 24);
  }
  return buf;
}
