/**
 * Loopback TCP clients for the cases: bounded in count (every loop has a fixed total) and in time (every wait has a
 * deadline), never sending anywhere but 127.0.0.0/8.
 */
import net from 'node:net';

/** Connects to `host:port` (loopback), optionally from `localAddress`; rejects on error or after `timeoutMs`. */
export function connectTo(
  port: number,
  options: { host?: string; localAddress?: string; timeoutMs?: number } = {},
): Promise<net.Socket> {
  const { host = '127.0.0.1', localAddress, timeoutMs = 5_000 } = options;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, ...(localAddress !== undefined ? { localAddress } : {}) });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: Error) => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
  });
}

/** Reads exactly `n` bytes from a flowing-or-not socket; rejects on close, error or after `timeoutMs`. */
export function readBytes(socket: net.Socket, n: number, timeoutMs = 5_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onError);
      if (err) reject(err);
      else {
        const all = Buffer.concat(chunks);
        // Anything past n belongs to the next read: put it back.
        if (all.length > n) socket.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    const onData = (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) {
        socket.pause();
        done();
      }
    };
    const onClose = () => done(new Error(`closed after ${got} of ${n} bytes`));
    const onError = (err: Error) => done(err);
    const timer = setTimeout(() => done(new Error(`read of ${n} bytes timed out (${got} received)`)), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.resume();
  });
}

/** Sends `payload` and waits for the same bytes back; resolves with the round trip in ms. */
export async function roundTrip(socket: net.Socket, payload: Buffer, timeoutMs = 5_000): Promise<number> {
  const start = performance.now();
  socket.write(payload);
  const back = await readBytes(socket, payload.length, timeoutMs);
  if (!back.equals(payload)) throw new Error('echo differs from what was sent');
  return performance.now() - start;
}

/** Ends `socket` and resolves once it closed (FIN both ways), or destroys it after `timeoutMs`. */
export function closeGracefully(socket: net.Socket, timeoutMs = 5_000): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => {});
    socket.resume();
    socket.end();
  });
}

/** Runs `task(i)` for i in [0, total) with at most `concurrency` at once; resolves with the failures' messages. */
export async function runPool(
  total: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<{ failures: string[] }> {
  let next = 0;
  const failures: string[] = [];
  const lane = async () => {
    while (next < total) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, lane));
  return { failures };
}

/** Loopback source address number `i` of a pool of `size` (127.0.1.1 ...), to spread TIME_WAIT over many 4-tuples. */
export function loopbackSource(i: number, size = 32): string {
  return `127.0.1.${(i % size) + 1}`;
}

/** `count` round trips of `payload` on one connection, one at a time; resolves with their latencies in ms. */
export async function pingSeries(port: number, count: number, payload: Buffer, timeoutMs = 5_000): Promise<number[]> {
  const socket = await connectTo(port);
  try {
    const rtts: number[] = [];
    for (let i = 0; i < count; i++) rtts.push(await roundTrip(socket, payload, timeoutMs));
    return rtts;
  } finally {
    socket.destroy();
  }
}
