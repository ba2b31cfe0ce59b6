/**
 * Binding a UDP socket to an {@link Endpoint}, the datagram counterpart of `listen`: IPv4, IPv6, every interface
 * (dual stack), a host name; SO_REUSEPORT on request (a `--workers` worker); the socket buffer sizes asked for, read
 * back as the kernel set them; bind errors turned into the same coded errors, with the same hints, as TCP's.
 */
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import { BadEndpointError, SocketActivationError } from '../errors.js';
import {
  type ActivatedEndpoint,
  type Endpoint,
  formatEndpoint,
  formatListenEndpoint,
  isActivated,
  type ListenEndpoint,
  toListenEndpoint,
} from '../net/endpoint.js';
import { toBindError } from '../net/listen.js';
import { bindUdpReusePort } from '../sys/reuse-port.js';
import { activatedSocket } from '../sys/socket-activation.js';

/** Options of {@link bindUdp}. */
export interface BindUdpOptions {
  /** Bind through core's SO_REUSEPORT path (`bindUdpReusePort`): a worker of `--workers` where the platform has it. */
  reusePort?: boolean | undefined;
  /** SO_RCVBUF to ask for, in bytes; the kernel default when undefined. */
  recvBufferSize?: number | undefined;
  /** SO_SNDBUF to ask for, in bytes; the kernel default when undefined. */
  sendBufferSize?: number | undefined;
}

/** A bound socket and what the kernel made of the request. */
export interface BoundUdpSocket {
  socket: dgram.Socket;
  /** The bound address, formatted (`127.0.0.1:15000`, `[::]:15000`): the real port after binding port 0. */
  endpoint: string;
  port: number;
  /** SO_RCVBUF as read back: Linux doubles the value set for its bookkeeping (socket(7)). */
  recvBufferSize: number;
  /** SO_SNDBUF as read back, doubled the same way. */
  sendBufferSize: number;
}

/**
 * Binds a UDP socket on `endpoint`. An `any` endpoint binds `::` with IPV6_V6ONLY off, so IPv4 clients arrive as
 * `::ffff:a.b.c.d` on the same socket, and falls back to `0.0.0.0` on a host without IPv6. A `host` endpoint binds
 * the resolver's first address, as TCP's `listen` does. SO_REUSEADDR stays off: for UDP it alone hands every
 * datagram to the last binder, so a second server on the port would silently steal the traffic.
 *
 * @example const { socket, endpoint } = await bindUdp('127.0.0.1:0'); socket.on('message', ...);
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` for a Unix endpoint (UDP needs an IP address), a host that does
 *   not resolve, or an address not assigned to this host (EADDRNOTAVAIL).
 * @throws {AddressInUseError} `NET_ERR_ADDR_IN_USE` when another socket holds the port (EADDRINUSE); the message
 *   names the endpoint with `/udp`.
 * @throws {AccessDeniedError} `NET_ERR_ACCESS` on EACCES: a port below 1024 without CAP_NET_BIND_SERVICE (the hint,
 *   shared with `listen`, says how to fix it).
 * @throws {SocketOptionUnsupportedError} `NET_ERR_SOCKOPT_UNSUPPORTED` with `reusePort` where SO_REUSEPORT is not
 *   available.
 * @throws {SocketActivationError} `NET_ERR_SOCKET_ACTIVATION` for an `fd:`/`systemd:` endpoint that was not passed,
 *   is not open, or is not a datagram socket (a TCP socket given to a UDP service).
 */
