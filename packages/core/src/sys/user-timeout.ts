/**
 * TCP_USER_TIMEOUT (tcp(7), RFC 5482): how long written data may stay unacknowledged before the kernel resets the
 * connection with ETIMEDOUT. Keepalive alone finds a dead peer only while the connection is idle; this bounds the
 * case where we were writing. When set, it also overrides the keepalive probe count (kernel commit dca43c75e7e5), so
 * a coherent pairing is `userTimeoutMs = (idle + interval * count) * 1000`.
 */
import { SocketOptionError } from '../errors.js';
import { getIntOption, getSocketFd, IPPROTO_TCP, type SocketLike, setIntOption, TCP_USER_TIMEOUT } from './sockopt.js';

/** The kernel's range in milliseconds; 0 turns the option off (the kernel's default retransmission limits apply). */
export const USER_TIMEOUT_MAX_MS = 2 ** 31 - 1;

/**
 * Sets TCP_USER_TIMEOUT on a connected socket or a listening server (accepted sockets inherit it) and reads it back.
 * Returns the value read back. Throws SocketOptionError for a value out of range (nothing set) or a differing read.
 */
export function setUserTimeout(target: SocketLike, ms: number): number {
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > USER_TIMEOUT_MAX_MS) {
    throw new SocketOptionError(
      'TCP_USER_TIMEOUT',
      `invalid user timeout ${String(ms)}: expected an integer number of milliseconds in 0..${USER_TIMEOUT_MAX_MS} (0 = off)`,
    );
  }
  const fd = getSocketFd(target, 'TCP_USER_TIMEOUT');
  setIntOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, ms, 'TCP_USER_TIMEOUT');
  const actual = getIntOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, 'TCP_USER_TIMEOUT');
  if (actual !== ms) {
    throw new SocketOptionError('TCP_USER_TIMEOUT', `asked for ${ms} ms, the kernel reports ${actual} ms`);
  }
  return actual;
}

/** Reads TCP_USER_TIMEOUT in milliseconds (0 = off). */
export function getUserTimeout(target: SocketLike): number {
  return getIntOption(getSocketFd(target, 'TCP_USER_TIMEOUT'), IPPROTO_TCP, TCP_USER_TIMEOUT, 'TCP_USER_TIMEOUT');
}
