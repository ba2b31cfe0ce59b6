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
import {
  BadReplyError,
  type ClientRunInput,
  ConfigError,
  decimal,
  defineClientCommand,
  type Endpoint,
  formatEndpoint,
  integer,
  option,
  TimeoutError,
} from '@net/core';
import { MAX_PAYLOAD_IPV4, MAX_PAYLOAD_IPV6 } from './config.js';

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
 * @throws {ConfigError} when the target is a Unix endpoint or the payload exceeds the largest UDP datagram of the
 *   address family (65,507 bytes over IPv4, 65,527 over IPv6).
 * @throws {Error} with a resolver's `code` (ENOTFOUND, ...) when the name does not resolve.
 */
export async function probe(target: Endpoint, payload: Buffer, options: ProbeOptions): Promise<ProbeResult> {
  const { address, family, port } = await resolveTarget(target);
  const peer = family === 6 ? `[${address}]:${port}` : `${address}:${port}`;
  const max = family === 6 ? MAX_PAYLOAD_IPV6 : MAX_PAYLOAD_IPV4;
  if (payload.length > max) {
    throw new ConfigError(
      'message size',
      `${payload.length} bytes`,
      `expected at most ${max} bytes, the largest UDP datagram over IPv${family}`,
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

async function resolveTarget(target: Endpoint): Promise<{ address: string; family: 4 | 6; port: number }> {
  switch (target.kind) {
    case 'unix':
      throw new ConfigError(
        'HOST:PORT',
        formatEndpoint(target),
        'expected a host and port: UDP echo has no Unix socket',
      );
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
      if (first === undefined) throw Object.assign(new Error(`${host} has no address`), { code: 'ENODATA' });
      return { address: first.address, family: first.family === 6 ? 6 : 4, port: target.port };
    }
  }
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

const clientOptions = {
  ...probeOptions,
  size: option({
    type: integer(0, MAX_PAYLOAD_IPV6),
    description: 'Send this many random bytes instead of MESSAGE',
  }),
};

/**
 * Probes the target and fills the report; resolves on an identical echo, else throws the error that decides the exit
 * code (client-exit.ts): 1 for a reply that differs (an empty one too), 69 for ICMP port unreachable, 75 for silence.
 */
async function runProbe(
  input: ClientRunInput<typeof probeOptions>,
  payload: Buffer | undefined,
): Promise<Extract<ProbeResult, { kind: 'ok' }>> {
  const { config, report } = input;
  const target = input.target(input.positionals[0]);
  report.target = formatEndpoint(target);
  const result = await probe(target, payload ?? Buffer.from(`udp-echo probe ${randomBytes(8).toString('hex')}`), {
    timeoutMs: config.timeout * 1000,
    retries: config.retries,
  });
  const { kind: _, ...fields } = result;
  Object.assign(report, fields);
  switch (result.kind) {
    case 'ok':
      return result;
    case 'mismatch':
      throw new BadReplyError(result.peer, describe(result));
    case 'timeout':
      // Every attempt waited its --timeout: that is the timeout the error names.
      throw Object.assign(new TimeoutError(`echo from ${result.peer}`, result.timeoutMs), {
        message: describe(result),
      });
    case 'refused':
      // What the connected socket reported: the kernel's ECONNREFUSED for ICMP port unreachable (udp(7)).
      throw Object.assign(new Error(describe(result)), { code: 'ECONNREFUSED' });
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

/** `udp-echo client [HOST:PORT [MESSAGE...]]`. */
export const clientCommand = defineClientCommand({
  description:
    'Send MESSAGE (or --size random bytes, or a short probe text) to a UDP echo server, wait for the echo, verify it byte for byte and print the round-trip time. Without HOST:PORT it asks the local server, 127.0.0.1:15000.',
  args: '[HOST:PORT [MESSAGE...]]',
  maxPositionals: 1000,
  options: clientOptions,
  async run(input) {
    const { config } = input;
    const words = input.positionals.slice(1);
    if (config.size !== undefined && words.length > 0) {
      throw new ConfigError('--size', String(config.size), 'expected either MESSAGE or --size, not both');
    }
    const payload =
      config.size !== undefined
        ? randomBytes(config.size)
        : words.length > 0
          ? Buffer.from(words.join(' '))
          : undefined;
    const result = await runProbe(input, payload);
    if (!input.json) process.stdout.write(`${describe(result)}\n`);
  },
});

/** `udp-echo check [HOST:PORT]`: exit 0 when the identical echo comes back in time. */
export const checkCommand = defineClientCommand({
  description:
    'Health check: send a probe datagram and exit 0 if the identical echo comes back in time. Without HOST:PORT it checks the local server, 127.0.0.1:15000.',
  args: '[HOST:PORT]',
  maxPositionals: 1,
  options: probeOptions,
  async run(input) {
    const result = await runProbe(input, undefined);
    if (!input.json) process.stdout.write(`ok: ${describe(result)}\n`);
  },
});
