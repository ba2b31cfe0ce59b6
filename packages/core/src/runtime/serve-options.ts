/**
 * The settings every service shares (the command-line contract of docs/service-contract.md), and the shared
 * TCP limits that the TCP services reuse. A service's schema spreads these and adds its own.
 */

import { formatListenEndpoint, type ListenEndpoint, parseEndpoint, parseListenEndpoint } from '../net/endpoint.js';
import { option, type Schema } from './config.js';
import { boolean, custom, decimal, integer, list, oneOf, port, string } from './config-types.js';
import { defaultInstance, LOG_FORMATS, LOG_LEVELS } from './logger.js';

const ENDPOINT_ACCEPTS =
  'an endpoint such as 127.0.0.1:7, [::1]:7, [fe80::1%eth0]:7, :7 (every interface), unix:/run/x.sock, or a socket passed by socket activation: fd:3, systemd:NAME';

/** A value type for one endpoint to listen on (socket-activated ones included). */
export const endpointType = custom<ListenEndpoint>(
  ENDPOINT_ACCEPTS,
  (raw) => parseListenEndpoint(raw),
  (e) => formatListenEndpoint(e),
);

/** Settings shared by every service's `serve` command. */
export function commonServeOptions(defaultPort: number) {
  return {
    host: option({
      type: string({ pattern: /^[^\s/]+$/, accepts: 'a host name or IP address (:: for every interface, dual stack)' }),
      default: '127.0.0.1',
      description: 'Address to listen on with --port',
    }),
    port: option({ type: port(), default: defaultPort, short: 'p', description: 'Port to listen on' }),
    listen: option({
      type: list(endpointType),
      repeatable: true,
      default: [] as ListenEndpoint[],
      description: 'More endpoints to listen on; when given without --host/--port, only these are used',
    }),
    adminPort: option({
      type: port(),
      description: 'Port of the admin HTTP endpoint (/healthz, /readyz, /metrics); off when unset',
    }),
    adminHost: option({
      type: string({ pattern: /^[^\s/]+$/, accepts: 'a host name or IP address' }),
      default: '127.0.0.1',
      description: 'Address of the admin HTTP endpoint',
    }),
    logLevel: option({ type: oneOf(LOG_LEVELS), default: 'info', description: 'Log level' }),
    logFormat: option({
      type: oneOf(LOG_FORMATS),
      default: 'auto',
      description: 'Log format: JSON lines, pretty, or auto (pretty when stdout is a terminal)',
    }),
    instance: option({
      type: string({ pattern: /^[\w.:@-]{1,128}$/, accepts: '1 to 128 letters, digits, or . _ : @ -' }),
      default: defaultInstance(),
      description: 'Instance id on every log line and in net_service_info (host name by default)',
    }),
    drainTimeout: option({
      type: decimal(0, 3600, 'seconds'),
      default: 10,
      description: 'On SIGTERM/SIGINT, how long open connections may finish before they are closed',
    }),
    drainDelay: option({
      type: decimal(0, 3600, 'seconds'),
      default: 0,
      description:
        'On SIGTERM/SIGINT, keep accepting and serving for this long with /readyz at 503 (so load balancers drop the instance first), then drain',
    }),
  } satisfies Schema;
}

/**
 * The settings a long-running command (`defineCommand({ runtime: true, ... })`) gets from the runtime: the admin
 * endpoint and logging of `serve`, without the listening ones.
 */
export function commonCommandOptions() {
  const { adminPort, adminHost, logLevel, logFormat, instance } = commonServeOptions(0);
  return { adminPort, adminHost, logLevel, logFormat, instance } satisfies Schema;
}

/**
 * Limits shared by the TCP services, with their defaults. Under the runtime, `serve` enforces
 * `ctx.limits.maxConnections`: `--max-connections` lowered to what the descriptor limit allows (rlimit.ts), while
 * `ctx.config.maxConnections` stays as given.
 */
export function tcpLimitOptions(defaults: { maxConnections: number; idleTimeout: number }) {
  return {
    maxConnections: option({
      type: integer(1, 1_000_000),
      default: defaults.maxConnections,
      description: 'Open connections at most; past it new connections are closed at once and counted',
    }),
    idleTimeout: option({
      type: decimal(0, 86_400, 'seconds'),
      default: defaults.idleTimeout,
      description: 'Close a connection with no traffic for this long (0: never)',
    }),
  } satisfies Schema;
}

const WORKERS_ACCEPTS = 'a number of processes from 1 to 256, or auto (one per CPU)';

/** The `--workers` setting: a count or `auto` (one per CPU). */
export function workersOption() {
  return {
    workers: option({
      type: custom<number | 'auto'>(WORKERS_ACCEPTS, (raw) => {
        if (raw.trim() === 'auto') return 'auto';
        // integer()'s own message ("expected an integer from 1 to 256") would hide that `auto` is accepted too.
        try {
          return integer(1, 256).parse(raw);
        } catch {
          throw new Error(`expected ${WORKERS_ACCEPTS}`);
        }
      }),
      default: 1 as number | 'auto',
      description: 'Worker processes sharing the listening port (SO_REUSEPORT where Node has it, else node:cluster)',
    }),
  } satisfies Schema;
}

/** Re-exported so services can declare their own settings without importing two modules. */
export { boolean, custom, decimal, integer, list, oneOf, option, port, string };

/**
 * The endpoints `serve` listens on: --host/--port, plus every --listen; only the --listen ones when they are
 * given and neither --host nor --port was set explicitly.
 */
export function serveEndpoints(
  config: { host: string; port: number; listen: ListenEndpoint[] },
  sources: { host: string; port: string },
): ListenEndpoint[] {
  const explicit = sources.host !== 'default' || sources.port !== 'default';
  if (config.listen.length > 0 && !explicit) return config.listen;
  const host = config.host;
  const main =
    host === '::' || host === '*'
      ? `:${config.port}`
      : host.includes(':')
        ? `[${host}]:${config.port}`
        : `${host}:${config.port}`;
  return [parseEndpoint(main), ...config.listen];
}
