/**
 * `echo-tcp check HOST:PORT`: a health check that proves the echo works, not just that the port is open. It sends a
 * random payload (so a stale or misrouted answer cannot match by chance) and verifies every byte within --timeout.
 * Prints one line and exits 0 when healthy, else with the shared client code (1 a wrong echo, 69 refused, 75 timeout,
 * 76 reset or cut short): a container HEALTHCHECK, a Kubernetes exec probe and HAProxy's `external-check command`
 * (which calls it with `<proxy_addr> <proxy_port> <server_addr> <server_port>`) all read any non-zero as unhealthy.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  BadReplyError,
  boolean,
  type ClientRunInput,
  ConfigError,
  connect,
  decimal,
  type Endpoint,
  encodeProxyV2,
  formatEndpoint,
  integer,
  option,
  readExactly,
  writeAll,
} from '@net/core';

/**
 * The check's settings. The runtime names their variables ECHO_TCP_CHECK_*, so that they never collide with the
 * service's own (a container sets ECHO_TCP_GREETING for `serve`; its HEALTHCHECK runs `check` in the same
 * environment).
 */
export const checkOptions = {
  timeout: option({
    type: decimal(0.001, 3600, 'seconds'),
    default: 2,
    description: 'The whole check (connect, send, receive) must finish within this time',
  }),
  size: option({
    type: integer(1, 16 << 20),
    default: 1024,
    description: 'Random payload bytes to send and verify',
  }),
  proxy: option({
    type: boolean(),
    default: false,
    description: 'Send a PROXY protocol v2 LOCAL header first (as HAProxy does), for a listener that requires one',
  }),
  greeting: option({
    type: boolean(),
    default: false,
    description: 'Expect and skip a greeting line (up to its newline) before the echo',
  }),
};

/** The longest greeting line `check --greeting` skips; the service caps templates at 1024 characters. */
const MAX_GREETING_BYTES = 8192;

/** Runs `check`: resolves when healthy, else throws the error that decides the exit code. */
export async function runCheck(input: ClientRunInput<typeof checkOptions>): Promise<void> {
  const target = checkTarget(input);
  const label = formatEndpoint(target);
  input.report.target = label;
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
    if (config.greeting) await skipLine(socket, label, left);
    const echo = await readExactly(socket, payload.length, { timeoutMs: left() });
    await written;
    input.report.bytes = payload.length;
    const at = firstDifference(payload, echo);
    if (at !== -1) {
      input.report.firstDifference = at;
      throw new BadReplyError(label, `the echo differs from the payload at byte ${at} of ${payload.length}`);
    }
    const ms = (performance.now() - started).toFixed(1);
    if (!input.json) process.stdout.write(`ok ${label}: ${payload.length} random bytes echoed in ${ms} ms\n`);
  } finally {
    socket?.destroy();
  }
}

/** HOST:PORT (default: the local server), or HAProxy's four external-check arguments (the server is the last two). */
function checkTarget({ positionals, target }: ClientRunInput<typeof checkOptions>): Endpoint {
  if (positionals.length === 4) {
    const [, , address = '', port = ''] = positionals;
    return target(address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);
  }
  if (positionals.length > 1) {
    throw new ConfigError(
      'argument',
      positionals.join(' '),
      'expected HOST:PORT, or <proxy_addr> <proxy_port> <server_addr> <server_port>',
    );
  }
  return target(positionals[0]);
}

async function skipLine(socket: Socket, label: string, left: () => number): Promise<void> {
  for (let i = 0; i < MAX_GREETING_BYTES; i++) {
    const byte = await readExactly(socket, 1, { timeoutMs: left() });
    if (byte[0] === 0x0a) return;
  }
  throw new BadReplyError(label, `no newline in the first ${MAX_GREETING_BYTES} bytes: not a greeting line`);
}

function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length;
}
