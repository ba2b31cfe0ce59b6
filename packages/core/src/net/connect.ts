/**
 * Connecting to an {@link Endpoint}: resolve, then race the addresses Happy Eyeballs style (RFC 8305), keeping a
 * record of every failure so the final error says what was tried. Implemented here rather than with Node's
 * `autoSelectFamily` because that differs between Node 20 and 24 and reports only the last error.
 */
import dns from 'node:dns';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { AbortedError, type ConnectAttempt, ConnectError, TimeoutError } from '../errors.js';
import { type Endpoint, formatEndpoint, toEndpoint, unixSocketPath } from './endpoint.js';

/** Resolves a host name to every address, in the order they should be tried. */
export type LookupAll = (host: string, family: 0 | 4 | 6) => Promise<readonly dns.LookupAddress[]>;

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** Deadline for the whole connect, resolution included. A connection completing after it is not used. */
  timeoutMs?: number;
  /** Aborting destroys every attempt and rejects with AbortedError. */
  signal?: AbortSignal;
  /** Disable Nagle on the returned socket (default true: request/response traffic should not wait 40 ms). */
  noDelay?: boolean;
  /** Only try IPv4 (4) or IPv6 (6) addresses; 0 (default) tries both. */
  family?: 0 | 4 | 6;
  /** RFC 8305 §5 "Connection Attempt Delay" before the next address starts; default 250 ms (recommended value). */
  attemptDelayMs?: number;
  /** Resolver; defaults to `dns.lookup(host, { all: true, verbatim: true, family })`. Tests and custom DNS inject one. */
  lookup?: LookupAll;
}

const DEFAULT_ATTEMPT_DELAY_MS = 250;

interface Candidate {
  label: string;
  options: net.NetConnectOpts;
}

/**
 * Connects to `target` and resolves with a connected socket that carries no listeners from this function.
 *
 * A host name is resolved to every address. Attempts start one after another, alternating address families
 * starting with the resolver's first (RFC 8305 §4); the next starts when the previous fails or has not connected
 * within `attemptDelayMs`. The first to connect wins and the others are destroyed. An `any` endpoint (`:7`)
 * connects to `localhost`; a Unix endpoint connects directly.
 *
 * @example const socket = await connect('localhost:7', { timeoutMs: 5_000 });
 * @throws {BadEndpointError} `NET_ERR_BAD_ENDPOINT` for an invalid endpoint.
 * @throws {UnixPathTooLongError} `NET_ERR_UNIX_PATH_TOO_LONG` for a Unix path over 107 bytes.
 * @throws {ConnectError} `NET_ERR_CONNECT` when resolution fails or every address fails; `attempts` lists each
 *   address tried (or the host name, for a resolver error) with its error (`code` such as ECONNREFUSED).
 * @throws {TimeoutError} `NET_ERR_TIMEOUT` when `timeoutMs` passes first; `cause` is a ConnectError of the attempts
 *   that had already failed, if any.
 * @throws {AbortedError} `NET_ERR_ABORTED` when `signal` aborts first.
 * @throws {RangeError} for a negative or non-finite `timeoutMs` or `attemptDelayMs`.
 */
