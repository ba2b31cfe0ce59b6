/** Helpers shared by the echo-tcp tests: the built bin, starting it, and talking to it over real sockets. */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { closeKind } from '@net/core';
import { type ServiceProcess, type SpawnOptions, startService } from '@net/testkit';

/** The built bin (`pnpm exec tsc -b` first). */
export const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** Starts `echo-tcp serve --port 0 ...args` and waits for its ready line. */
export function startEcho(args: readonly string[] = [], options: SpawnOptions = {}): Promise<ServiceProcess> {
  return startService(BIN, ['serve', '--port', '0', '--log-format', 'json', ...args], options);
}

/** Connects to 127.0.0.1:port (or a path), resolving once connected. */
export function connectTo(
  where: number | string,
  options: { localAddress?: string; host?: string; allowHalfOpen?: boolean } = {},
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      typeof where === 'string'
        ? net.connect({ path: where, allowHalfOpen: options.allowHalfOpen ?? false })
        : net.connect({
            allowHalfOpen: options.allowHalfOpen ?? false,
            host: options.host ?? '127.0.0.1',
            port: where,
            ...(options.localAddress ? { localAddress: options.localAddress } : {}),
          });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** How a connection ended, from the client's side. */
export interface Ending {
  data: Buffer;
  /** 'eof' for an orderly FIN, 'reset' for ECONNRESET, else the error code. */
  how: string;
}

/** Collects everything the socket receives until it closes, and how it closed. */
export function collect(socket: net.Socket): Promise<Ending> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let how = 'eof';
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      how = err.code === 'ECONNRESET' ? 'reset' : (err.code ?? err.message);
    });
    // A reset right after data can reach Node as an EOF (see closeKind): ask the kernel while it still can.
    socket.on('end', () => {
      if (closeKind(socket) === 'reset') how = 'reset';
    });
    socket.on('close', () => resolve({ data: Buffer.concat(chunks), how }));
  });
}

/** Sends `payload` (in slices, with backpressure), half-closes, and resolves with what came back until EOF. */
export async function echo(socket: net.Socket, payload: Buffer): Promise<Ending> {
  const result = collect(socket);
  socket.end(payload);
  return result;
}

/** Random bytes of a random size in [min, max]. */
export function randomPayload(min: number, max: number): Buffer {
  return randomBytes(min + Math.floor(Math.random() * (max - min + 1)));
}

/** Reads VmRSS of a process in bytes. */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** Resolves when `socket` has received at least `n` bytes (counted from now), with what arrived. */
export function receive(socket: net.Socket, n: number, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => {
      socket.off('data', onData);
      reject(new Error(`received ${got} of ${n} bytes within ${timeoutMs} ms`));
    }, timeoutMs);
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
  });
}

/**
 * Writes `payload` in 1 MiB slices on a client that reads nothing, until the connection stalls (no 'drain' within
 * 300 ms: the service stopped reading and the kernel's buffers are full) or all of it is written (32 MiB at most).
 * Returns how many bytes were offered.
 */
export async function offerUntilStalled(client: net.Socket, payload: Buffer): Promise<number> {
  let offered = 0;
  for (let i = 0; i < 32 && offered < payload.length; i++) {
    const slice = payload.subarray(offered, offered + (1 << 20));
    offered += slice.length;
    if (!client.write(slice)) {
      const drained = await Promise.race([
        new Promise<boolean>((r) => client.once('drain', () => r(true))),
        new Promise<boolean>((r) => setTimeout(() => r(false), 300)),
      ]);
      if (!drained) break;
    }
  }
  return offered;
}
