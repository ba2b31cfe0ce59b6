/**
 * Binding a UDP socket to an {@link Endpoint}: IPv4, IPv6, every interface (dual stack), a host name; with
 * SO_REUSEPORT in `--workers` mode; with the socket buffer sizes asked for, read back as the kernel set them.
 */
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import {
  AccessDeniedError,
  AddressInUseError,
  BadEndpointError,
  bindUdpReusePort,
  type Endpoint,
  formatEndpoint,
} from '@net/core';

/** Options of {@link bindUdp}. */
export interface BindUdpOptions {
  /** Bind through core's SO_REUSEPORT path (a worker of `--workers` where the platform has it). */
  reusePort: boolean;
  /** SO_RCVBUF to ask for, in bytes; the kernel default when undefined. */
  recvBufferSize?: number | undefined;
  /** SO_SNDBUF to ask for, in bytes; the kernel default when undefined. */
  sendBufferSize?: number | undefined;
}

/** A bound socket and what the kernel made of the request. */
export interface BoundUdpSocket {
  socket: dgram.Socket;
  /** The bound address, formatted (`127.0.0.1:15000`, `[::]:15000`). */
  endpoint: string;
  port: number;
  /** SO_RCVBUF and SO_SNDBUF as read back: Linux doubles the value set for its bookkeeping (socket(7)). */
  recvBufferSize: number;
  sendBufferSize: number;
}

/**
 * Binds a UDP socket on `endpoint`. An `any` endpoint binds `::` with IPV6_V6ONLY off, so IPv4 clients arrive as
 * `::ffff:a.b.c.d` on the same socket, and falls back to `0.0.0.0` on a host without IPv6. A `host` endpoint binds
 * the resolver's first address, as core's TCP `listen` does.
 *
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` for a Unix endpoint (UDP needs an IP address), a host that does
 *   not resolve, or an address not assigned here.
 * @throws {AddressInUseError} `NET_ERR_ADDR_IN_USE` when another socket holds the port.
 * @throws {AccessDeniedError} `NET_ERR_ACCESS` for a port below 1024 without CAP_NET_BIND_SERVICE.
 */
export async function bindUdp(endpoint: Endpoint, options: BindUdpOptions): Promise<BoundUdpSocket> {
  const label = formatEndpoint(endpoint);
  let address: string;
  let type: 'udp4' | 'udp6';
  switch (endpoint.kind) {
    case 'unix':
      throw new BadEndpointError(label, 'udp-echo serves UDP over IP: give host:port, [IPv6]:port or :port');
    case 'any':
      try {
        return await bindOnce('::', endpoint.port, 'udp6', label, options);
      } catch (err) {
        const code = (err as { cause?: NodeJS.ErrnoException }).cause?.code ?? (err as NodeJS.ErrnoException).code;
        // No IPv6 on this host (disabled at boot or in the namespace): every interface means every IPv4 one.
        if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw err;
        return await bindOnce('0.0.0.0', endpoint.port, 'udp4', label, options);
      }
    case 'ip':
      address = endpoint.scopeId === undefined ? endpoint.address : `${endpoint.address}%${endpoint.scopeId}`;
      type = endpoint.family === 6 ? 'udp6' : 'udp4';
      break;
    case 'host': {
      let first: { address: string; family: number } | undefined;
      try {
        [first] = await dns.lookup(endpoint.host, { all: true, verbatim: true });
      } catch (err) {
        throw new BadEndpointError(
          label,
          `host "${endpoint.host}" does not resolve (${(err as NodeJS.ErrnoException).code})`,
          {
            cause: err,
          },
        );
      }
      if (first === undefined) throw new BadEndpointError(label, `host "${endpoint.host}" has no address`);
      address = first.address;
      type = first.family === 6 ? 'udp6' : 'udp4';
      break;
    }
  }
  return bindOnce(address, endpoint.port, type, label, options);
}

async function bindOnce(
  address: string,
  port: number,
  type: 'udp4' | 'udp6',
  label: string,
  options: BindUdpOptions,
): Promise<BoundUdpSocket> {
  // reuseAddr stays off: for UDP, SO_REUSEADDR alone hands every datagram to the last binder (research §2).
  const socket = dgram.createSocket({ type, ipv6Only: false, reuseAddr: false });
  try {
    if (options.reusePort) {
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
  } catch (err) {
    socket.close();
    throw toBindError(err, label, port);
  }
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

function toBindError(err: unknown, label: string, port: number): unknown {
  const cause = { cause: err };
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new AddressInUseError(`${label}/udp`, cause);
    case 'EACCES':
      return new AccessDeniedError(
        `${label}/udp`,
        port > 0 && port < 1024
          ? 'ports below 1024 are privileged: run with CAP_NET_BIND_SERVICE, lower `sysctl net.ipv4.ip_unprivileged_port_start`, or use a port >= 1024'
          : 'check `sysctl net.ipv4.ip_unprivileged_port_start` and any security policy (SELinux, AppArmor, seccomp)',
        cause,
      );
    case 'EADDRNOTAVAIL':
      return new BadEndpointError(label, 'the address is not assigned to any interface of this host', cause);
    default:
      return err;
  }
}
