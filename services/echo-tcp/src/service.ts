/**
 * The echo-tcp service definition: its settings, `serve` (listeners and their wiring), and the `client` and
 * `check` commands. The runtime (@net/core) does the rest: flags and environment, logs, metrics, admin endpoint,
 * workers, drain.
 */
import { createRequire } from 'node:module';
import type net from 'node:net';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import type tls from 'node:tls';
import {
  boundEndpoint,
  ConfigError,
  defineClientCommand,
  defineService,
  formatEndpoint,
  type ListenEndpoint,
  listen,
  nodeInternalsAvailable,
  PROXY_PROTOCOL_REASONS,
  type RunningService,
  rawHandleUnsupported,
} from '@net/core';
import { checkOptions, runCheck } from './check.js';
import { clientOptions, runClient } from './client.js';
import { DEFAULT_PORT, echoOptions } from './config.js';
import { ConnectionHandler } from './connection.js';
import { renderGreeting } from './greeting.js';
import { createTlsServer, loadTlsContext } from './tls.js';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** TLS handshakes must finish within this time, like the PROXY header: a slow handshake holds a descriptor. */
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

type Kind = 'plain' | 'proxy' | 'tls';

/** echo-tcp: RFC 862 echo over TCP. */
export const service = defineService({
  name: 'echo-tcp',
  version,
  description:
    'RFC 862 echo over TCP: every byte a client sends comes back unchanged and in order, with limits, PROXY protocol, workers and optional TLS.',
  envPrefix: 'ECHO_TCP',
  defaultPort: DEFAULT_PORT,
  workers: true,
  options: echoOptions,

  async serve(ctx): Promise<RunningService> {
    const { config, log } = ctx;
    checkTlsSettings(config, ctx.sources);
    // Never more connections than descriptors allow: past RLIMIT_NOFILE libuv closes new connections silently. The
    // runtime has lowered --max-connections to what can be kept (and warned).
    const { maxConnections } = ctx.limits;
    const tlsFiles =
      config.tlsCert !== undefined && config.tlsKey !== undefined
        ? { cert: config.tlsCert, key: config.tlsKey }
        : undefined;
    const engine = chooseEngine(config.io, ctx.sources, log);
    const handler = new ConnectionHandler({
      options: {
        maxConnections,
        idleTimeoutMs: Math.round(config.idleTimeout * 1000),
        maxBuffered: config.maxBuffered,
        greeting:
          config.greeting === undefined
            ? undefined
            : renderGreeting(config.greeting, { instance: config.instance, hostname: hostname() }),
        faults: {
          delayMs: config.delayMs,
          closeAfterBytes: config.closeAfterBytes,
          closeAfterSeconds: config.closeAfterSeconds,
          closeWithReset: config.closeWithReset,
        },
        proxyTrusted: config.proxyTrusted,
        proxyTimeoutMs:
          config.proxyProtocol || config.proxyListen.length > 0
            ? Math.max(1, Math.round(config.proxyTimeout * 1000))
            : 0,
        fast: engine !== 'stream',
        raw: engine === 'raw',
        sources: {
          allow: config.allow,
          deny: config.deny,
          maxPerSource: config.maxPerSource,
          ipv6Prefix: config.perSourceIpv6Prefix,
        },
      },
      connections: ctx.connections,
      log,
      metrics: ctx.metrics,
    });

    // Every reason a PROXY header is refused for, at 0 from the start, where a listener takes PROXY headers.
    if (config.proxyProtocol || config.proxyListen.length > 0)
      ctx.metrics.preset('net_proxy_header_errors_total', { reason: ['untrusted', ...PROXY_PROTOCOL_REASONS] });

    const wanted: { endpoint: ListenEndpoint; kind: Kind }[] = [
      ...ctx.endpoints.map((endpoint) => ({ endpoint, kind: (config.proxyProtocol ? 'proxy' : 'plain') as Kind })),
      ...config.proxyListen.map((endpoint) => ({ endpoint, kind: 'proxy' as Kind })),
      ...config.tlsListen.map((endpoint) => ({ endpoint, kind: 'tls' as Kind })),
    ];
    let tlsContext: tls.SecureContextOptions | undefined;
    if (config.tlsListen.length > 0 && tlsFiles) {
      try {
        tlsContext = await loadTlsContext(tlsFiles);
      } catch (err) {
        // Readable files that are not a PEM pair (or do not match) are bad configuration too: exit 2.
        throw new ConfigError(
          `${settingName('tlsCert', ctx.sources)}/${settingName('tlsKey', ctx.sources)}`,
          undefined,
          `expected a PEM certificate chain and its private key (${(err as Error).message})`,
        );
      }
    }
    const servers: { server: net.Server; kind: Kind }[] = [];
    const tlsServers: tls.Server[] = [];
    try {
      for (const { endpoint, kind } of wanted) {
        let server: net.Server;
        if (kind === 'tls') {
          const tlsServer = createTlsServer(tlsContext ?? {}, TLS_HANDSHAKE_TIMEOUT_MS);
          // The source policy on the raw connection, before any handshake work (see ConnectionHandler.screen).
          tlsServer.on('connection', (raw: net.Socket) => handler.screen(raw));
          tlsServer.on('secureConnection', (socket: tls.TLSSocket) => handler.accept(socket, false, true));
          tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) =>
            handler.tlsError(err, socket),
          );
          tlsServers.push(tlsServer);
          server = tlsServer;
        } else {
          // allowHalfOpen: a client's FIN must not end our side before its echo is out (RFC 862 + half-close).
          // noDelay: Nagle + delayed ACK hold a small echo ~40 ms (measured: 22 ping-pongs/s instead of 12,000).
          // pauseOnConnect on the fast path: the accepted socket must not start reading before takeOver().
          const fast = kind === 'plain' && handler.fastPath;
          server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: fast });
          const proxied = kind === 'proxy';
          if (fast) server.on('connection', (socket: net.Socket) => handler.acceptFast(socket));
          else server.on('connection', (socket: net.Socket) => handler.accept(socket, proxied));
        }
        // Node closes a connection past maxConnections before creating a socket for it, and says so with 'drop'.
        // Per listener; the handler's check covers the sum over every listener.
        server.maxConnections = maxConnections;
        server.on('drop', () => handler.dropped());
        servers.push({ server, kind });
        await listen(endpoint, {
          server,
          backlog: config.backlog,
          ...(ctx.worker?.reusePort ? { reusePort: true } : {}),
        });
        // Only once listening: a failed bind (EADDRINUSE, EACCES) is reported by listen() as a start failure, not
        // as an accept error ("descriptors exhausted?").
        server.on('error', (err: NodeJS.ErrnoException) => handler.acceptError(err));
        // The fast path accepts on the listening handle (no throw-away Socket per connection; PROXY headers read in
        // the fast read callback) where it can; the 'connection' listener above stays for a handle that does not
        // look as expected.
        if (kind === 'plain' && handler.fastPath) {
          if (!handler.acceptRawOnHandle(server)) handler.acceptOnHandle(server);
        } else if (kind === 'proxy' && handler.fastPath) {
          if (!handler.acceptProxyRawOnHandle(server)) handler.acceptProxyOnHandle(server);
        }
      }
    } catch (err) {
      for (const { server } of servers) server.close();
      throw err;
    }

    const bound = servers.map(({ server, kind }) => ({ endpoint: formatEndpoint(boundEndpoint(server)), kind }));
    // The ready line lists plain endpoint strings (tools parse them); which ones need PROXY or TLS is said here,
    // once per process (the primary of --workers logs the ready line; a worker says it at debug).
    if (bound.some((b) => b.kind !== 'plain')) {
      const text = bound.map((b) => (b.kind === 'plain' ? b.endpoint : `${b.endpoint} (${b.kind.toUpperCase()})`));
      log[ctx.worker ? 'debug' : 'info']({ listeners: bound }, `listeners: ${text.join(', ')}`);
    }
    return {
      endpoints: bound.map((b) => b.endpoint),
      stopAccepting() {
        for (const { server } of servers) server.close();
        handler.finishAll();
      },
      async reload() {
        if (!tlsFiles || tlsServers.length === 0) return;
        // New handshakes use the new pair; established connections keep theirs.
        const context = await loadTlsContext(tlsFiles);
        for (const server of tlsServers) server.setSecureContext(context);
      },
    };
  },

  commands: {
    client: defineClientCommand({
      description:
        'Sends MESSAGE (the arguments joined by spaces, plus a newline) or, without one, standard input; prints what comes back; reports short echoes and how the peer closed. Without HOST:PORT it connects to the local server, 127.0.0.1:15000; with --json the echo is counted, not printed.',
      args: '[HOST:PORT [MESSAGE...]]',
      maxPositionals: 1000,
      options: clientOptions,
      run: runClient,
    }),
    check: defineClientCommand({
      description:
        'Health check: sends a random payload and verifies its echo byte for byte within --timeout; prints one line; exit 0 when healthy. Also takes HAProxy external-check arguments. Without HOST:PORT it checks the local server, 127.0.0.1:15000.',
      args: '[HOST:PORT] | <proxy_addr> <proxy_port> <server_addr> <server_port>',
      maxPositionals: 4,
      options: checkOptions,
      run: runCheck,
    }),
  },
});

