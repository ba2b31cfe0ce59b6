/**
 * `echo-tcp client HOST:PORT [MESSAGE...]`: the classic C echo client. Sends the message (or standard input), half-closes
 * (so the server knows nothing more is coming), prints every byte that comes back on stdout, and then says on
 * stderr how many bytes went each way and how the connection ended: a FIN (in order) or a reset.
 */
import type { Socket } from 'node:net';
import {
  type CloseKind,
  ConfigError,
  closeKind,
  connect,
  decimal,
  type Endpoint,
  EXIT,
  formatEndpoint,
  option,
  parseEndpoint,
} from '@net/core';
import { DEFAULT_PORT } from './config.js';

/** Exit codes of `client` (0, 1 and 2 are the shared ones). */
export const CLIENT_EXIT = {
  /** Every byte came back and the server closed in order. */
  OK: EXIT.OK,
  /** Could not connect. */
  CONNECT_FAILED: EXIT.FAILURE,
  /** Bad usage. */
  USAGE: EXIT.USAGE,
  /** The server closed in order (FIN) but fewer bytes came back than were sent. */
  SHORT_ECHO: 3,
  /** The server reset the connection (RST). */
  RESET: 4,
  /** Nothing moved either way for --timeout. */
  TIMEOUT: 5,
  /** Another socket error. */
  ERROR: 6,
} as const;

/** The client's settings; variables carry CLIENT_ (see checkOptions). */
export const clientOptions = {
  timeout: option({
    env: 'ECHO_TCP_CLIENT_TIMEOUT',
    type: decimal(0.001, 86_400, 'seconds'),
    default: 10,
    description: 'Give up when connecting takes longer, or when nothing moves either way for this long',
  }),
};

/** Parses the HOST:PORT argument of the client commands (a missing port is the service's default). */
export function targetOf(text: string | undefined, usage: string): Endpoint {
  if (text === undefined) throw new ConfigError('argument', undefined, `expected ${usage}`);
  try {
    return parseEndpoint(text, { defaultPort: DEFAULT_PORT });
  } catch (err) {
    throw new ConfigError('HOST:PORT', text, (err as Error).message);
  }
}

/** Runs `client`; resolves with its exit code. */
export async function runClient(input: { config: { timeout: number }; positionals: string[] }): Promise<number> {
  const [targetText, ...words] = input.positionals;
  const target = targetOf(targetText, 'HOST:PORT [MESSAGE...]');
  const label = formatEndpoint(target);
  const timeoutMs = Math.round(input.config.timeout * 1000);
  let socket: Socket;
  try {
    socket = await connect(target, { timeoutMs });
  } catch (err) {
    process.stderr.write(`echo-tcp client: ${(err as Error).message}\n`);
    return CLIENT_EXIT.CONNECT_FAILED;
  }
  const message = words.length > 0 ? Buffer.from(`${words.join(' ')}\n`, 'utf8') : undefined;
  return await exchange(socket, label, message, timeoutMs);
}

function exchange(socket: Socket, label: string, message: Buffer | undefined, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    let failure: Error | undefined;
    let ended: CloseKind | undefined;
    let timedOut = false;
    const stdin = process.stdin;

    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Echoes can outrun a slow terminal or pipe: stop reading the socket until stdout has caught up.
      if (!process.stdout.write(chunk)) {
        socket.pause();
        process.stdout.once('drain', () => socket.resume());
      }
    });
    socket.on('error', (err) => {
      failure ??= err;
    });
    // A reset right behind the echo can reach Node as an orderly end (closeKind says why); only now, while the socket
    // still has its descriptor, can the kernel tell the two apart.
    socket.on('end', () => {
      ended = closeKind(socket);
    });
    socket.setTimeout(timeoutMs, () => {
      timedOut = true;
      socket.destroy();
    });
    socket.on('close', () => {
      if (message === undefined) stdin.pause();
      const kind = timedOut ? 'timeout' : failure ? closeKind(socket, failure) : (ended ?? 'eof');
      const how =
        kind === 'timeout'
          ? `nothing moved for ${timeoutMs / 1000} s: gave up`
          : kind === 'reset'
            ? 'the server reset the connection (RST)'
            : kind === 'error'
              ? `connection failed: ${(failure as NodeJS.ErrnoException).code ?? failure?.message}`
              : 'the server closed the connection in order (FIN)';
      const short = received < sent ? `; ${sent - received} bytes did not come back` : '';
      const extra = received > sent ? `; ${received - sent} bytes more than sent (a greeting?)` : '';
      process.stderr.write(
        `echo-tcp client: ${label}: sent ${sent} bytes, received ${received}${short}${extra}; ${how}\n`,
      );
      const code =
        kind === 'timeout'
          ? CLIENT_EXIT.TIMEOUT
          : kind === 'reset'
            ? CLIENT_EXIT.RESET
            : kind === 'error'
              ? CLIENT_EXIT.ERROR
              : received < sent
                ? CLIENT_EXIT.SHORT_ECHO
                : CLIENT_EXIT.OK;
      // The runtime exits the process with our code at once; a pipe that was full still holds queued echoes,
      // and this empty write's callback runs only after every earlier write has been flushed.
      process.stdout.write('', () => resolve(code));
    });

    if (message !== undefined) {
      sent = message.length;
      // end(): write the message, then FIN; the server echoes everything owed and closes in turn.
      socket.end(message);
      return;
    }
    stdin.on('data', (chunk: Buffer) => {
      sent += chunk.length;
      if (!socket.write(chunk)) stdin.pause();
    });
    socket.on('drain', () => stdin.resume());
    stdin.on('end', () => socket.end());
    socket.on('end', () => stdin.pause());
  });
}
