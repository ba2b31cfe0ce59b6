/**
 * The `serve` settings of udp-echo (the runtime adds --host, --port, --listen, --admin-port, logging and drain).
 * Every limit has a default that is safe on the open Internet; see README "Limits".
 */
import { DEFAULT_GUARDED_PORT_RANGES, decimal, integer, oneOf, option, portSetType, workersOption } from '@net/core';

/** Largest UDP payload over IPv4: 65,535 (IPv4 total length) - 20 (IPv4 header) - 8 (UDP header), RFC 768/791. */
export const MAX_PAYLOAD_IPV4 = 65_507;
/** Largest UDP payload over IPv6 without jumbograms: 65,535 (payload length, RFC 8200 §3) - 8 (UDP header). */
export const MAX_PAYLOAD_IPV6 = 65_527;

/** Socket buffer sizes: the kernel doubles what it is given and caps it at net.core.{r,w}mem_max (socket(7)). */
const bufferSize = integer(1024, 2 ** 31 - 1);

/** The service's own settings. */
export const options = {
  guardPorts: option({
    type: portSetType,
    default: DEFAULT_GUARDED_PORT_RANGES,
    description:
      'Source ports never answered (reflection guard, CVE-1999-0103); the listening ports are always added. Empty to keep only those',
  }),
  rateLimitPackets: option({
    type: decimal(0, 10_000_000, 'datagrams per second'),
    default: 100,
    description: 'Datagrams per second answered per source address (token bucket rate); 0 switches it off',
  }),
  rateLimitPacketBurst: option({
    type: integer(1, 10_000_000),
    default: 200,
    description: 'Datagrams a quiet source may send at once (token bucket capacity)',
  }),
  rateLimitBytes: option({
    type: integer(0, 2 ** 40),
    default: 1_048_576,
    description: 'Payload bytes per second answered per source address (token bucket rate); 0 switches it off',
  }),
  rateLimitByteBurst: option({
    type: integer(MAX_PAYLOAD_IPV6, 2 ** 40),
    default: 2_097_152,
    description: 'Payload bytes a quiet source may send at once; at least 65527 so that every datagram size can pass',
  }),
  rateLimitSources: option({
    type: integer(1, 10_000_000),
    default: 65_536,
    description:
      'Source addresses the rate limiter tracks at most (bounded memory, 101-125 bytes each); when full, a new source takes the slot of one idle for the refill time, else it is dropped',
  }),
  maxQueuedBytes: option({
    type: integer(0, 2 ** 31 - 1),
    default: 4 * 1_048_576,
    description:
      'Reply bytes waiting for the kernel at most (dgram queues sends in user space when the socket buffer is full); past it datagrams are dropped',
  }),
  recvBuffer: option({
    type: bufferSize,
    description: 'Socket receive buffer (SO_RCVBUF) in bytes; the effective size is logged. Kernel default when unset',
  }),
  sendBuffer: option({
    type: bufferSize,
    description: 'Socket send buffer (SO_SNDBUF) in bytes; the effective size is logged. Kernel default when unset',
  }),
  io: option({
    type: oneOf(['auto', 'batch', 'dgram'] as const),
    default: 'auto',
    description:
      'How datagrams are read and answered: batch (a worker thread, up to 64 datagrams per recvmmsg/sendmmsg call), dgram (one event per datagram), auto (batch where batches are available). Both log each dropped datagram at debug level',
  }),
  drainQuiet: option({
    type: decimal(0, 3600, 'seconds'),
    default: 2,
    description:
      'On SIGTERM/SIGINT datagrams are still answered; the drain ends once none has arrived for this long (or at --drain-timeout)',
  }),
  ...workersOption(),
};
