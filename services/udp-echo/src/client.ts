/**
 * The `client` and `check` commands: send one datagram to a UDP echo server over a connected socket, wait for the
 * echo, retry on silence, and verify the reply byte for byte.
 *
 * A connected UDP socket (connect(2) on SOCK_DGRAM) is what lets the kernel report an ICMP port unreachable back to
 * us: Linux queues it as ECONNREFUSED on the socket's next receive (udp(7)), which an unconnected socket never sees.
 * A reply of zero bytes to a non-empty request is a failure, not an echo: nginx's UDP proxy sends exactly that when
 * its backend is dead (docs/measurements.md §4).
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import { performance } from 'node:perf_hooks';
import { decimal, defineCommand, type Endpoint, EXIT, formatEndpoint, integer, option, parseEndpoint } from '@net/core';
import { MAX_PAYLOAD_IPV4, MAX_PAYLOAD_IPV6 } from './config.js';

/** Exit codes of `client` (and their meaning for `check`, which folds every failure into 1). */
export const CLIENT_EXIT = {
  OK: EXIT.OK,
  /** Anything else: the host does not resolve, a socket error. */
  FAILURE: EXIT.FAILURE,
  USAGE: EXIT.USAGE,
  /** No reply within --timeout, after every retry. */
  TIMEOUT: 3,
  /** A reply that differs from the request (including an empty reply to a non-empty request). */
  MISMATCH: 4,
  /** ICMP port unreachable: nothing listens on that UDP port (ECONNREFUSED on the connected socket). */
  REFUSED: 5,
} as const;

/** The outcome of one {@link probe}. */
export type ProbeResult =
  | { kind: 'ok'; peer: string; bytes: number; rttMs: number; attempt: number; attempts: number }
  | { kind: 'mismatch'; peer: string; sent: number; received: number; firstDifference: number; attempt: number }
  | { kind: 'timeout'; peer: string; attempts: number; timeoutMs: number }
  | { kind: 'refused'; peer: string; attempts: number };

/** Options of {@link probe}. */
export interface ProbeOptions {
  /** How long each attempt waits for the echo. */
  timeoutMs: number;
  /** Attempts after the first one, on silence or ICMP unreachable (a mismatch is final). */
  retries: number;
}

/**
 * Sends `payload` to `target` and waits for its echo. Each attempt sends the same bytes, so a late echo of an earlier
 * attempt is as good as the current one.
 *
 * @throws {Error} when the target is a Unix endpoint, does not resolve, or the payload exceeds the largest UDP
 *   datagram of the address family (65,507 bytes over IPv4, 65,527 over IPv6).
 */
export async function probe(target: Endpoint, payload: Buffer, options: ProbeOptions): Promise<ProbeResult> {
  const { address, family, port } = await resolveTarget(target);
  const peer = family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
  const max = family === 6 ? MAX_PAYLOAD_IPV6 : MAX_PAYLOAD_IPV4;
  if (payload.length > max) {
    throw new UsageError(
      `a ${payload.length}-byte message does not fit in one UDP datagram over IPv${family} (at most ${max} bytes)`,
    );
  }
  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.connect(port, address, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    let refused = 0;
    const attempts = options.retries + 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const started = performance.now();
      const outcome = await exchange(socket, payload, options.timeoutMs);
      const rttMs = performance.now() - started;
      if (outcome.kind === 'reply') {
        const reply = outcome.reply;
        if (reply.equals(payload)) return { kind: 'ok', peer, bytes: reply.length, rttMs, attempt, attempts };
        return {
          kind: 'mismatch',
          peer,
          sent: payload.length,
          received: reply.length,
          firstDifference: firstDifference(payload, reply),
          attempt,
        };
      }
      if (outcome.kind === 'refused') refused++;
    }
    // The last attempt decides: a server that came up in between would have answered.
    return refused === attempts
      ? { kind: 'refused', peer, attempts }
      : { kind: 'timeout', peer, attempts, timeoutMs: options.timeoutMs };
  } finally {
    socket.close();
  }
}

type Exchange = { kind: 'reply'; reply: Buffer } | { kind: 'timeout' } | { kind: 'refused' };