/**
 * --io: how plain and PROXY connections are echoed. `raw` and `fast` stand on Node internals (@net/core's
 * node-internals.ts says whether they are there; raw handles need a few methods more, `rawHandleUnsupported`): asked
 * for where they are missing, either is bad configuration (exit 2, saying what is missing). `auto` takes raw, else
 * fast, else the stream path, with one warning when it falls back.
 */
function chooseEngine(
  io: 'auto' | 'stream' | 'fast' | 'raw',
  sources: Readonly<Record<string, string>>,
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
): 'raw' | 'fast' | 'stream' {
  let engine: 'raw' | 'fast' | 'stream' = 'stream';
  if (io !== 'stream') {
    const name = sources.io === 'env' ? 'ECHO_TCP_IO' : '--io';
    const internals = nodeInternalsAvailable();
    const noInternals = internals.available ? undefined : internals.reason;
    const noRaw = noInternals ?? rawHandleUnsupported();
    if (io === 'raw' && noRaw !== undefined) {
      const accepted = noInternals === undefined ? 'auto, stream or fast' : 'auto or stream';
      throw new ConfigError(name, 'raw', `expected ${accepted} on this Node ${process.version} (${noRaw})`);
    }
    if (io === 'fast' && noInternals !== undefined)
      throw new ConfigError(name, 'fast', `expected auto or stream on this Node ${process.version} (${noInternals})`);
    if (io === 'fast') engine = 'fast';
    else if (noRaw === undefined) engine = 'raw';
    else if (noInternals === undefined) {
      engine = 'fast';
      log.warn({ reason: noRaw }, 'raw handles unavailable on this Node: echoing on sockets built around the handles');
    } else log.warn({ reason: noInternals }, 'fast path unavailable on this Node: echoing through net.Socket streams');
  }
  log.info({ io: engine }, 'TCP I/O');
  return engine;
}

