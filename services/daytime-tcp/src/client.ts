/**
 * `daytime-tcp client HOST[:PORT]`, the classic C client: connect, read until the server closes, print the line.
 * RFC 867 has the server speak first and close, so the client sends nothing and the end of the stream is the
 * end of the answer. Every failure kind has its own exit code so scripts can tell them apart.
 */
import type net from 'node:net';
import { type ConnectError, connect, type Endpoint, EXIT, formatEndpoint, parseEndpoint, readToEnd } from '@net/core';
import { DAYTIME_PORT } from './config.js';

/** Exit codes of `client` (0, 1 and 2 are the runtime's: ok, other failure, bad usage). */
export const CLIENT_EXIT = {
  OK: EXIT.OK,
  /** Any other failure (network unreachable, ...). */
  FAILURE: EXIT.FAILURE,
  USAGE: EXIT.USAGE,
  /** Every address refused the connection (ECONNREFUSED: nothing listens there). */
  REFUSED: 3,
  /** The exchange (resolution, connect, answer) did not finish within --timeout. */
  TIMEOUT: 4,
  /** The answer was longer than --max-bytes. */
  TOO_LARGE: 5,
  /** The host name does not resolve. */
  UNRESOLVED: 6,
  /** The server closed or reset the connection without sending anything. */
  NO_ANSWER: 7,
} as const;

/** Options of {@link runClient}. */
export interface ClientOptions {
  timeoutMs: number;
  maxBytes: number;
  family: 0 | 4 | 6;
  /** Where the line goes (stdout) and where errors go (stderr); tests capture them. */
  out?: (text: string) => void;
  err?: (text: string) => void;
}

/**
 * Fetches and prints the date from a daytime server; resolves with the exit code, never rejects.
 * `target` is `HOST[:PORT]`, `[IPv6]:PORT` or a bare IPv6 address; the port defaults to 13.
 */
export async function runClient(target: string, options: ClientOptions): Promise<number> {
  const out = options.out ?? ((t: string) => process.stdout.write(t));
  const err = options.err ?? ((t: string) => process.stderr.write(t));
  let endpoint: Endpoint;
  try {
    endpoint = parseEndpoint(target, { defaultPort: DAYTIME_PORT });
  } catch (e) {
    err(`daytime-tcp client: ${(e as Error).message}\n`);
    return CLIENT_EXIT.USAGE;
  }
  const label = formatEndpoint(endpoint);
  const deadline = performance.now() + options.timeoutMs;
  const remaining = () => Math.max(0, deadline - performance.now());

  let socket: net.Socket | undefined;
  try {
    socket = await connect(endpoint, { timeoutMs: remaining(), family: options.family });
    const answer = await readToEnd(socket, { limit: options.maxBytes, timeoutMs: remaining() });
    if (answer.length === 0) {
      err(`daytime-tcp client: ${label} closed the connection without sending a date\n`);
      return CLIENT_EXIT.NO_ANSWER;
    }
    out(`${printable(answer)}\n`);
    return CLIENT_EXIT.OK;
  } catch (e) {
    const { code, message } = explain(e, label, options);
    err(`daytime-tcp client: ${message}\n`);
    return code;
  } finally {
    socket?.destroy();
  }
}

/** dns.lookup (getaddrinfo) failures: the name does not exist, has no address, or no resolver answered. */
const RESOLVER_ERRORS = new Set(['ENOTFOUND', 'EAI_AGAIN', 'ENODATA', 'EAI_NONAME', 'EAI_FAIL']);

function explain(e: unknown, label: string, options: ClientOptions): { code: number; message: string } {
  const error = e as Error & { code?: string };
  switch (error.code) {
    case 'NET_ERR_TIMEOUT':
      return {
        code: CLIENT_EXIT.TIMEOUT,
        message: `no complete answer from ${label} within ${options.timeoutMs / 1000} s (--timeout): ${error.message}`,
      };
    case 'NET_ERR_SIZE_LIMIT':
      return {
        code: CLIENT_EXIT.TOO_LARGE,
        message: `the answer from ${label} is longer than ${options.maxBytes} bytes (--max-bytes); a daytime line is about 26`,
      };
    case 'NET_ERR_PEER_RESET':
      return { code: CLIENT_EXIT.NO_ANSWER, message: `${label} reset the connection before its answer ended` };
    case 'NET_ERR_CONNECT': {
      const attempts = (error as ConnectError).attempts;
      const codes = attempts.map((a) => (a.error as NodeJS.ErrnoException).code);
      if (codes.length > 0 && codes.every((c) => c === 'ECONNREFUSED')) {
        return {
          code: CLIENT_EXIT.REFUSED,
          message: `connection refused by ${label}: no daytime server listens there`,
        };
      }
      // On loopback a server's immediate RST can reach us before the connect completes in our event loop.
      if (codes.length > 0 && codes.every((c) => c === 'ECONNRESET')) {
        return { code: CLIENT_EXIT.NO_ANSWER, message: `${label} reset the connection without sending a date` };
      }
      const unresolved = attempts.find((a) => RESOLVER_ERRORS.has((a.error as NodeJS.ErrnoException).code ?? ''));
      if (unresolved !== undefined) {
        const why = (unresolved.error as NodeJS.ErrnoException).code;
        return {
          code: CLIENT_EXIT.UNRESOLVED,
          message: `cannot resolve "${unresolved.address}" (${why}): check the host name`,
        };
      }
      return { code: CLIENT_EXIT.FAILURE, message: error.message };
    }
    default:
      return { code: CLIENT_EXIT.FAILURE, message: error.message ?? String(e) };
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
