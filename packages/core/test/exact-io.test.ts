import { createHash } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AbortedError,
  PeerResetError,
  PrematureEofError,
  SizeLimitError,
  SocketClosedError,
  TimeoutError,
} from '../src/errors.js';
import { classifyClose, closeKind, readExactly, readToEnd, writeAll } from '../src/net/exact-io.js';
import { readSocketOption, SO_ERROR, SOL_SOCKET } from '../src/sys/sockopt.js';

type Transport = 'IPv4' | 'IPv6' | 'Unix';

interface Pair {
  /** The connecting side. */
  client: net.Socket;
  /** The accepted side. */
  peer: net.Socket;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A connected pair over real loopback sockets; both ends are destroyed after the test. */
async function pair(transport: Transport = 'IPv4'): Promise<Pair> {
  const server = net.createServer({ allowHalfOpen: true });
  let connectTo: net.NetConnectOpts;
  if (transport === 'Unix') {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'net-exact-io-'));
    cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
    server.listen(path.join(dir, 's.sock'));
    await once(server, 'listening');
    connectTo = { path: path.join(dir, 's.sock'), allowHalfOpen: true };
  } else {
    const host = transport === 'IPv4' ? '127.0.0.1' : '::1';
    server.listen(0, host);
    await once(server, 'listening');
    connectTo = { host, port: (server.address() as net.AddressInfo).port, allowHalfOpen: true };
  }
  const client = net.connect(connectTo);
  const [[peer]] = (await Promise.all([once(server, 'connection'), once(client, 'connect')])) as [
    [net.Socket],
    unknown,
  ];
  server.close();
  cleanups.push(() => {
    client.destroy();
    peer.destroy();
  });
  return { client, peer };
}

const EVENTS = ['readable', 'data', 'end', 'error', 'close', 'drain'] as const;
const listenerCounts = (socket: net.Socket) => EVENTS.map((event) => socket.listenerCount(event));

