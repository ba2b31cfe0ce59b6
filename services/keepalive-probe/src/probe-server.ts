/**
 * The probe server: accepts connections, gives each the exact keepalive settings, holds it (discarding or echoing
 * what the client sends) and reports the peers the kernel gives up on. Nothing here times a connection out: an idle
 * connection is the point, and the kernel's keepalive timer is what decides a peer is gone.
 */
import net from 'node:net';
import {
  boundEndpoint,
  type ConnectionTracker,
  formatEndpoint,
  formatPeer,
  type ListenEndpoint,
  type Logger,
  listen,
  type Metrics,
  NetError,
} from '@net/core';
import { isPeerDeadError, PeerDeadReporter } from './peer-dead.js';
import { type AppliedSettings, applyProbeSettings, type ProbeSettings } from './settings.js';

/** What {@link startProbeServer} needs. */
export interface ProbeServerOptions {
  endpoints: readonly ListenEndpoint[];
  settings: ProbeSettings;
  mode: 'discard' | 'echo';
  /** Open connections at most, over every listener (the runtime's lowered `ctx.config.maxConnections`). */
  maxConnections: number;
  log: Logger;
  metrics: Metrics;
  connections: ConnectionTracker;
}

/** A running probe server. */
export interface ProbeServer {
  /** The bound endpoints, formatted (the real port after port 0). */
  endpoints: string[];
  /** The settings read back from the first listening socket. */
  applied: AppliedSettings;
  /** Closes the listeners (first step of the drain); held connections stay until the drain period ends. */
  stopAccepting(): void;
  /** Logs pending summaries. */
  flush(): void;
}

/** Limit-hit warnings are logged at most once per this period (the rest are counted). */
const LIMIT_WARN_INTERVAL_MS = 10_000;

/**
 * Listens on every endpoint and applies the settings to each listening socket first, so a platform that cannot set
 * them (not Linux, no koffi, a kernel that reads back other values) fails at start with the reason, never silently.
 * @throws {NetError} a listen error (address in use, ...) or a socket option error.
 */
export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const { settings, mode, maxConnections, log, metrics, connections } = options;
  for (const endpoint of options.endpoints) {
    if (endpoint.kind === 'unix') {
      throw new NetError(`cannot listen on ${formatEndpoint(endpoint)}: TCP keepalive needs a TCP endpoint`);
    }
  }

  // Byte counts are plain numbers read at scrape time: no prom-client call per chunk.
  let receivedBytes = 0;
  let sentBytes = 0;
  metrics.collect('net_received_bytes_total', () => receivedBytes);
  metrics.collect('net_sent_bytes_total', () => sentBytes);
  // At 0 from the start, so that rate() sees the first rejection.
  const rejected = metrics.preset('net_connections_rejected_total', { reason: ['max_connections'] });
  const errors = metrics.counter('net_errors_total');
  let lastLimitWarn = Number.NEGATIVE_INFINITY;
  let rejectedSinceWarn = 0;

  const servers: net.Server[] = [];
  let applied: AppliedSettings | undefined;
  let reporter: PeerDeadReporter | undefined;

  // Counts a connection closed by the limit, and warns at most once per interval.
  const rejectOne = (): void => {
    rejected.inc({ reason: 'max_connections' });
    rejectedSinceWarn++;
    const now = performance.now();
    if (now - lastLimitWarn >= LIMIT_WARN_INTERVAL_MS) {
      log.warn(
        { limit: 'max_connections', maxConnections, rejected: rejectedSinceWarn },
        `connection limit reached (${maxConnections}): closing new connections at once`,
      );
      lastLimitWarn = now;
      rejectedSinceWarn = 0;
    }
  };

  const onConnection = (socket: net.Socket): void => {
    // Each listener stops at maxConnections by itself (the 'drop' below); this covers the sum over every listener.
    if (connections.size >= maxConnections) {
      rejectOne();
      socket.destroy();
      return;
    }
    connections.add(socket);
    const peer = formatPeer(socket);
    let mine: AppliedSettings;
    try {
      mine = applyProbeSettings(socket, settings);
    } catch (err) {
      // A peer that reset before we got here has no descriptor left: nothing to report.
      if (!socket.destroyed && socket.readyState === 'open') {
        errors.inc({ code: (err as NetError).code ?? 'unknown' });
        log.error({ err, peer }, `cannot apply keepalive to ${peer}: closing the connection`);
      }
      socket.destroy();
      return;
    }
    log.debug(
      { peer, keepalive: mine.keepalive, userTimeoutMs: mine.userTimeoutMs },
      'connection: keepalive read back',
    );
    hold(socket, peer);
  };

  // Holds one connection: keeps the timestamps the `peer dead` event needs, discards or echoes with backpressure.
  const hold = (socket: net.Socket, peer: string): void => {
    const openedAt = performance.now();
    let lastByteAt = openedAt;
    socket.on('data', (chunk: Buffer) => {
      lastByteAt = performance.now();
      receivedBytes += chunk.length;
      if (mode === 'echo') {
        sentBytes += chunk.length;
        // RFC 862 echo: stop reading while the peer does not read what we send (docs/measurements.md §6: +257 MiB otherwise).
        if (!socket.write(chunk)) socket.pause();
      }
    });
    if (mode === 'echo') socket.on('drain', () => socket.resume());
    // allowHalfOpen: the client's FIN ends its side only; we end ours once what we owe is written.
    socket.on('end', () => socket.end());
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (isPeerDeadError(err)) {
        reporter?.report({ peer, openedAt, lastByteAt, err });
      } else {
        errors.inc({ code: err.code ?? 'unknown' });
        log.debug({ peer, err }, `connection error: ${err.code ?? err.message}`);
      }
    });
    socket.on('close', (hadError) => {
      log.debug({ peer, hadError, ageSeconds: (performance.now() - openedAt) / 1000 }, 'connection closed');
    });
  };

  const bound: string[] = [];
  try {
    for (const endpoint of options.endpoints) {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true }, onConnection);
      // Past maxConnections Node closes a new connection before creating a socket for it, and says so with 'drop'
      // (Node >= 18.6): counted and warned about like the ones onConnection refuses.
      server.maxConnections = maxConnections;
      server.on('drop', rejectOne);
      servers.push(server);
      await listen(endpoint, { server });
      // Set on the listening fd too: accepted sockets inherit it (docs/measurements.md §1.2), so even a connection we have not
      // handled yet is probed, and an unsupported platform fails here, at start.
      const got = applyProbeSettings(server, settings);
      applied ??= got;
      bound.push(formatEndpoint(boundEndpoint(server)));
    }
  } catch (err) {
    for (const server of servers) server.close();
    throw err;
  }
  if (applied === undefined) throw new NetError('no endpoint to listen on');
  reporter = new PeerDeadReporter(log, metrics, applied);
  const finalReporter = reporter;

  return {
    endpoints: bound,
    applied,
    stopAccepting() {
      // close() stops accepting at once; its callback would wait for every connection. Held connections stay open
      // (the runtime's drain waits for their clients to close them, up to --drain-timeout, then destroys them).
      for (const server of servers) server.close();
    },
    flush() {
      finalReporter.flush();
    },
  };
}
