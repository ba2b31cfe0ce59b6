/**
 * The settings of every role. The keepalive trio is validated here against the kernel's own limits
 * (net/ipv4/tcp.c: MAX_TCP_KEEPIDLE and MAX_TCP_KEEPINTVL 32767 s, MAX_TCP_KEEPCNT 127), so a bad value stops the
 * command line with exit code 2 and a message naming the flag or variable, instead of reaching setsockopt. Values
 * are whole seconds because the kernel keeps whole seconds (tcp(7)); a fraction would be silently truncated.
 */
import { boolean, decimal, integer, oneOf, option, port, type Schema } from '@net/core';

/** The port `serve` listens on by default (below the ephemeral range 32768-60999, next to echo-tcp's 15000). */
export const DEFAULT_PORT = 15001;

/** The classic C keepalive example's settings: TCP_KEEPIDLE=1, TCP_KEEPINTVL=1, TCP_KEEPCNT=10. */
export const SEED_KEEPALIVE = { idle: 1, interval: 1, count: 10 } as const;

/** TCP_USER_TIMEOUT's range in milliseconds (tcp(7)); 0 leaves the kernel's retransmission limits in charge. */
const USER_TIMEOUT_MAX_MS = 2 ** 31 - 1;

/** --idle, --interval, --count and --user-timeout, shared by serve, watch and demo. */
export function keepAliveOptions() {
  return {
    idle: option({
      type: integer(1, 32767),
      default: SEED_KEEPALIVE.idle as number,
      description: 'Seconds without traffic before the first keepalive probe (TCP_KEEPIDLE)',
    }),
    interval: option({
      type: integer(1, 32767),
      default: SEED_KEEPALIVE.interval as number,
      description: 'Seconds between unanswered keepalive probes (TCP_KEEPINTVL)',
    }),
    count: option({
      type: integer(1, 127),
      default: SEED_KEEPALIVE.count as number,
      description: 'Unanswered probes after which the kernel declares the peer dead (TCP_KEEPCNT)',
    }),
    userTimeout: option({
      type: integer(0, USER_TIMEOUT_MAX_MS),
      description:
        'Milliseconds written data may stay unacknowledged before the connection is dropped (TCP_USER_TIMEOUT; ' +
        'also overrides --count, see the README); unset leaves the kernel default, 0 turns it off',
    }),
  } satisfies Schema;
}

/** The service's own `serve` settings (the runtime adds --host, --port, --admin-port, ...). */
export function serveOptions() {
  return {
    ...keepAliveOptions(),
    mode: option({
      type: oneOf(['discard', 'echo'] as const),
      default: 'discard' as 'discard' | 'echo',
      description: 'What to do with bytes a client sends: discard them (RFC 863) or echo them back (RFC 862)',
    }),
    // Under the runtime, ctx.config.maxConnections is lowered to what the descriptor limit allows (core rlimit.ts).
    maxConnections: option({
      type: integer(1, 1_000_000),
      default: 10_000,
      description: 'Open connections at most; past it new connections are closed at once and counted',
    }),
  } satisfies Schema;
}

/** `watch HOST:PORT...` settings (the runtime adds --admin-port, --admin-host, --log-level, --log-format, --instance). */
export function watchOptions() {
  return {
    ...keepAliveOptions(),
    connectTimeout: option({
      type: decimal(0.1, 3600, 'seconds'),
      default: 5,
      description: 'Give up one connection attempt after this long (a blackholed target never answers the SYN)',
    }),
    backoffInitial: option({
      type: decimal(0.01, 3600, 'seconds'),
      default: 0.5,
      description: 'First reconnect delay; each failed attempt doubles it, up to --backoff-max',
    }),
    backoffMax: option({
      type: decimal(0.01, 3600, 'seconds'),
      default: 30,
      description: 'Longest reconnect delay',
    }),
    once: option({
      type: boolean(),
      default: false,
      description: 'Connect to every target, then exit 0 when all are up or 1 when any is still down at --once-timeout',
    }),
    onceTimeout: option({
      type: decimal(0.1, 3600, 'seconds'),
      default: 5,
      description: 'With --once: how long targets may take to come up',
    }),
  } satisfies Schema;
}

/** `demo` settings. */
export function demoOptions() {
  return {
    ...keepAliveOptions(),
    duration: option({
      type: decimal(0.5, 3600, 'seconds'),
      default: 5,
      description: 'How long the demo watches the idle connection',
    }),
    port: option({
      type: port(),
      default: 0,
      // Not KEEPALIVE_PROBE_PORT: that one configures `serve`, and the demo must not grab the service's port.
      env: 'KEEPALIVE_PROBE_DEMO_PORT',
      description: 'Loopback port of the demo server (0 picks a free port; the classic example used 12345)',
    }),
    probeSource: option({
      type: oneOf(['auto', 'tcpdump', 'ss'] as const),
      default: 'auto' as 'auto' | 'tcpdump' | 'ss',
      description:
        'Where probes are seen: a tcpdump capture on lo (needs tcpdump and CAP_NET_RAW), the kernel keepalive ' +
        'timer shown by `ss -tnoi`, or auto (tcpdump when it can capture, else ss)',
    }),
  } satisfies Schema;
}
