/**
 * Starting a service and waiting for its readiness line: the runtime logs `ready: listening on ...` with the
 * `endpoints` it listens on and, with `--admin-port`, its `admin` URL (docs/service-contract.md, rule 2) once it
 * accepts. Every suite that starts a service, core's fixtures and the infra proofs included, waits through here.
 */
import { killGroup, type LoggedProcess, type LogLine, type SpawnOptions, spawnNode } from './logged-process.js';

/** Where a ready service listens, from its ready line. */
export interface Ready {
  /** Port of the first endpoint of the ready line (NaN for a Unix socket). */
  port: number;
  /** Every endpoint of the ready line, as the service formatted them. */
  endpoints: string[];
  /** Port of the admin endpoint when `--admin-port` was given. */
  adminPort: number | undefined;
  /** `http://host:port` of the admin endpoint when `--admin-port` was given. */
  adminUrl: string | undefined;
  /** The ready line itself. */
  ready: LogLine;
}

/** A running service started by {@link startService}. */
export type ServiceProcess = LoggedProcess & Ready;

/** The port at the end of a formatted endpoint (`127.0.0.1:7`, `[::1]:7`); NaN for a Unix socket. */
export function portOf(endpoint: string): number {
  const m = /:(\d+)$/.exec(endpoint);
  return m ? Number(m[1]) : Number.NaN;
}

/** True for the readiness line of the runtime (`ready: listening on ...`). */
export function isReadyLine(line: LogLine): boolean {
  return typeof line.msg === 'string' && line.msg.startsWith('ready:');
}

/**
 * Resolves with where `p` listens once its ready line is logged.
 * @throws when the process exits or `timeoutMs` (default 10 000) passes first; the process group is SIGKILLed then,
 *   and the message carries its stderr and last lines.
 */
export async function waitForReady(p: LoggedProcess, what: string, timeoutMs = 10_000): Promise<Ready> {
  let ready: LogLine;
  try {
    ready = await p.waitForLine(isReadyLine, timeoutMs);
  } catch (err) {
    killGroup(p.proc);
    throw new Error(`${what} did not become ready: ${(err as Error).message}`);
  }
  const endpoints = Array.isArray(ready.endpoints) ? (ready.endpoints as string[]) : [];
  const adminUrl = typeof ready.admin === 'string' ? ready.admin : undefined;
  return {
    port: portOf(endpoints[0] ?? ''),
    endpoints,
    adminPort: adminUrl === undefined ? undefined : portOf(adminUrl),
    adminUrl,
    ready,
  };
}

/**
 * Starts the node `entry` (a built bin, a fixture) with `args` and resolves once its ready line is logged.
 * @throws when the process exits or `options.timeoutMs` passes first (the message carries its stderr and last lines).
 */
export async function startService(
  entry: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<ServiceProcess> {
  const p = spawnNode(entry, args, options);
  const ready = await waitForReady(p, `${entry} ${args.join(' ')}`, options.timeoutMs);
  return Object.assign(p, ready);
}
