/**
 * TCP keepalive with exact idle, interval and count, set with setsockopt and verified with getsockopt (tcp(7)).
 *
 * Why not Node's `socket.setKeepAlive`: on Node < 24.19 (and 26.0-26.3) it takes only the idle delay and libuv forces
 * the interval to 1 s and the count to 10; the 4-argument form is silently ignored there. Where it exists, every later
 * `setKeepAlive(true, x)` resets interval and count to 1/10, and out-of-range values fail silently (libuv returns
 * EINVAL, Node drops it, the kernel's 2-hour idle stays). Calling setsockopt ourselves behaves the same on Node 20,
 * 24 and 26. So never mix this with `socket.setKeepAlive` or `createServer({ keepAlive })` on the same socket.
 *
 * Options set on a listening server's fd are inherited by the sockets it accepts; services may call this once on the
 * server in 'listening' instead of on every socket in 'connection' (both are supported and verified).
 */
import { SocketOptionError } from '../errors.js';
import {
  getIntOption,
  getSocketFd,
  IPPROTO_TCP,
  SO_KEEPALIVE,
  SOL_SOCKET,
  type SocketLike,
  setIntOption,
  TCP_KEEPCNT,
  TCP_KEEPIDLE,
  TCP_KEEPINTVL,
} from './sockopt.js';

/** Keepalive timing in whole seconds (the kernel's unit). */
export interface KeepAliveOptions {
  /** Idle time before the first probe (TCP_KEEPIDLE), 1..32767 s. */
  idle: number;
  /** Time between unanswered probes (TCP_KEEPINTVL), 1..32767 s. */
  interval: number;
  /** Unanswered probes before the connection is reset with ETIMEDOUT (TCP_KEEPCNT), 1..127. */
  count: number;
}

/** The values read back from the kernel after a set. */
export type KeepAliveSettings = KeepAliveOptions;

/** What the kernel holds for a socket now. */
export interface KeepAliveState extends KeepAliveOptions {
  enabled: boolean;
}

// The kernel's limits (net/ipv4/tcp.c: MAX_TCP_KEEPIDLE, MAX_TCP_KEEPINTVL, MAX_TCP_KEEPCNT).
export const KEEPALIVE_LIMITS = {
  idle: { option: 'TCP_KEEPIDLE', min: 1, max: 32767, unit: 'seconds' },
  interval: { option: 'TCP_KEEPINTVL', min: 1, max: 32767, unit: 'seconds' },
  count: { option: 'TCP_KEEPCNT', min: 1, max: 127, unit: 'probes' },
} as const;

/** Throws SocketOptionError unless every value is an integer in the kernel's range. Sets nothing. */
export function validateKeepAlive(opts: KeepAliveOptions): void {
  for (const key of ['idle', 'interval', 'count'] as const) {
    const value: unknown = opts[key];
    const { option, min, max, unit } = KEEPALIVE_LIMITS[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new SocketOptionError(
        option,
        `invalid keepalive ${key} ${String(value)}: expected an integer number of ${unit} in ${min}..${max}`,
      );
    }
  }
}

/**
 * Enables keepalive with exact timing on a connected socket or a listening server, then reads all four values back.
 * Throws SocketOptionError for a value out of range (before anything is set) or a read-back that differs, and
 * SocketOptionUnsupportedError off Linux or without koffi.
 */
export function setKeepAlive(target: SocketLike, opts: KeepAliveOptions): KeepAliveSettings {
  validateKeepAlive(opts);
  const fd = getSocketFd(target, 'SO_KEEPALIVE');
  setIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, 1, 'SO_KEEPALIVE');
  setIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, opts.idle, 'TCP_KEEPIDLE');
  setIntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, opts.interval, 'TCP_KEEPINTVL');
  setIntOption(fd, IPPROTO_TCP, TCP_KEEPCNT, opts.count, 'TCP_KEEPCNT');
  const state = readKeepAlive(fd);
  if (!state.enabled || state.idle !== opts.idle || state.interval !== opts.interval || state.count !== opts.count) {
    throw new SocketOptionError(
      'SO_KEEPALIVE',
      `asked for enabled idle=${opts.idle} interval=${opts.interval} count=${opts.count}, ` +
        `the kernel reports ${state.enabled ? 'enabled' : 'disabled'} idle=${state.idle} interval=${state.interval} count=${state.count}`,
    );
  }
  return { idle: state.idle, interval: state.interval, count: state.count };
}

/** Reads SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT (idle and interval in seconds). */
export function getKeepAlive(target: SocketLike): KeepAliveState {
  return readKeepAlive(getSocketFd(target, 'SO_KEEPALIVE'));
}

function readKeepAlive(fd: number): KeepAliveState {
  return {
    enabled: getIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, 'SO_KEEPALIVE') !== 0,
    idle: getIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, 'TCP_KEEPIDLE'),
    interval: getIntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, 'TCP_KEEPINTVL'),
    count: getIntOption(fd, IPPROTO_TCP, TCP_KEEPCNT, 'TCP_KEEPCNT'),
  };
}