export async function bindUdp(
  endpoint: ListenEndpoint | string,
  options: BindUdpOptions = {},
): Promise<BoundUdpSocket> {
  const requested = toListenEndpoint(endpoint);
  if (isActivated(requested)) return adoptActivated(requested, options);
  const label = formatEndpoint(requested);
  switch (requested.kind) {
    case 'unix':
      throw new BadEndpointError(label, 'UDP over IP needs an IP endpoint: give host:port, [IPv6]:port or :port');
    case 'any':
      try {
        return await bindOnce('::', 'udp6', requested, label, options);
      } catch (err) {
        const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code;
        // No IPv6 on this host (disabled at boot or in the namespace): every interface means every IPv4 one.
        if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
        return await bindOnce('0.0.0.0', 'udp4', requested, label, options);
      }
    case 'ip': {
      const address = requested.scopeId === undefined ? requested.address : `${requested.address}%${requested.scopeId}`;
      return bindOnce(address, requested.family === 6 ? 'udp6' : 'udp4', requested, label, options);
    }
    case 'host': {
      let first: { address: string; family: number } | undefined;
      try {
        // verbatim: the resolver's order (RFC 6724 on glibc), as listen() binds it.
        [first] = await dns.lookup(requested.host, { all: true, verbatim: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        throw new BadEndpointError(label, `host "${requested.host}" does not resolve (${code})`, { cause: err });
      }
      if (first === undefined) throw new BadEndpointError(label, `host "${requested.host}" has no address`);
      const family = first.family === 6 ? 6 : 4;
      const resolved: Endpoint = { kind: 'ip', family, address: first.address, port: requested.port };
      return bindOnce(first.address, family === 6 ? 'udp6' : 'udp4', resolved, label, options);
    }
  }
}

/**
 * A datagram socket the process was given (socket activation): dgram's `bind({ fd })` adopts it as it is bound
 * (checked on Node 20 and 24). Its family, read with SO_DOMAIN, picks `udp4` or `udp6`, which decides how dgram
 * reads destination addresses. SO_REUSEPORT does not apply: the socket is bound already.
 */
async function adoptActivated(requested: ActivatedEndpoint, options: BindUdpOptions): Promise<BoundUdpSocket> {
  const label = formatListenEndpoint(requested);
  const { fd, family } = activatedSocket(requested, 'udp');
  if (family === 'unix') {
    throw new SocketActivationError(label, `descriptor ${fd} is a Unix datagram socket; UDP needs an IP one`);
  }
  const socket = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ fd }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    try {
      socket.close();
    } catch {}
    throw new SocketActivationError(label, `dgram cannot adopt descriptor ${fd} (${(err as Error).message})`, {
      cause: err,
    });
  }
  return describeBound(socket, options);
}

async function bindOnce(
  address: string,
  type: 'udp4' | 'udp6',
  bindTo: Extract<Endpoint, { kind: 'any' | 'ip' }>,
  label: string,
  options: BindUdpOptions,
): Promise<BoundUdpSocket> {
  const { port } = bindTo;
  const socket = dgram.createSocket({ type, ipv6Only: false, reuseAddr: false });
  try {
    if (options.reusePort === true) {
      await bindUdpReusePort(socket, { address, port, type });
    } else {
      // exclusive: false lets node:cluster share one socket among workers where SO_REUSEPORT is not available.
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ address, port, exclusive: false }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    }
    // Only a bound socket has buffers to size (dgram throws ERR_SOCKET_BUFFER_SIZE before bind).
    if (options.recvBufferSize !== undefined) socket.setRecvBufferSize(options.recvBufferSize);
    if (options.sendBufferSize !== undefined) socket.setSendBufferSize(options.sendBufferSize);
  } catch (err) {
    // bindUdpReusePort closes the socket itself when SO_REUSEPORT does not read back: close() would then throw.
    try {
      socket.close();
    } catch {}
    throw toBindError(err, bindTo, `${label}/udp`);
  }
  return describeBound(socket, {});
}

/** Sizes the buffers asked for (only a bound socket has them) and reads back what the kernel made of it all. */
function describeBound(socket: dgram.Socket, options: BindUdpOptions): BoundUdpSocket {
  if (options.recvBufferSize !== undefined) socket.setRecvBufferSize(options.recvBufferSize);
  if (options.sendBufferSize !== undefined) socket.setSendBufferSize(options.sendBufferSize);
  const bound = socket.address();
  const text = bound.family === 'IPv6' || bound.address.includes(':') ? `[${bound.address}]` : bound.address;
  return {
    socket,
    endpoint: `${text}:${bound.port}`,
    port: bound.port,
    recvBufferSize: socket.getRecvBufferSize(),
    sendBufferSize: socket.getSendBufferSize(),
  };
}