function exchange(socket: dgram.Socket, payload: Buffer, timeoutMs: number): Promise<Exchange> {
  return new Promise<Exchange>((resolve, reject) => {
    const done = (result: Exchange | Error) => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      socket.off('error', onError);
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onMessage = (reply: Buffer) => done({ kind: 'reply', reply });
    const onError = (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? { kind: 'refused' } : err);
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
    socket.on('message', onMessage);
    socket.on('error', onError);
    socket.send(payload, (err) => {
      if (err) onError(err as NodeJS.ErrnoException);
    });
  });
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** A usage problem found after parsing (e.g. a message too large for the address family): exit code 2. */
class UsageError extends Error {}

async function resolveTarget(target: Endpoint): Promise<{ address: string; family: 4 | 6; port: number }> {
  switch (target.kind) {
    case 'unix':
      throw new UsageError(`${formatEndpoint(target)}: UDP echo needs host:port, not a Unix socket`);
    case 'ip':
      return {
        address: target.scopeId === undefined ? target.address : `${target.address}%${target.scopeId}`,
        family: target.family,
        port: target.port,
      };
    case 'any':
    case 'host': {
      // ':port' means this host, as core's connect() reads it.
      const host = target.kind === 'any' ? 'localhost' : target.host;
      const [first] = await dns.lookup(host, { all: true, verbatim: true });
      if (first === undefined) throw new Error(`${host} has no address`);
      return { address: first.address, family: first.family === 6 ? 6 : 4, port: target.port };
    }
  }
}

function parseTarget(positionals: string[]): Endpoint {
  const [target] = positionals;
  if (target === undefined) throw new UsageError('missing HOST:PORT, e.g. 127.0.0.1:15000 or [::1]:7');
  return parseEndpoint(target);
}

const probeOptions = {
  timeout: option({
    type: decimal(0.001, 3600, 'seconds'),
    default: 1,
    description: 'How long each attempt waits for the echo',
  }),
  retries: option({
    type: integer(0, 100),
    default: 2,
    description: 'Attempts after the first on silence or ICMP port unreachable',
  }),
};

async function runProbe(
  positionals: string[],
  payload: Buffer | undefined,
  config: { timeout: number; retries: number },
) {
  const target = parseTarget(positionals);
  return probe(target, payload ?? Buffer.from(`udp-echo probe ${randomBytes(8).toString('hex')}`), {
    timeoutMs: config.timeout * 1000,
    retries: config.retries,
  });
}

/** Runs a command body, turning usage problems into exit code 2 and other errors into 1, with one line on stderr. */
async function guarded(name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (err) {
    process.stderr.write(`udp-echo ${name}: ${(err as Error).message}\n`);
    return err instanceof UsageError || (err as { code?: string }).code === 'NET_ERR_BAD_ENDPOINT'
      ? CLIENT_EXIT.USAGE
      : CLIENT_EXIT.FAILURE;
  }
}

function describe(result: ProbeResult): string {
  switch (result.kind) {
    case 'ok':
      return `${result.bytes} bytes from ${result.peer}: identical, rtt ${result.rttMs.toFixed(3)} ms (attempt ${result.attempt} of ${result.attempts})`;
    case 'mismatch':
      return result.received === 0 && result.sent > 0
        ? `${result.peer} answered ${result.sent} bytes with an empty datagram (a proxy whose backend is down?)`
        : `reply from ${result.peer} differs: sent ${result.sent} bytes, received ${result.received}, first difference at byte ${result.firstDifference}`;
    case 'timeout':
      return `no reply from ${result.peer} after ${result.attempts} attempts of ${result.timeoutMs} ms`;
    case 'refused':
      return `${result.peer} refused: ICMP port unreachable (nothing listens on that UDP port), ${result.attempts} attempts`;
  }
}

const EXIT_OF = {
  ok: CLIENT_EXIT.OK,
  mismatch: CLIENT_EXIT.MISMATCH,
  timeout: CLIENT_EXIT.TIMEOUT,
  refused: CLIENT_EXIT.REFUSED,
} as const;

/** `udp-echo client HOST:PORT [MESSAGE...]`. */
export const clientCommand = defineCommand({
  description:
    'Send MESSAGE (or --size random bytes, or a short probe text) to a UDP echo server, wait for the echo, verify it byte for byte and print the round-trip time.',
  args: 'HOST:PORT [MESSAGE...]',
  exitCodes: {
    [CLIENT_EXIT.OK]: 'identical echo',
    [CLIENT_EXIT.FAILURE]: 'other failure',
    [CLIENT_EXIT.USAGE]: 'bad usage',
    [CLIENT_EXIT.TIMEOUT]: 'timeout',
    [CLIENT_EXIT.MISMATCH]: 'reply differs (also an empty reply)',
    [CLIENT_EXIT.REFUSED]: 'ICMP port unreachable',
  },
  maxPositionals: 1000,
  options: {
    ...probeOptions,
    size: option({
      type: integer(0, MAX_PAYLOAD_IPV6),
      description: 'Send this many random bytes instead of MESSAGE',
    }),
  },
  run: ({ config, positionals }) =>
    guarded('client', async () => {
      const words = positionals.slice(1);
      if (config.size !== undefined && words.length > 0)
        throw new UsageError('give either MESSAGE or --size, not both');
      const payload =
        config.size !== undefined
          ? randomBytes(config.size)
          : words.length > 0
            ? Buffer.from(words.join(' '))
            : undefined;
      const result = await runProbe(positionals, payload, config);
      (result.kind === 'ok' ? process.stdout : process.stderr).write(`${describe(result)}\n`);
      return EXIT_OF[result.kind];
    }),
});

/** `udp-echo check HOST:PORT`: exit 0 when the echo is identical, 1 otherwise (2 for a malformed HOST:PORT). */
export const checkCommand = defineCommand({
  description: 'Health check: send a probe datagram and exit 0 if the identical echo comes back in time, else 1.',
  args: 'HOST:PORT',
  maxPositionals: 1,
  exitCodes: { [EXIT.OK]: 'identical echo', [EXIT.FAILURE]: 'any failure', [EXIT.USAGE]: 'bad usage' },
  options: probeOptions,
  run: ({ config, positionals }) =>
    guarded('check', async () => {
      const result = await runProbe(positionals, undefined, config);
      if (result.kind === 'ok') {
        process.stdout.write(`ok: ${describe(result)}\n`);
        return EXIT.OK;
      }
      process.stderr.write(`fail: ${describe(result)}\n`);
      return EXIT.FAILURE;
    }),
});