function bytes(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('readExactly', () => {
  it.each(['IPv4', 'IPv6', 'Unix'] as const)(
    'over %s reads exactly n bytes and leaves the rest for the next reader, adding no listeners',
    async (transport) => {
      const { client, peer } = await pair(transport);
      const before = listenerCounts(client);
      peer.write(Buffer.from('0123456789abcde'));
      expect((await readExactly(client, 10)).toString()).toBe('0123456789');
      expect(listenerCounts(client)).toEqual(before);
      expect(client.readableFlowing).not.toBe(true);
      expect((await readExactly(client, 5)).toString()).toBe('abcde');
      expect(listenerCounts(client)).toEqual(before);
    },
  );

  it('assembles 10,000 bytes that arrive one byte per write', async () => {
    const { client, peer } = await pair();
    const data = bytes(10_000);
    const reading = readExactly(client, data.length, { timeoutMs: 15_000 });
    // Each writeAll resolves when its byte reached the kernel, and noDelay sends it as its own segment.
    peer.setNoDelay(true);
    for (let i = 0; i < data.length; i++) await writeAll(peer, data.subarray(i, i + 1));
    expect((await reading).equals(data)).toBe(true);
  });

  it('serves a thousand back-to-back one-byte reads from a single write in order', async () => {
    const { client, peer } = await pair();
    const data = bytes(1_000, 7);
    await writeAll(peer, data);
    const got: number[] = [];
    for (let i = 0; i < data.length; i++) got.push(...(await readExactly(client, 1)));
    expect(Buffer.from(got).equals(data)).toBe(true);
  });

  it('resolves an empty buffer for n = 0 without touching the socket', async () => {
    const { client } = await pair();
    expect((await readExactly(client, 0)).length).toBe(0);
  });

  it('rejects with PrematureEofError carrying the bytes that arrived when the peer ends early', async () => {
    const { client, peer } = await pair();
    peer.end(Buffer.from('abc'));
    const err = await rejection(readExactly(client, 10));
    expect(err).toBeInstanceOf(PrematureEofError);
    expect(err).toMatchObject({ code: 'NET_ERR_PREMATURE_EOF', expected: 10, received: 3 });
    expect((err as PrematureEofError).data.toString()).toBe('abc');
    expect(classifyClose(err)).toBe('eof');
  });

  it('rejects with PrematureEofError and nothing received when the stream already ended', async () => {
    const { client, peer } = await pair();
    peer.end();
    expect((await readToEnd(client, { limit: 10 })).length).toBe(0);
    await expect(readExactly(client, 1)).rejects.toMatchObject({ code: 'NET_ERR_PREMATURE_EOF', received: 0 });
  });

  it('rejects with PeerResetError when the peer resets the connection', async () => {
    const { client, peer } = await pair();
    // The RST is sent once 'ab' has been read: some TCP stacks (gVisor's netstack) report a RST that lands right
    // behind unread data as an orderly end, which would make this test depend on timing.
    await writeAll(peer, 'ab');
    expect((await readExactly(client, 2)).toString()).toBe('ab');
    const reading = readExactly(client, 100);
    peer.resetAndDestroy();
    const err = await rejection(reading);
    expect(err).toBeInstanceOf(PeerResetError);
    expect(err).toMatchObject({ code: 'NET_ERR_PEER_RESET', received: 0 });
    expect((err as Error).cause).toMatchObject({ code: 'ECONNRESET' });
    expect(classifyClose(err)).toBe('reset');
  });

  it.skipIf(process.platform !== 'linux')(
    'rejects with PeerResetError, not PrematureEofError, when the RST lands right behind the data (Node sees an end)',
    async () => {
      const { client, peer } = await pair();
      const reading = readExactly(client, 100);
      // Data and RST in one go: libuv reads the data, sees the hang-up and reports EOF without reading again.
      peer.write('hello');
      peer.resetAndDestroy();
      const err = await rejection(reading);
      expect(err).toBeInstanceOf(PeerResetError);
      expect(err).toMatchObject({ code: 'NET_ERR_PEER_RESET', received: 5 });
      expect((err as Error).cause).toMatchObject({ code: 'ECONNRESET' });
      expect(classifyClose(err)).toBe('reset');
    },
  );

  it('rejects with SocketClosedError when the socket is destroyed locally during the read', async () => {
    const { client } = await pair();
    const reading = readExactly(client, 10);
    client.destroy();
    await expect(reading).rejects.toBeInstanceOf(SocketClosedError);
    await expect(readExactly(client, 1)).rejects.toMatchObject({ code: 'NET_ERR_SOCKET_CLOSED' });
  });

  it('rejects with TimeoutError and puts the partial bytes back for the next read', async () => {
    const { client, peer } = await pair();
    peer.write('abc');
    await once(client, 'readable'); // the three bytes are buffered, so readExactly takes them at once
    const err = await rejection(readExactly(client, 10, { timeoutMs: 20 }));
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err).toMatchObject({ code: 'NET_ERR_TIMEOUT', timeoutMs: 20 });
    expect((await readExactly(client, 3)).toString()).toBe('abc');
  });

  it('rejects with AbortedError and puts the partial bytes back when the signal aborts', async () => {
    const { client, peer } = await pair();
    peer.write('abc');
    await once(client, 'readable');
    const controller = new AbortController();
    const reading = readExactly(client, 10, { signal: controller.signal });
    controller.abort();
    await expect(reading).rejects.toMatchObject({ code: 'NET_ERR_ABORTED' });
    expect((await readExactly(client, 3)).toString()).toBe('abc');
    await expect(readExactly(client, 1, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
  });

  it('refuses a negative count and a socket with a text encoding', async () => {
    const { client } = await pair();
    expect(() => readExactly(client, -1)).toThrow(RangeError);
    client.setEncoding('utf8');
    await expect(readExactly(client, 1)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('readToEnd', () => {
  it('reads everything up to the end of stream when it fits the limit exactly', async () => {
    const { client, peer } = await pair();
    const data = bytes(100_000, 3);
    peer.end(data);
    expect((await readToEnd(client, { limit: data.length })).equals(data)).toBe(true);
  });

  it('rejects with SizeLimitError and destroys the socket when more than limit bytes arrive', async () => {
    const { client, peer } = await pair();
    peer.end(bytes(101));
    const err = await rejection(readToEnd(client, { limit: 100 }));
    expect(err).toBeInstanceOf(SizeLimitError);
    expect(err).toMatchObject({ code: 'NET_ERR_SIZE_LIMIT', limit: 100, received: 101 });
    expect(client.destroyed).toBe(true);
  });

  it('rejects with PeerResetError when the peer resets before the end', async () => {
    const { client, peer } = await pair();
    const reading = readToEnd(client, { limit: 1_000 });
    peer.resetAndDestroy();
    await expect(reading).rejects.toBeInstanceOf(PeerResetError);
  });

  it.skipIf(process.platform !== 'linux')(
    'rejects with PeerResetError instead of resolving when the RST lands right behind the data',
    async () => {
      const { client, peer } = await pair();
      const reading = readToEnd(client, { limit: 1_000 });
      peer.write(bytes(300));
      peer.resetAndDestroy();
      const err = await rejection(reading);
      expect(err).toBeInstanceOf(PeerResetError);
      expect(err).toMatchObject({ received: 300 });
    },
  );

  it('rejects with TimeoutError when the peer never ends the stream', async () => {
    const { client } = await pair();
    await expect(readToEnd(client, { limit: 10, timeoutMs: 10 })).rejects.toBeInstanceOf(TimeoutError);
  });
});

describe('writeAll', () => {
  it('writes strings and typed array views byte for byte', async () => {
    const { client, peer } = await pair();
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    await writeAll(client, 'héllo');
    await writeAll(client, backing.subarray(1, 4));
    await writeAll(client, Buffer.alloc(0));
    client.end();
    expect(await readToEnd(peer, { limit: 100 })).toEqual(
      Buffer.concat([Buffer.from('héllo'), Buffer.from([1, 2, 3])]),
    );
  });

  it('writes 32 MiB to a slow reader while keeping the writer buffer bounded (backpressure)', async () => {
    const { client, peer } = await pair();
    const data = bytes(32 * 1024 * 1024, 5);
    const writing = writeAll(client, data);
    // A single socket.write(data) would queue all 32 MiB in user space right here.
    let maxBuffered = client.writableLength;
    const reader = createHash('sha256');
    const slice = 1024 * 1024;
    for (let offset = 0; offset < data.length; offset += slice) {
      reader.update(await readExactly(peer, slice));
      maxBuffered = Math.max(maxBuffered, client.writableLength);
      await nextTurn(); // the slow part: let the writer run between every slice
    }
    await writing;
    expect(reader.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(maxBuffered).toBeLessThanOrEqual(256 * 1024);
  });

  it('rejects with PeerResetError when the peer resets in the middle of a large write', async () => {
    const { client, peer } = await pair();
    const writing = writeAll(client, bytes(32 * 1024 * 1024));
    await readExactly(peer, 1024);
    peer.resetAndDestroy();
    const err = await rejection(writing);
    expect(err).toBeInstanceOf(PeerResetError);
    expect(['ECONNRESET', 'EPIPE']).toContain(((err as Error).cause as NodeJS.ErrnoException).code);
  });

  it('rejects with SocketClosedError when the socket is destroyed locally, before or during the write', async () => {
    const { client } = await pair();
    const writing = writeAll(client, bytes(32 * 1024 * 1024));
    client.destroy();
    await expect(writing).rejects.toBeInstanceOf(SocketClosedError);
    await expect(writeAll(client, 'x')).rejects.toMatchObject({ code: 'NET_ERR_SOCKET_CLOSED' });
  });
});

describe('classifyClose', () => {
  it('calls a missing error an orderly end, ECONNRESET and EPIPE a reset, anything else an error', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    expect(classifyClose()).toBe('eof');
    expect(classifyClose(errno('ECONNRESET'))).toBe('reset');
    expect(classifyClose(errno('EPIPE'))).toBe('reset');
    expect(classifyClose(new PeerResetError(0))).toBe('reset');
    expect(classifyClose(new PrematureEofError(2, 1, Buffer.from('a')))).toBe('eof');
    expect(classifyClose(errno('ETIMEDOUT'))).toBe('error');
    expect(classifyClose(new Error('other'))).toBe('error');
  });

  it('classifies the error a real reset raises on the other end as a reset', async () => {
    const { client, peer } = await pair();
    const failed = once(client, 'error');
    peer.resetAndDestroy();
    const [err] = (await failed) as [Error];
    expect(classifyClose(err)).toBe('reset');
  });
});

describe('closeKind', () => {
  /**
   * A client whose reads are stopped in libuv (an `onread` socket stops reading on pause()), so that a reset waits
   * in the kernel as the socket's pending error: the state Node 20 (libuv 1.46) leaves behind when it reports a
   * RST right behind data as 'end'. Newer libuv (Node 24) reads again and reports ECONNRESET itself.
   */
  async function stoppedPair(): Promise<Pair & { received: () => number }> {
    const server = net.createServer({ allowHalfOpen: true });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    let received = 0;
    const client = net.connect({
      host: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      allowHalfOpen: true,
      onread: {
        buffer: Buffer.alloc(1024),
        callback: (n: number) => {
          received += n;
          return true;
        },
      },
    });
    const [[peer]] = (await Promise.all([once(server, 'connection'), once(client, 'connect')])) as [
      [net.Socket],
      unknown,
    ];
    server.close();
    cleanups.push(() => {
      client.destroy();
      peer.destroy();
    });
    return { client, peer, received: () => received };
  }

  it.skipIf(process.platform !== 'linux')(
    "reads a reset from the kernel's pending error (SO_ERROR) that Node has not seen, and keeps the answer",
    async () => {
      const { client, peer, received } = await stoppedPair();
      client.pause();
      const peerClosed = once(peer, 'close');
      peer.write('data');
      peer.resetAndDestroy();
      await peerClosed; // on loopback the RST has been delivered by the time the sender's close is reported
      expect(closeKind(client)).toBe('reset');
      // Reading SO_ERROR cleared the kernel's copy: Node now reads the data and an orderly-looking end...
      const ended = once(client, 'end');
      client.on('error', () => {});
      client.resume();
      await ended;
      expect(received()).toBe(4);
      expect(readSocketOption(client, SOL_SOCKET, SO_ERROR)).toBe(0);
      // ...and closeKind still says what it was.
      expect(closeKind(client)).toBe('reset');
    },
  );

  it.skipIf(process.platform !== 'linux')(
    'says reset for a RST right behind data, however this Node reports it, and eof for an orderly FIN',
    async () => {
      const ending = (client: net.Socket) =>
        new Promise<string>((resolve) => {
          client.on('data', () => {});
          client.once('end', () => resolve(closeKind(client)));
          client.once('error', (err) => resolve(closeKind(client, err)));
        });
      const reset = await pair();
      const resetKind = ending(reset.client);
      reset.peer.write('data');
      reset.peer.resetAndDestroy();
      expect(await resetKind).toBe('reset');

      const orderly = await pair();
      const orderlyKind = ending(orderly.client);
      orderly.peer.end('data');
      expect(await orderlyKind).toBe('eof');
    },
  );

  it('classifies a given error like classifyClose, and a socket without a descriptor as its error or eof', async () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    const { client } = await pair();
    expect(closeKind(client, errno('ETIMEDOUT'))).toBe('error');
    expect(closeKind(client, errno('EPIPE'))).toBe('reset');
    expect(closeKind(client)).toBe('eof'); // open, nothing pending
    client.destroy();
    await once(client, 'close');
    expect(closeKind(client)).toBe('eof');
  });
});