export async function connect(target: Endpoint | string, options: ConnectOptions = {}): Promise<net.Socket> {
  const endpoint = toEndpoint(target);
  const label = formatEndpoint(endpoint);
  const { signal, timeoutMs, family = 0 } = options;
  const attemptDelayMs = options.attemptDelayMs ?? DEFAULT_ATTEMPT_DELAY_MS;
  checkDuration('timeoutMs', timeoutMs);
  checkDuration('attemptDelayMs', attemptDelayMs);
  if (signal?.aborted) throw new AbortedError(`connect to ${label}`, { cause: signal.reason });
  const lookup = options.lookup ?? defaultLookup;

  return await new Promise<net.Socket>((resolve, reject) => {
    const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeoutMs;
    const failures: ConnectAttempt[] = [];
    const pending = new Map<net.Socket, () => void>(); // socket -> removes our listeners
    let candidates: Candidate[] = [];
    let next = 0;
    let settled = false;
    let staggerTimer: NodeJS.Timeout | undefined;
    const deadlineTimer = timeoutMs === undefined ? undefined : setTimeout(onDeadline, timeoutMs);

    signal?.addEventListener('abort', onAbort, { once: true });

    function settle(err: Error | undefined, winner?: net.Socket): void {
      if (settled) return;
      settled = true;
      clearTimeout(staggerTimer);
      clearTimeout(deadlineTimer);
      signal?.removeEventListener('abort', onAbort);
      for (const [socket, detach] of pending) {
        detach();
        if (socket === winner) continue;
        // A loser may already have an error queued for the next tick; keep it from becoming uncaught.
        socket.on('error', ignore);
        socket.destroy();
      }
      pending.clear();
      if (winner !== undefined) {
        winner.setNoDelay(options.noDelay ?? true);
        resolve(winner);
      } else {
        reject(err);
      }
    }

    function onAbort(): void {
      settle(new AbortedError(`connect to ${label}`, { cause: signal?.reason }));
    }

    function onDeadline(): void {
      const cause = failures.length > 0 ? { cause: new ConnectError(label, failures) } : undefined;
      settle(new TimeoutError(`connect to ${label}`, timeoutMs ?? 0, cause));
    }

    function startNext(): void {
      clearTimeout(staggerTimer);
      const candidate = candidates[next++];
      if (settled || candidate === undefined) return;
      const socket = net.connect(candidate.options);
      const onConnect = () => {
        // The deadline timer may not have run yet when the loop was busy; honour the deadline anyway, which
        // also makes timeoutMs: 0 always time out instead of racing the kernel.
        if (performance.now() >= deadline) onDeadline();
        else settle(undefined, socket);
      };
      const onError = (error: Error) => {
        detach();
        pending.delete(socket);
        socket.destroy();
        failures.push({ address: candidate.label, error });
        if (settled) return;
        // RFC 8305 §5: a failed attempt starts the next one at once instead of waiting out the delay.
        if (next < candidates.length) startNext();
        else if (pending.size === 0) settle(new ConnectError(label, failures));
      };
      const detach = () => {
        socket.off('connect', onConnect);
        socket.off('error', onError);
      };
      socket.once('connect', onConnect);
      socket.once('error', onError);
      pending.set(socket, detach);
      if (next < candidates.length) staggerTimer = setTimeout(startNext, attemptDelayMs);
    }

    const start = (list: Candidate[]) => {
      if (settled) return;
      candidates = list;
      if (list.length === 0) settle(new ConnectError(label, failures));
      else startNext();
    };

    switch (endpoint.kind) {
      case 'unix':
        start([{ label, options: { path: unixSocketPath(endpoint) } }]);
        break;
      case 'ip':
        start(
          family === 0 || family === endpoint.family
            ? [candidate(endpoint.address, endpoint.family, endpoint.port, endpoint.scopeId)]
            : [],
        );
        break;
      case 'host':
      case 'any': {
        const host = endpoint.kind === 'host' ? endpoint.host : 'localhost';
        // Through then(): a resolver that throws synchronously is recorded like one that rejects.
        Promise.resolve(host)
          .then((name) => lookup(name, family))
          .then(
            (addresses) => {
              const usable = addresses.filter((a) => family === 0 || a.family === family);
              start(interleaveFamilies(usable).map((a) => candidate(a.address, a.family, endpoint.port)));
            },
            (error: unknown) => {
              failures.push({ address: host, error: error instanceof Error ? error : new Error(String(error)) });
              settle(new ConnectError(label, failures));
            },
          );
        break;
      }
    }
  });
}

function candidate(address: string, family: number, port: number, scopeId?: string): Candidate {
  const host = scopeId === undefined ? address : `${address}%${scopeId}`;
  const v6 = family === 6 || net.isIPv6(address);
  // An IP literal as host makes net.connect skip its own lookup and its autoSelectFamily logic.
  return { label: v6 ? `[${host}]:${port}` : `${host}:${port}`, options: { host, port, family: v6 ? 6 : 4 } };
}

/** RFC 8305 §4: alternate families, starting with the family of the resolver's first answer. */
function interleaveFamilies(addresses: readonly dns.LookupAddress[]): dns.LookupAddress[] {
  const firstFamily = addresses[0]?.family;
  const preferred = addresses.filter((a) => a.family === firstFamily);
  const other = addresses.filter((a) => a.family !== firstFamily);
  const out: dns.LookupAddress[] = [];
  for (let i = 0; i < Math.max(preferred.length, other.length); i++) {
    const p = preferred[i];
    const o = other[i];
    if (p !== undefined) out.push(p);
    if (o !== undefined) out.push(o);
  }
  return out;
}

function defaultLookup(host: string, family: 0 | 4 | 6): Promise<readonly dns.LookupAddress[]> {
  // verbatim: the resolver's (RFC 6724) order, not Node 20's default IPv4-first reordering.
  return dns.promises.lookup(host, { all: true, verbatim: true, family });
}

function checkDuration(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
    throw new RangeError(`invalid ${name} ${value}: expected a finite number of milliseconds >= 0`);
  }
}

function ignore(): void {}
