/**
 * The daytime-tcp service definition: `serve` (TCP, and UDP with --udp) and `client`.
 */
import { createRequire } from 'node:module';
import net from 'node:net';
import {
  AccessDeniedError,
  acceptRawHandles,
  boundEndpoint,
  closeRawHandleNow,
  defineClientCommand,
  defineService,
  formatEndpoint,
  listen,
  ReflectionGuard,
  rawHandleUnsupported,
  systemError,
} from '@net/core';
import { runClient } from './client.js';
import { clientOptions, DAYTIME_PORT, DEFAULT_PORT, serveOptions } from './config.js';
import { IterativeDaytime } from './iterative-daytime.js';
import { startUdpDaytime, type UdpDaytime } from './udp-daytime.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

export const service = defineService({
  name: 'daytime-tcp',
  version,
  description:
    'Iterative daytime server (RFC 867): each TCP connection gets the date as one line, then is closed; with --udp, each datagram gets one back.',
  envPrefix: 'DAYTIME_TCP',
  defaultPort: DEFAULT_PORT,
  // TCP always, UDP too with --udp: the connection metrics show from the start.
  transport: 'both',
  options: serveOptions,

  async serve(ctx) {
    const { config, log, metrics, connections } = ctx;
    const answerer = new IterativeDaytime({
      format: config.format,
      utc: config.utc,
      maxPending: config.maxPending,
      writeTimeoutMs: config.writeTimeout * 1000,
      closeTimeoutMs: config.closeTimeout * 1000,
      log,
      metrics,
      connections,
    });
    // At 0 from the start, so that rate() sees the first event (the answerer presets its own reasons and limits).
    const rejected = metrics.preset('net_connections_rejected_total', { reason: ['max_connections'] });
    const acceptErrors = metrics.counter('net_accept_errors_total');
    let lastDropWarning = 0;
    let lastAcceptWarning = 0;
    // Answer on the accepted handles, without a net.Socket each (@net/core's raw handles), where this Node allows it.
    // --io stream, or a Node without those internals (then said once): a net.Socket per connection.
    const unsupported = config.io === 'stream' ? 'io' : rawHandleUnsupported();
    if (unsupported !== undefined && unsupported !== 'io')
      log.warn({ reason: unsupported }, 'answering through net.Socket: the handle path is not available here');

    const servers: net.Server[] = [];
    const udp: UdpDaytime[] = [];
    // With --udp: one 64 KiB port table serves every UDP socket.
    const guard = config.udp ? new ReflectionGuard(config.udpGuardPorts) : undefined;
    const endpoints: string[] = [];
    const closeAll = async () => {
      for (const s of servers) s.close();
      await Promise.all(udp.map((u) => u.close()));
    };
    try {
      for (const endpoint of ctx.endpoints) {
        // allowHalfOpen: a client that shuts down its sending side at once (`socat - TCP:host:13 </dev/null`)
        // still waits for the date; Node must not end our side on its FIN before the answer is written.
        // No noDelay: the answer is one write on an idle connection, which Nagle never holds back (RFC 896 delays
        // only while data is unacknowledged), and the FIN that follows is not delayed either; setting TCP_NODELAY
        // would cost a setsockopt(2) per connection for nothing.
        const server = net.createServer({ allowHalfOpen: true });
        server.maxConnections = ctx.limits.maxConnections;
        server.on('connection', (socket) => answerer.accept(socket));
        // Past maxConnections Node closes the new socket at once and emits 'drop' (Node >= 18.6); the handle path
        // below does the same.
        server.on('drop', () => {
          rejected.inc({ reason: 'max_connections' });
          const now = performance.now();
          if (now - lastDropWarning >= 10_000) {
            lastDropWarning = now;
            log.warn(
              { maxConnections: ctx.limits.maxConnections },
              'connection limit reached: closing new connections at once',
            );
          }
        });
        await listen(endpoint, { server, backlog: config.backlog }).catch((err: unknown) => {
          throw explainBindError(err, 'port' in endpoint ? endpoint.port : undefined);
        });
        // Only now: a bind failure above is a start-up error, not an accept error. Accept failures (EMFILE...)
        // surface here; libuv keeps the listener and retries by itself.
        server.on('error', (err: NodeJS.ErrnoException) => {
          acceptErrors.inc({ code: err.code ?? 'unknown' });
          const now = performance.now();
          if (now - lastAcceptWarning >= 10_000) {
            lastAcceptWarning = now;
            log.error({ err }, 'accept failed (logged at most once per 10 s; see net_accept_errors_total)');
          }
        });
        if (unsupported === undefined) {
          const listener = { open: 0 };
          acceptRawHandles(
            server,
            (handle) => {
              if (server.maxConnections && listener.open >= server.maxConnections) {
                closeRawHandleNow(handle);
                server.emit('drop');
                return;
              }
              answerer.acceptHandle(handle, listener);
            },
            (errno) => server.emit('error', systemError(errno, 'accept')),
          );
        }
        servers.push(server);
        const bound = boundEndpoint(server);
        endpoints.push(formatEndpoint(bound));
        if (guard !== undefined && bound.kind !== 'unix') {
          const u = await startUdpDaytime(bound, {
            format: config.format,
            utc: config.utc,
            guard,
            ratePerSecond: config.udpRate,
            log,
            metrics,
          }).catch((err: unknown) => {
            throw explainBindError(err, bound.port);
          });
          udp.push(u);
          endpoints.push(u.endpoint);
        }
      }
    } catch (err) {
      await closeAll();
      throw err;
    }

    return {
      endpoints,
      stopAccepting: closeAll,
      // Queued connections still get their date; then each closes (or is destroyed at --close-timeout).
      drained: async () => {
        await answerer.idle();
        await connections.idle();
      },
    };
  },

  commands: {
    client: defineClientCommand({
      description: `Connect to a daytime server, read its answer to the end and print it. Without HOST it asks the local server, 127.0.0.1:${DEFAULT_PORT}; a HOST without a port gets ${DEFAULT_PORT} too (the daytime port of RFC 867 is ${DAYTIME_PORT}: name it).`,
      args: '[HOST[:PORT]]',
      maxPositionals: 1,
      options: clientOptions,
      run: runClient,
    }),
  },
});

/** On EACCES for a privileged port, add to core's hint what daytime users need: 13 is privileged, 1313 is the unprivileged default. */
function explainBindError(err: unknown, port: number | undefined): unknown {
  if (!(err instanceof AccessDeniedError) || port === undefined || !(port > 0 && port < 1024)) return err;
  return new AccessDeniedError(
    err.endpoint,
    `${err.hint}. The daytime port ${DAYTIME_PORT} is such a port: grant the capability to bind it, or run unprivileged on daytime-tcp's local default ${DEFAULT_PORT} (--port ${DEFAULT_PORT} or DAYTIME_TCP_PORT=${DEFAULT_PORT})`,
    { cause: err },
  );
}
