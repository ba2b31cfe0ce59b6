/**
 * `daytime-tcp client [HOST[:PORT]]`, the classic C client: connect, read until the server closes, print the line.
 * RFC 867 has the server speak first and close, so the client sends nothing and the end of the stream is the
 * end of the answer. Its exit codes are the shared client table (@net/core client-exit.ts).
 */
import type net from 'node:net';
import {
  BadReplyError,
  type ClientRunInput,
  connect,
  type Endpoint,
  formatEndpoint,
  PeerResetError,
  PrematureEofError,
  readToEnd,
  TimeoutError,
} from '@net/core';
import type { clientOptions } from './config.js';

/** Options of {@link fetchDaytime}. */
export interface FetchOptions {
  timeoutMs: number;
  maxBytes: number;
  family: 0 | 4 | 6;
}

/**
 * Fetches the answer of a daytime server: resolves with the answer's bytes, or rejects with an error whose exit code
 * `clientExitCode` gives: 1 for an answer longer than `maxBytes`, 68 for a name that does not resolve, 69 when
 * refused, 75 when the answer is not complete (closed) within `timeoutMs`, 76 when the server closes or resets
 * without an answer.
 */
export async function fetchDaytime(endpoint: Endpoint, options: FetchOptions): Promise<Buffer> {
  const label = formatEndpoint(endpoint);
  const deadline = performance.now() + options.timeoutMs;
  const remaining = () => Math.max(0, deadline - performance.now());
  let socket: net.Socket | undefined;
  try {
    socket = await connect(endpoint, { timeoutMs: remaining(), family: options.family });
    const answer = await readToEnd(socket, { limit: options.maxBytes, timeoutMs: remaining() });
    if (answer.length === 0) {
      throw Object.assign(new PrematureEofError(1, 0, answer), {
        message: `${label} closed the connection without sending a date`,
      });
    }
    return answer;
  } catch (e) {
    throw explain(e, label, options);
  } finally {
    socket?.destroy();
  }
}

/** Runs `client`: prints the line (or, with --json, reports it) and resolves; throws on failure. */
export async function runClient(input: ClientRunInput<typeof clientOptions>): Promise<void> {
  const { config, report } = input;
  const endpoint = input.target(input.positionals[0]);
  report.target = formatEndpoint(endpoint);
  const answer = await fetchDaytime(endpoint, {
    timeoutMs: config.timeout * 1000,
    maxBytes: config.maxBytes,
    family: config.family === 'any' ? 0 : config.family === '4' ? 4 : 6,
  });
  report.line = printable(answer);
  if (!input.json) process.stdout.write(`${report.line}\n`);
}

/** The error again, worded for a daytime exchange where that helps (its code, and so its exit code, unchanged). */
function explain(e: unknown, label: string, options: FetchOptions): unknown {
  switch ((e as { code?: string }).code) {
    case 'NET_ERR_TIMEOUT':
      // One deadline covers resolution, connect and the answer: name it as the user set it.
      return new TimeoutError(`the answer from ${label} (--timeout)`, options.timeoutMs, { cause: e });
    case 'NET_ERR_SIZE_LIMIT':
      return new BadReplyError(
        label,
        `the answer is longer than ${options.maxBytes} bytes (--max-bytes); a daytime line is about 26`,
        { cause: e },
      );
    case 'NET_ERR_PEER_RESET':
      return Object.assign(new PeerResetError((e as PeerResetError).received, { cause: e }), {
        message: `${label} reset the connection before its answer ended`,
      });
    default:
      return e;
  }
}

/**
 * The answer as one printable line: the trailing line end dropped, and any byte that is not printable ASCII
 * shown as `\xNN`, so a hostile server cannot send terminal escape sequences to the user's terminal.
 */
export function printable(answer: Buffer): string {
  let end = answer.length;
  while (end > 0 && (answer[end - 1] === 0x0a || answer[end - 1] === 0x0d)) end--;
  let text = '';
  for (let i = 0; i < end; i++) {
    const b = answer[i] as number;
    text +=
      b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : b === 0x09 ? '\t' : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return text;
}
