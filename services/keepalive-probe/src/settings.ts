/**
 * Applying the probe's socket options and saying what they mean. Every value is set with setsockopt and read back
 * with getsockopt through @net/core (Node's own `setKeepAlive` cannot set the interval or the count before Node
 * 24.19 and fails silently: docs/measurements.md §1.1), so what we log is what the kernel holds, never what we hoped for.
 */
import net from 'node:net';
import { getUserTimeout, type KeepAliveSettings, type SocketLike, setKeepAlive, setUserTimeout } from '@net/core';

/** What the user asked for: keepalive in seconds, TCP_USER_TIMEOUT in milliseconds (undefined: leave the default). */
export interface ProbeSettings {
  idle: number;
  interval: number;
  count: number;
  userTimeout?: number | undefined;
}

/** What the kernel reports after the set. */
export interface AppliedSettings {
  keepalive: KeepAliveSettings;
  /** TCP_USER_TIMEOUT read back, in milliseconds; 0 means off (the kernel's retransmission limits apply). */
  userTimeoutMs: number;
}

/**
 * Enables keepalive with the exact settings on a connected socket or a listening server (accepted sockets inherit
 * options set on the listening fd: docs/measurements.md §1.2) and sets TCP_USER_TIMEOUT when asked, then returns the values
 * read back.
 * @throws {SocketOptionError} a value the kernel refuses or reads back differently.
 * @throws {SocketOptionUnsupportedError} off Linux or without koffi's binary.
 */
export function applyProbeSettings(target: SocketLike, settings: ProbeSettings): AppliedSettings {
  const keepalive = setKeepAlive(target, { idle: settings.idle, interval: settings.interval, count: settings.count });
  const userTimeoutMs =
    settings.userTimeout === undefined ? getUserTimeout(target) : setUserTimeout(target, settings.userTimeout);
  return { keepalive, userTimeoutMs };
}

/**
 * Applies the settings to a throwaway listening socket on loopback and returns what the kernel read back: commands
 * that connect out (`watch`) call this at start, so a platform that cannot set the options fails before anything
 * else, with the reason, instead of on every connection later.
 * @throws {SocketOptionError} as {@link applyProbeSettings}.
 * @throws {SocketOptionUnsupportedError} as {@link applyProbeSettings}.
 */
export async function checkSettings(settings: ProbeSettings): Promise<AppliedSettings> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  try {
    return applyProbeSettings(server, settings);
  } finally {
    server.close();
  }
}

/** When the kernel should report a peer that died while the connection was idle, in seconds after the death. */
export interface DetectionWindow {
  earliest: number;
  latest: number;
}

/**
 * The detection window of the timing model (docs/measurements.md §1.3, §1.4; net/ipv4/tcp_timer.c `tcp_keepalive_timer`):
 *
 * - Keepalive alone: the first unanswered probe leaves at the next keepalive tick after the death, which is up to
 *   `interval` away on a connection already being probed, or up to `idle` after the last traffic; the kernel gives
 *   up at the tick after the `count`-th unanswered probe. So `count*interval <= t <= max(idle, interval) +
 *   count*interval` (1/1/3: 3 to 4 s; the looser bound `idle + interval*count + 1` is 5 s).
 * - With TCP_USER_TIMEOUT: the kernel ignores `count` and gives up at the first tick where nothing was received for
 *   the user timeout and a probe is out, so the death is reported about one user timeout after the last answered
 *   probe: `userTimeout - interval <= t <= userTimeout + interval`.
 */
export function detectionWindow(applied: AppliedSettings): DetectionWindow {
  const { idle, interval, count } = applied.keepalive;
  if (applied.userTimeoutMs > 0) {
    const ut = applied.userTimeoutMs / 1000;
    return { earliest: Math.max(0, ut - interval), latest: ut + interval };
  }
  return { earliest: count * interval, latest: Math.max(idle, interval) + count * interval };
}

/**
 * One sentence on how TCP_USER_TIMEOUT and keepalive combine with these values (docs/measurements.md §1.3, kernel commit
 * dca43c75e7e5), for the start-up log: the interaction surprises people.
 */
export function describeInteraction(applied: AppliedSettings): string {
  const { idle, interval, count } = applied.keepalive;
  const keepaliveMs = (idle + interval * count) * 1000;
  const ut = applied.userTimeoutMs;
  if (ut === 0) {
    return (
      'keepalive alone: an idle dead peer is found by the probes; a peer that dies while written data is still ' +
      'unacknowledged is found only by retransmission timeouts (about 15 min with net.ipv4.tcp_retries2=15): set ' +
      `--user-timeout ${keepaliveMs} to bound that case too`
    );
  }
  if (ut < keepaliveMs) {
    return (
      `TCP_USER_TIMEOUT ${ut} ms is shorter than idle + interval x count = ${keepaliveMs} ms: it overrides --count ` +
      `and an idle dead peer is reported after about ${ut} ms, with fewer than ${count} probes`
    );
  }
  if (ut > keepaliveMs) {
    return (
      `TCP_USER_TIMEOUT ${ut} ms is longer than idle + interval x count = ${keepaliveMs} ms: it overrides --count, ` +
      `so probes go on past ${count} and an idle dead peer is reported after about ${ut} ms`
    );
  }
  return `TCP_USER_TIMEOUT ${ut} ms equals idle + interval x count: idle and busy dead peers are both found in about ${ut} ms`;
}
