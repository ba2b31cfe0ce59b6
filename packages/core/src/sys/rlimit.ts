/**
 * The descriptor limit (RLIMIT_NOFILE) and what it means for a connection limit. Every accepted connection holds a
 * descriptor; past the soft limit accept(2) fails with EMFILE, and libuv then accepts and closes the pending
 * connections with its reserve descriptor without telling Node (uv__emfile_trick): clients see a connection that
 * closes at once and nothing counts or logs it. A --max-connections above the limit is therefore clamped, so the
 * service rejects (and counts) connections before the kernel does it invisibly.
 */
import type { Logger } from '../runtime/logger.js';
import { errnoError, loadLibc } from './sockopt.js';

/** RLIMIT_NOFILE on Linux (asm-generic/resource.h; x86, arm, riscv; not MIPS, where it is 5). */
const RLIMIT_NOFILE = 7;
/** RLIM_INFINITY: all bits set in a 64-bit rlim_t. */
const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/**
 * Descriptors kept out of the connection limit: the listeners, stdio, the event loop's epoll and pipes, libuv's
 * EMFILE reserve, the admin endpoint and its scrapes, log files, DNS, a TLS certificate reload. 64 is ample for
 * those (a running echo-tcp holds about 25).
 */
export const DESCRIPTOR_RESERVE = 64;

/** A process's RLIMIT_NOFILE; `Infinity` for unlimited. */
export interface DescriptorLimit {
  soft: number;
  hard: number;
}

const limitsScratch = Buffer.alloc(16);

/**
 * Reads this process's descriptor limit with getrlimit(RLIMIT_NOFILE).
 * @example const { soft, hard } = descriptorLimit(); // { soft: 1024, hard: 524288 } under systemd's defaults
 * @throws {SocketOptionUnsupportedError} `NET_ERR_SOCKOPT_UNSUPPORTED` off Linux or without koffi.
 * @throws {Error} with the errno code when getrlimit fails (it does not on Linux).
 */
export function descriptorLimit(): DescriptorLimit {
  const lib = loadLibc('RLIMIT_NOFILE');
  if (lib.getrlimit(RLIMIT_NOFILE, limitsScratch) !== 0) throw errnoError(lib, 'getrlimit');
  const value = (offset: number) => {
    const raw = limitsScratch.readBigUInt64LE(offset);
    return raw === RLIM_INFINITY ? Number.POSITIVE_INFINITY : Number(raw);
  };
  return { soft: value(0), hard: value(8) };
}

/** The descriptor limit as a log field: `unlimited` instead of Infinity (JSON has none). */
export function describeDescriptorLimit(limit: DescriptorLimit): { soft: number | string; hard: number | string } {
  const text = (n: number) => (Number.isFinite(n) ? n : 'unlimited');
  return { soft: text(limit.soft), hard: text(limit.hard) };
}

const decided = new Map<number, number>();

/**
 * The connection limit a TCP service can really enforce: `configured`, or the soft descriptor limit minus
 * {@link DESCRIPTOR_RESERVE} (at least 1) when that is lower. The first call that clamps a given value logs a
 * warning (at debug with `inWorker`: in a `--workers` worker the primary has said it); later calls return the same
 * number silently. Where the limit cannot be read (not Linux), `configured` is returned unchanged. The service
 * runtime calls it at start and hands the result to `serve` as `ctx.limits.maxConnections`.
 *
 * @example server.maxConnections = effectiveMaxConnections(config.maxConnections, log);
 */
export function effectiveMaxConnections(
  configured: number,
  log: Logger,
  options: { limit?: DescriptorLimit; reserve?: number; inWorker?: boolean } = {},
): number {
  const known = options.limit === undefined ? decided.get(configured) : undefined;
  if (known !== undefined) return known;
  let limit: DescriptorLimit;
  try {
    limit = options.limit ?? descriptorLimit();
  } catch {
    return configured; // cannot know: trust the setting
  }
  const reserve = options.reserve ?? DESCRIPTOR_RESERVE;
  const usable = Math.max(1, limit.soft - reserve);
  const effective = Math.min(configured, usable);
  if (options.limit === undefined) decided.set(configured, effective);
  if (effective < configured) {
    log[options.inWorker === true ? 'debug' : 'warn'](
      { maxConnections: configured, effective, descriptorLimit: describeDescriptorLimit(limit), reserve },
      `--max-connections ${configured} exceeds the descriptor limit (RLIMIT_NOFILE soft ${limit.soft}) minus ` +
        `${reserve} kept for listeners, logs and the admin endpoint: at most ${effective} connections are served; ` +
        'raise the limit (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=) to serve more',
    );
  }
  return effective;
}
