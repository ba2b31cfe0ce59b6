/**
 * `echo-tcp client [HOST:PORT [MESSAGE...]]`: the classic C echo client. Sends the message (or standard input),
 * half-closes (so the server knows nothing more is coming), prints every byte that comes back on stdout, and then says
 * on stderr how many bytes went each way and how the connection ended: a FIN (in order) or a reset. Its exit codes are
 * the shared client table (@net/core client-exit.ts): a short echo or a reset is 76, silence for --timeout 75.
 */
import type { Socket } from 'node:net';
import {
  type ClientRunInput,
  type CloseKind,
  closeKind,
  connect,
  decimal,
  formatEndpoint,
  option,
  PeerResetError,
  PrematureEofError,
  TimeoutError,
} from '@net/core';

/** The client's settings; the runtime names their variables ECHO_TCP_CLIENT_* and adds --json. */
export const clientOptions = {
  timeout: option({
    type: decimal(0.001, 86_400, 'seconds'),
    default: 10,
    description: 'Give up when connecting takes longer, or when nothing moves either way for this long',
  }),
};

/** Runs `client`: resolves when every byte came back and the server closed in order, else throws (client-exit.ts). */
export async function runClient(input: ClientRunInput<typeof clientOptions>): Promise<void> {
  const [targetText, ...words] = input.positionals;
  const target = input.target(targetText);
  const label = formatEndpoint(target);
  input.report.target = label;
  const timeoutMs = Math.round(input.config.timeout * 1000);
  const socket = await connect(target, { timeoutMs });
  const message = words.length > 0 ? Buffer.from(`${words.join(' ')}\n`, 'utf8') : undefined;
  await exchange(socket, { label, message, timeoutMs, json: input.json, report: input.report });
}

interface Exchange {
  label: string;
  message: Buffer | undefined;
  timeoutMs: number;
  /** With --json the echo is counted, not printed: stdout carries the JSON object alone. */
  json: boolean;
  report: ClientRunInput<typeof clientOptions>['report'];
}

function exchange(socket: Socket, { label, message, timeoutMs, json, report }: Exchange): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let received = 0;
    let failure: Error | undefined;
    let ended: CloseKind | undefined;
    let timedOut = false;
    const stdin = process.stdin;

    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (json) return;
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
      Object.assign(report, { sent, received, close: kind });
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
      const summary = `${label}: sent ${sent} bytes, received ${received}${short}${extra}; ${how}`;
      // The echo went to stdout as it came: the errors carry no copy of it.
      const error =
        kind === 'timeout'
          ? new TimeoutError(`echo from ${label}`, timeoutMs)
          : kind === 'reset'
            ? new PeerResetError(received, failure ? { cause: failure } : undefined)
            : kind === 'error'
              ? (failure as Error)
              : received < sent
                ? new PrematureEofError(sent, received, Buffer.alloc(0))
                : undefined;
      // The runtime exits the process at once; a pipe that was full still holds queued echoes, and this empty
      // write's callback runs only after every earlier write has been flushed.
      process.stdout.write('', () => {
        if (error === undefined) {
          if (!json) process.stderr.write(`echo-tcp client: ${summary}\n`);
          resolve();
        } else {
          // One line on stderr says it all, in the classic client's words.
          error.message = summary;
          reject(error);
        }
      });
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
