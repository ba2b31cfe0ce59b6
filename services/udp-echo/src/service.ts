/**
 * udp-echo: the RFC 862 UDP echo service, hardened for the open Internet (reflection guard, per-source rate limits
 * with a bounded source table, a bounded send queue), on the shared runtime of @net/core.
 */
import { createRequire } from 'node:module';
import {
  type BoundUdpSocket,
  bindUdp,
  ConfigError,
  defineService,
  type Logger,
  type PortRange,
  ReflectionGuard,
} from '@net/core';
import { BatchEcho, batchEngineSupport, DROP_REPORT_LIMIT } from './batch-echo.js';
import { checkCommand, clientCommand } from './client.js';
import { options } from './config.js';
import { type DropListener, type EchoEngine, UdpEcho } from './datagram-echo.js';
import { DROP_REASONS } from './drop-reasons.js';
import { RateLimiter } from './rate-limiter.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** At most one log line per interval about drops and one about socket errors, whatever the rate of datagrams. */
const WARN_INTERVAL_MS = 10_000;

/** The service definition, run by main.ts. */
export const service = defineService({
  name: 'udp-echo',
  version,
  description:
    'UDP echo (RFC 862): every datagram is sent back to its source unchanged, except from guarded source ports and past per-source rate limits.',
  envPrefix: 'UDP_ECHO',
  defaultPort: 15000,
  workers: true,
  // UDP only: no TCP connection metrics (net_connections_*), and --workers without SO_REUSEPORT is worded for UDP.
  transport: 'udp',
  options,
  async serve(ctx) {
    const { config, log, metrics } = ctx;
    const limits =
      config.rateLimitPackets > 0 || config.rateLimitBytes > 0
        ? {
            packetsPerSecond: config.rateLimitPackets,
            packetBurst: config.rateLimitPacketBurst,
            bytesPerSecond: config.rateLimitBytes,
            byteBurst: config.rateLimitByteBurst,
          }
        : undefined;
    // The engine depends on where batches work, never on logging: both log each dropped datagram at debug level.
    const batchUnsupported = config.io === 'dgram' ? undefined : batchEngineSupport();
    if (config.io === 'batch' && batchUnsupported !== undefined)
      throw new ConfigError('--io', 'batch', `expected auto or dgram here (${batchUnsupported})`);
    const useBatch = config.io !== 'dgram' && batchUnsupported === undefined;
    // The dgram engine's limiter lives here; the batch engine builds its own in the worker from the same limits.
    const limiter = limits !== undefined && !useBatch ? new RateLimiter(limits, config.rateLimitSources) : undefined;
    const guardPorts: PortRange[] = [...config.guardPorts];
    const guard = new ReflectionGuard(guardPorts);
    const errorsReported = { count: 0, last: undefined as NodeJS.ErrnoException | undefined };
    const onError = (err: NodeJS.ErrnoException) => {
      errorsReported.last = err;
    };
    const onDrop: DropListener | undefined = log.isLevelEnabled('debug')
      ? (reason, source, size) =>
          log.debug({ reason, peer: `${source.address}:${source.port}`, size }, 'datagram dropped')
      : undefined;
    const echo: EchoEngine = useBatch
      ? new BatchEcho({
          guardPorts: () => guardPorts,
          limits,
          sources: config.rateLimitSources,
          onError,
          onDrop,
          onDropsNotListed: (dropped) =>
            log.debug(
              { dropped, listedAtMost: DROP_REPORT_LIMIT },
              'more datagrams dropped than listed one by one (counted by reason)',
            ),
        })
      : new UdpEcho({ guard, limiter, maxQueuedBytes: config.maxQueuedBytes, onDrop, onError });
    if (config.io === 'auto' && batchUnsupported !== undefined)
      log.warn({ reason: batchUnsupported }, 'batched datagram I/O unavailable: answering one datagram at a time');

    // Hot-path counters are plain numbers read at scrape time. prom-client reads metrics in registration order and
    // synchronously, so the gauge declared first also moves the labelled counts (which `collect` cannot read) into
    // their counters just before those are read.
    const dropped = new Float64Array(DROP_REASONS.length);
    const errorsSeen = new Map<string, number>();
    const flush = () => {
      for (let i = 0; i < DROP_REASONS.length; i++) {
        const delta = echo.dropped[i]! - dropped[i]!;
        if (delta > 0) droppedTotal.inc({ reason: DROP_REASONS[i]! }, delta);
        dropped[i] = echo.dropped[i]!;
      }
      for (const [code, count] of echo.errors) {
        const delta = count - (errorsSeen.get(code) ?? 0);
        if (delta > 0) errorsTotal.inc({ code }, delta);
        errorsSeen.set(code, count);
      }
    };
    metrics.collect('net_rate_limit_sources', () => {
      flush();
      return echo.sources;
    });
    metrics.collect('net_datagrams_received_total', () => echo.received);
    metrics.collect('net_received_bytes_total', () => echo.receivedBytes);
    metrics.collect('net_datagrams_sent_total', () => echo.sent);
    metrics.collect('net_sent_bytes_total', () => echo.sentBytes);
    const droppedTotal = metrics.preset('net_datagrams_dropped_total', { reason: DROP_REASONS });
    const errorsTotal = metrics.counter('net_errors_total');

    const bound: BoundUdpSocket[] = [];
    try {
      for (const endpoint of ctx.endpoints) {
        bound.push(
          await bindUdp(endpoint, {
            reusePort: ctx.worker?.reusePort ?? false,
            recvBufferSize: config.recvBuffer,
            sendBufferSize: config.sendBuffer,
          }),
        );
      }
    } catch (err) {
      for (const b of bound) b.socket.close();
      throw err;
    }
    // Two echo servers must never answer each other (CVE-1999-0103), whatever port they run on.
    for (const b of bound) {
      guard.add([b.port, b.port]);
      guardPorts.push([b.port, b.port]);
    }
    for (const b of bound) {
      logBuffers(log, b, config.recvBuffer, config.sendBuffer, ctx.worker === undefined || ctx.worker.id === 1);
      echo.attach(b.socket);
    }
    try {
      await echo.start();
    } catch (err) {
      for (const b of bound) b.socket.close();
      throw err;
    }
    log.info({ io: useBatch ? 'batch' : 'dgram' }, 'datagram I/O');
    log.debug(
      {
        guardedPorts: guard.size,
        sources: limits === undefined ? 0 : config.rateLimitSources,
        io: useBatch ? 'batch' : 'dgram',
      },
      'reflection guard and rate limiter set',
    );

    const reported = new Float64Array(DROP_REASONS.length);
    const timer = setInterval(() => {
      warnOnDrops(log, echo, reported);
      let errors = 0;
      for (const count of echo.errors.values()) errors += count;
      if (errors > errorsReported.count) {
        log.error(
          { err: errorsReported.last, errors: errors - errorsReported.count, intervalSeconds: WARN_INTERVAL_MS / 1000 },
          'socket errors (the last one attached)',
        );
        errorsReported.count = errors;
      }
    }, WARN_INTERVAL_MS);
    timer.unref();
    return {
      endpoints: bound.map((b) => b.endpoint),
      // Datagrams keep being answered during the drain (see UdpEcho.drained); /readyz already answers 503.
      stopAccepting: () => {},
      drained: async () => {
        await echo.drained(config.drainQuiet * 1000);
        clearInterval(timer);
      },
      close: () => echo.close(),
    };
  },
  commands: { client: clientCommand, check: checkCommand },
});

