/**
 * What the `--workers` primary (cluster.ts) and its workers (serve.ts) share: the environment a worker is forked
 * with, and the messages both send over node:cluster's channel. Written and read here only, so that the two sides
 * cannot drift apart.
 */
import cluster from 'node:cluster';
import { type Endpoint, formatEndpoint, parseEndpoint } from '../net/endpoint.js';

/** The variables a worker is forked with (the primary also passes its own environment and command line). */
const ENV = {
  /** The worker's number, 1..count; a restarted worker keeps the number of the one it replaces. */
  ID: 'NET_WORKER_ID',
  COUNT: 'NET_WORKER_COUNT',
  /** `1`: each worker binds its own socket with SO_REUSEPORT; `0`: node:cluster shares the primary's. */
  REUSEPORT: 'NET_WORKER_REUSEPORT',
  /** Under SO_REUSEPORT: the endpoints, as JSON strings, with any port 0 made concrete by the primary. */
  ENDPOINTS: 'NET_WORKER_ENDPOINTS',
} as const;

/** Who a worker is, as `ServeContext.worker` says it. */
export interface WorkerInfo {
  id: number;
  count: number;
  /** Listen with `reusePort`: each worker owns its listening socket and the kernel spreads the load. */
  reusePort: boolean;
}

/** What every worker of one primary shares. */
export interface WorkerSettings {
  count: number;
  reusePort: boolean;
  /** The concrete endpoints every worker binds under SO_REUSEPORT (no port 0). */
  endpoints?: readonly Endpoint[];
}

/** The environment of worker `id` (merged into the primary's by `cluster.fork`). */
export function workerEnv(id: number, settings: WorkerSettings): Record<string, string> {
  return {
    [ENV.ID]: String(id),
    [ENV.COUNT]: String(settings.count),
    [ENV.REUSEPORT]: settings.reusePort ? '1' : '0',
    ...(settings.endpoints ? { [ENV.ENDPOINTS]: JSON.stringify(settings.endpoints.map(formatEndpoint)) } : {}),
  };
}

/** True in a process forked by a `--workers` primary (a cluster worker of some other program does not count). */
export function isServiceWorker(env: NodeJS.ProcessEnv = process.env): boolean {
  return cluster.isWorker && env[ENV.ID] !== undefined;
}

/** This worker's identity, or undefined outside a `--workers` worker. */
export function readWorker(env: NodeJS.ProcessEnv = process.env): WorkerInfo | undefined {
  if (!isServiceWorker(env)) return undefined;
  return { id: Number(env[ENV.ID]), count: Number(env[ENV.COUNT]), reusePort: env[ENV.REUSEPORT] === '1' };
}

/**
 * The endpoints the primary chose for this worker (under SO_REUSEPORT), or undefined when the worker takes them from
 * its own command line. Throws on a value that does not parse.
 */
export function workerEndpoints(env: NodeJS.ProcessEnv = process.env): Endpoint[] | undefined {
  const json = isServiceWorker(env) ? env[ENV.ENDPOINTS] : undefined;
  return json ? (JSON.parse(json) as string[]).map((e) => parseEndpoint(e)) : undefined;
}

/** Worker -> primary: the service listens (sent once per worker start). */
export interface ReadyMessage {
  type: 'net:ready';
  endpoints: string[];
}

/** Primary -> worker: send your registry (prom-client's JSON form). */
export interface MetricsRequest {
  type: 'net:metrics-req';
  id: number;
}

/** Worker -> primary: the answer to the request with the same id. */
export interface MetricsResponse {
  type: 'net:metrics-res';
  id: number;
  metrics?: object[];
  error?: string;
}

type Message = ReadyMessage | MetricsRequest | MetricsResponse;

/** Whether `message` (anything that came over the channel) is one of ours of the given type. */
export function isMessage<T extends Message['type']>(
  message: unknown,
  type: T,
): message is Extract<Message, { type: T }> {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type;
}
