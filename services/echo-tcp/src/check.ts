/**
 * `echo-tcp check HOST:PORT`: a health check that proves the echo works, not just that the port is open. It sends a
 * random payload (so a stale or misrouted answer cannot match by chance) and verifies every byte within --timeout.
 * Prints one line, exits 0 or 1: usable as a container HEALTHCHECK and as HAProxy's `external-check command`
 * (which calls it with `<proxy_addr> <proxy_port> <server_addr> <server_port>`).
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  boolean,
  connect,
  decimal,
  type Endpoint,
  EXIT,
  encodeProxyV2,
  formatEndpoint,
  integer,
  option,
  readExactly,
  writeAll,
} from '@net/core';
import { targetOf } from './client.js';

/**
 * The check's settings. Their variables carry CHECK_ so that they never collide with the service's own (a
 * container sets ECHO_TCP_GREETING for `serve`; its HEALTHCHECK runs `check` in the same environment).
 */
export const checkOptions = {
  timeout: option({
    env: 'ECHO_TCP_CHECK_TIMEOUT',
    type: decimal(0.001, 3600, 'seconds'),
    default: 2,
    description: 'The whole check (connect, send, receive) must finish within this time',
  }),
  size: option({
    env: 'ECHO_TCP_CHECK_SIZE',
    type: integer(1, 16 << 20),
    default: 1024,
    description: 'Random payload bytes to send and verify',
  }),
  proxy: option({
    env: 'ECHO_TCP_CHECK_PROXY',
    type: boolean(),
    default: false,
    description: 'Send a PROXY protocol v2 LOCAL header first (as HAProxy does), for a listener that requires one',
  }),
  greeting: option({
    env: 'ECHO_TCP_CHECK_GREETING',
    type: boolean(),
    default: false,
    description: 'Expect and skip a greeting line (up to its newline) before the echo',
  }),
};

/** The longest greeting line `check --greeting` skips; the service caps templates at 1024 characters. */
const MAX_GREETING_BYTES = 8192;

/** Runs `check`; resolves with 0 (healthy) or 1. */
export async function runCheck(input: {
  config: { timeout: number; size: number; proxy: boolean; greeting: boolean };
  positionals: string[];
}): Promise<number> {
  const target = checkTarget(input.positionals);
  const label = formatEndpoint(target);
  const { config } = input;
  const started = performance.now();
  const deadline = started + config.timeout * 1000;
  const left = () => Math.max(0, deadline - performance.now());
  let socket: Socket | undefined;
  try {
    socket = await connect(target, { timeoutMs: left() });
    const payload = randomBytes(config.size);
    // The echo is read while the payload is written: a payload larger than the socket buffers would otherwise
    // deadlock, both sides waiting for the other to read.
    const written = writeAll(
      socket,
      config.proxy ? Buffer.concat([encodeProxyV2({ command: 'LOCAL', family: 'UNKNOWN' }), payload]) : payload,
    );
    written.catch(() => {}); // its failure shows in the read too
    if (config.greeting) await skipLine(socket, left);
    const echo = await readExactly(socket, payload.length, { timeoutMs: left() });
    await written;
    const at = firstDifference(payload, echo);
    if (at !== -1) {
      process.stdout.write(`fail ${label}: echo differs from the payload at byte ${at} of ${payload.length}\n`);
      return EXIT.FAILURE;
    }
    const ms = (performance.now() - started).toFixed(1);
    process.stdout.write(`ok ${label}: ${payload.length} random bytes echoed in ${ms} ms\n`);
    return EXIT.OK;
  } catch (err) {
    process.stdout.write(`fail ${label}: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  } finally {
    socket?.destroy();
  }
}

/** HOST:PORT, or HAProxy's four external-check arguments (the server is the last two). */
function checkTarget(positionals: string[]): Endpoint {
  if (positionals.length === 4) {
    const [, , address = '', port = ''] = positionals;
    return targetOf(address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`, 'HOST:PORT');
  }
  if (positionals.length > 1) {
    return targetOf(undefined, 'HOST:PORT, or <proxy_addr> <proxy_port> <server_addr> <server_port>');
  }
  return targetOf(positionals[0], 'HOST:PORT');
}

async function skipLine(socket: Socket, left: () => number): Promise<void> {
  for (let i = 0; i < MAX_GREETING_BYTES; i++) {
    const byte = await readExactly(socket, 1, { timeoutMs: left() });
    if (byte[0] === 0x0a) return;
  }
  throw new Error(`no newline in the first ${MAX_GREETING_BYTES} bytes: not a greeting line`);
}

function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length;
}