/** Logs the drops since the last warning, once per interval: never per datagram. */
function warnOnDrops(log: Logger, echo: EchoEngine, reported: Float64Array): void {
  const since: Partial<Record<string, number>> = {};
  let any = false;
  for (let i = 0; i < DROP_REASONS.length; i++) {
    const delta = echo.dropped[i]! - reported[i]!;
    reported[i] = echo.dropped[i]!;
    if (delta > 0) {
      since[DROP_REASONS[i]!] = delta;
      any = true;
    }
  }
  if (any) log.warn({ dropped: since, intervalSeconds: WARN_INTERVAL_MS / 1000 }, 'datagrams dropped unanswered');
}

function logBuffers(
  log: Logger,
  b: BoundUdpSocket,
  recv: number | undefined,
  send: number | undefined,
  info: boolean,
): void {
  // Linux stores twice the requested size (socket(7)) and caps the request at net.core.rmem_max / wmem_max.
  const capped = (asked: number | undefined, got: number) => asked !== undefined && got < asked * 2;
  const fields = { endpoint: b.endpoint, recvBufferSize: b.recvBufferSize, sendBufferSize: b.sendBufferSize };
  if (capped(recv, b.recvBufferSize) || capped(send, b.sendBufferSize)) {
    log.warn(
      { ...fields, requestedRecv: recv, requestedSend: send },
      'socket buffer smaller than asked: the kernel caps it at net.core.rmem_max / net.core.wmem_max (raise them with sysctl)',
    );
  } else if (info) log.info(fields, 'socket buffers');
  else log.debug(fields, 'socket buffers');
}
