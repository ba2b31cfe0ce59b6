import dns from 'node:dns';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, BadEndpointError, ConnectError, TimeoutError } from '../src/errors.js';
import { type ConnectOptions, connect, type LookupAll } from '../src/net/connect.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server that counts connections and closes them when the test ends. */
async function serve(
  options: net.ListenOptions,
): Promise<{ server: net.Server; port: number; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    accepted.push(socket);
  });
  server.listen(options);
  await once(server, 'listening');
  cleanups.push(() => {
    for (const socket of accepted) socket.destroy();
    server.close();
  });
  const address = server.address();
  return { server, port: typeof address === 'object' && address !== null ? address.port : 0, accepted };
}

/** A port nobody listens on: bound by the kernel, then released. */
async function closedPort(host: string): Promise<number> {
  const server = net.createServer();
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function connected(target: string, options?: ConnectOptions): Promise<net.Socket> {
  const socket = await connect(target, options);
  cleanups.push(() => socket.destroy());
  return socket;
}

/** A resolver that answers with fixed addresses, as a dual-stack name would resolve. */
function fixedLookup(...addresses: string[]): LookupAll & { calls: [string, number][] } {
  const calls: [string, number][] = [];
  const lookup = async (host: string, family: 0 | 4 | 6) => {
    calls.push([host, family]);
    return addresses.map((address) => ({ address, family: net.isIPv6(address) ? 6 : 4 }));
  };
  return Object.assign(lookup, { calls });
}

/** A resolver that never answers, so deadlines and aborts can be observed without a blackholed address. */
const silentLookup: LookupAll = () => new Promise(() => {});

const CONNECT_LISTENERS = ['connect', 'error', 'close', 'timeout', 'lookup', 'ready'] as const;

describe('connect', () => {
  it('connects to 127.0.0.1 and returns a socket without listeners left from connecting', async () => {
    const { port } = await serve({ host: '127.0.0.1', port: 0 });
    const socket = await connected(`127.0.0.1:${port}`);
    expect(socket.remoteAddress).toBe('127.0.0.1');
    expect(socket.pending).toBe(false);
    for (const event of CONNECT_LISTENERS) expect(socket.listenerCount(event), event).toBe(0);
  });

  it('connects to [::1]', async () => {
    const { port } = await serve({ host: '::1', port: 0 });
    expect((await connected(`[::1]:${port}`)).remoteAddress).toBe('::1');
  });

  it('connects to a Unix socket path and to an abstract socket name', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'net-connect-'));
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 's.sock');
    const name = `net-core-connect-${process.pid}-${Date.now()}`;
    const byPath = await serve({ path: file });
    const byName = await serve({ path: `\0${name}` });
    await connected(`unix:${file}`);
    await connected(`unix:@${name}`);
    await expect.poll(() => byPath.accepted.length + byName.accepted.length).toBe(2);
  });

  it('connects to localhost:<port> through the system resolver', async () => {
    const [first] = await dns.promises.lookup('localhost', { all: true, verbatim: true });
    const { port } = await serve({ host: first?.address ?? '127.0.0.1', port: 0 });
    const socket = await connected(`localhost:${port}`);
    expect(socket.remoteAddress).toBe(first?.address);
  });

  it('rejects a closed port on 127.0.0.1 with ConnectError listing the address and ECONNREFUSED', async () => {
    const port = await closedPort('127.0.0.1');
    const err = await connect(`127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(err).toMatchObject({ code: 'NET_ERR_CONNECT', target: `127.0.0.1:${port}` });
    const { attempts } = err as ConnectError;
    expect(attempts.map((a) => [a.address, (a.error as NodeJS.ErrnoException).code])).toEqual([
      [`127.0.0.1:${port}`, 'ECONNREFUSED'],
    ]);
    expect((err as Error).message).toContain('ECONNREFUSED');
  });

  it('falls back to 127.0.0.1 when a name resolves to ::1 first but only IPv4 listens', async () => {
    const { port } = await serve({ host: '127.0.0.1', port: 0 });
    const socket = await connected(`localhost:${port}`, { lookup: fixedLookup('::1', '127.0.0.1') });
    expect(socket.remoteAddress).toBe('127.0.0.1');
  });

  it('falls back to ::1 when a name resolves to 127.0.0.1 first but only IPv6 listens', async () => {
    const { port } = await serve({ host: '::1', port: 0 });
    const socket = await connected(`localhost:${port}`, { lookup: fixedLookup('127.0.0.1', '::1') });
    expect(socket.remoteAddress).toBe('::1');
  });

  it('tries every address, alternating families (RFC 8305 §4), and reports each failure', async () => {
    const port = await closedPort('::1');
    const lookup = fixedLookup('::1', '::1', '127.0.0.1', '127.0.0.2');
    // A long attempt delay: each attempt starts only when the previous one failed, so the order is deterministic.
    const err = await connect(`localhost:${port}`, { lookup, attemptDelayMs: 10_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).attempts.map((a) => a.address)).toEqual([
      `[::1]:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      `127.0.0.2:${port}`,
    ]);
    expect(lookup.calls).toEqual([['localhost', 0]]);
  });

  it('keeps the first connection and destroys any loser that was still in flight', async () => {
    const { port, accepted } = await serve({ host: '::', port: 0, ipv6Only: false });
    // attemptDelayMs 0 starts the second attempt about a millisecond after the first, so it is usually in flight
    // when the first connects; whether it reached the server depends on timing, so only the outcome is pinned.
    const socket = await connected(`localhost:${port}`, { lookup: fixedLookup('::1', '127.0.0.1'), attemptDelayMs: 0 });
    const isWinner = (s: net.Socket) => s.remotePort === socket.localPort;
    await expect.poll(() => accepted.some(isWinner)).toBe(true);
    await expect.poll(() => accepted.filter((s) => !isWinner(s) && !s.destroyed).length).toBe(0);
    expect(socket.destroyed).toBe(false);
  });

  it('only tries the family asked for', async () => {
    const { port } = await serve({ host: '::1', port: 0 });
    const lookup = fixedLookup('::1', '127.0.0.1');
    const err = await connect(`localhost:${port}`, { lookup, family: 4 }).catch((e: unknown) => e);
    expect((err as ConnectError).attempts.map((a) => a.address)).toEqual([`127.0.0.1:${port}`]);
    expect(lookup.calls).toEqual([['localhost', 4]]);
    await expect(connect(`[::1]:${port}`, { family: 4 })).rejects.toThrow('no address to try');
  });

  it('connects an every-interface endpoint (:port) to localhost', async () => {
    const { port } = await serve({ host: '127.0.0.1', port: 0 });
    const lookup = fixedLookup('127.0.0.1');
    await connected(`:${port}`, { lookup });
    expect(lookup.calls).toEqual([['localhost', 0]]);
  });

  it('reports a resolver failure as ConnectError naming the host and the resolver error', async () => {
    const notFound = Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' });
    const err = await connect('nowhere.test:7', { lookup: () => Promise.reject(notFound) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).attempts).toEqual([{ address: 'nowhere.test', error: notFound }]);
    expect((err as Error).message).toBe('cannot connect to nowhere.test:7: tried nowhere.test: ENOTFOUND');
  });

  it('records a resolver that throws synchronously as a failed attempt', async () => {
    const broken: LookupAll = () => {
      throw new Error('resolver exploded');
    };
    const err = await connect('broken.test:7', { lookup: broken }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as Error).message).toContain('resolver exploded');
  });

  it('rejects with TimeoutError when nothing completes within timeoutMs', async () => {
    const err = await connect('slow.test:7', { lookup: silentLookup, timeoutMs: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'NET_ERR_TIMEOUT', timeoutMs: 30 });
  });

  it('with timeoutMs 0 always times out, even against a listening server', async () => {
    const { port } = await serve({ host: '127.0.0.1', port: 0 });
    await expect(connect(`127.0.0.1:${port}`, { timeoutMs: 0 })).rejects.toBeInstanceOf(TimeoutError);
  });

  it('rejects with AbortedError when the signal aborts while connecting, and when it was aborted already', async () => {
    const controller = new AbortController();
    const connecting = connect('slow.test:7', { lookup: silentLookup, signal: controller.signal });
    controller.abort(new Error('shutting down'));
    const err = await connecting.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(err).toMatchObject({ code: 'NET_ERR_ABORTED', cause: new Error('shutting down') });
    await expect(connect('127.0.0.1:7', { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
  });

  it('rejects a malformed target with BadEndpointError and a negative timeout with RangeError', async () => {
    await expect(connect('localhost:70000')).rejects.toBeInstanceOf(BadEndpointError);
    await expect(connect('127.0.0.1:7', { timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError);
  });
});
