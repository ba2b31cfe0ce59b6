/**
 * RFC 867 over UDP ("UDP Based Daytime Service"): "send a UDP datagram containing the current date and time
 * ... in response to" any datagram received. A UDP service answering anybody can be aimed at a third party
 * (spoofed source) or at another such service (an endless packet loop, CVE-1999-0103), so two guards stand before
 * each answer:
 * - the reflection guard (core's, shared with udp-echo: same default list, same setting type, same metric) drops
 *   datagrams whose source port belongs to a service that answers unsolicited datagrams;
 * - a token bucket caps answers per second for all sources together, so what can be reflected is bounded
 *   whatever the sources. The answer (under 40 bytes) is never much larger than a request, but a 0-byte
 *   request still gets one, so unbounded answering would double an attacker's packets.
 */
import { bindUdp, type Endpoint, type Logger, type Metrics, type ReflectionGuard } from '@net/core';
import { type DaytimeFormat, formatDaytime } from './format.js';

/** Settings of {@link startUdpDaytime}. */
export interface UdpDaytimeOptions {
  format: DaytimeFormat;
  utc: boolean;
  /** Source ports never answered (one guard may serve every socket). */
  guard: ReflectionGuard;
  /** Answers per second at most, all sources together; 0 for no limit. */
  ratePerSecond: number;
  now?: () => Date;
  log: Logger;
  metrics: Metrics;
}

/** A running UDP daytime listener. */
export interface UdpDaytime {
  /** The bound address, e.g. `127.0.0.1:1313/udp`. */
  endpoint: string;
  close(): Promise<void>;
}

/** Counters shared by every UDP socket of the process, created once per Metrics. */
interface UdpCounters {
  received: number;
  sent: number;
  dropped: ReturnType<Metrics['counter']>;
  errors: ReturnType<Metrics['counter']>;
}
const countersByMetrics = new WeakMap<Metrics, UdpCounters>();

function countersFor(metrics: Metrics): UdpCounters {
  let c = countersByMetrics.get(metrics);
  if (c === undefined) {
    const made: UdpCounters = {
      received: 0,
      sent: 0,
      // Both drop reasons at 0 from the start, so that rate() sees the first drop.
      dropped: metrics.preset('net_datagrams_dropped_total', { reason: ['reflection_guard', 'rate_limit'] }),
      errors: metrics.counter('net_errors_total'),
    };
    metrics.collect('net_datagrams_received_total', () => made.received);
    metrics.collect('net_datagrams_sent_total', () => made.sent);
    countersByMetrics.set(metrics, made);
    c = made;
  }
  return c;
}

/**
 * Binds a UDP daytime socket on `endpoint` (an IP, every interface dual stack, or a host name; the port normally
 * the one the TCP listener got, so one number serves both as /etc/services has it) through core's `bindUdp`.
 *
 * @throws {AccessDeniedError} `NET_ERR_ACCESS` on EACCES (a port below 1024 without privilege).
 * @throws {AddressInUseError} `NET_ERR_ADDR_IN_USE` when the UDP port is taken.
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` for a Unix endpoint, a name that does not resolve, or an
 *   address not on this host.
 */
export async function startUdpDaytime(endpoint: Endpoint, options: UdpDaytimeOptions): Promise<UdpDaytime> {
  const { socket, endpoint: bound } = await bindUdp(endpoint);
  const counters = countersFor(options.metrics);
  const { guard } = options;
  const bucket = new TokenBucket(options.ratePerSecond);
  const now = options.now ?? (() => new Date());
  socket.on('error', (err: NodeJS.ErrnoException) => {
    counters.errors.inc({ code: err.code ?? 'unknown' });
    options.log.debug({ err }, 'udp socket error');
  });
  socket.on('message', (_msg, rinfo) => {
    counters.received++;
    if (guard.blocks(rinfo.port)) {
      counters.dropped.inc({ reason: 'reflection_guard' });
      return;
    }
    if (!bucket.take()) {
      counters.dropped.inc({ reason: 'rate_limit' });
      return;
    }
    const line = formatDaytime(now(), options.format, { utc: options.utc });
    socket.send(line, rinfo.port, rinfo.address, (err) => {
      if (err) counters.errors.inc({ code: (err as NodeJS.ErrnoException).code ?? 'unknown' });
      else counters.sent++;
    });
  });

  return {
    endpoint: `${bound}/udp`,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A token bucket holding one second's worth of answers; `rate` 0 never refuses. */
class TokenBucket {
  readonly #rate: number;
  #tokens: number;
  #last = performance.now();

  constructor(rate: number) {
    this.#rate = rate;
    this.#tokens = rate;
  }

  take(): boolean {
    if (this.#rate === 0) return true;
    const now = performance.now();
    this.#tokens = Math.min(this.#rate, this.#tokens + ((now - this.#last) / 1000) * this.#rate);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