/** The flag or the environment variable a setting came from, as the user wrote it (for messages). */
function settingName(key: 'tlsListen' | 'tlsCert' | 'tlsKey', sources: Readonly<Record<string, string>>): string {
  const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return sources[key] === 'env' ? `ECHO_TCP_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}` : flag;
}

/**
 * TLS settings that only make sense together: listeners need the pair, and a pair without a TLS listener is
 * refused (exit 2) rather than ignored, because it almost always means a forgotten --tls-listen, and serving
 * plaintext where TLS was meant must not pass silently.
 */
function checkTlsSettings(
  config: { tlsListen: readonly unknown[]; tlsCert: string | undefined; tlsKey: string | undefined },
  sources: Readonly<Record<string, string>>,
): void {
  if (config.tlsListen.length > 0) {
    for (const key of ['tlsCert', 'tlsKey'] as const) {
      if (config[key] === undefined) {
        throw new ConfigError(
          settingName(key, sources),
          undefined,
          `expected a path to a PEM ${key === 'tlsCert' ? 'certificate chain' : 'private key'}: ${settingName('tlsListen', sources)} needs --tls-cert and --tls-key`,
        );
      }
    }
    return;
  }
  for (const key of ['tlsCert', 'tlsKey'] as const) {
    const value = config[key];
    if (value !== undefined) {
      throw new ConfigError(
        settingName(key, sources),
        value,
        `expected only together with --tls-listen (a certificate without a TLS listener would serve nothing over TLS)`,
      );
    }
  }
}
