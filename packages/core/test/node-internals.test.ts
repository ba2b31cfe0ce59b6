import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readlinkSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  acceptOnListeningHandle,
  acceptRawHandles,
  closeRawHandle,
  closeRawHandleNow,
  DirectWriter,
  datagramHandle,
  EndOfInputHook,
  HandleReadHook,
  handleFd,
  hasHandle,
  NODE_INTERNALS_ENV,
  noDelayRawHandle,
  nodeInternalsAvailable,
  pauseRawHandle,
  RAW_READ_EOF,
  type RawClientHandle,
  type RawHandleEvents,
  rawHandlePeer,
  rawHandleUnsupported,
  rawReadNextInto,
  readEnded,
  readRawHandle,
  resetRawHandle,
  resumeRawHandle,
  shutdownRawHandle,
  takeOverSocket,
  tlsRawSocket,
  WRITE_DONE,
  WRITE_FAILED,
  WRITE_QUEUED,
  writeBufferToRawHandle,
  writeLatin1ToRawHandle,
} from '../src/sys/node-internals.js';

/** A connected pair on 127.0.0.1: `server` is the accepted socket we write on directly, `client` its peer. */
async function pair(): Promise<{ server: net.Socket; client: net.Socket; close: () => void }> {
  const listener = net.createServer();
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => listener.once('connection', r));
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  const server = await accepted;
  await new Promise((r) => client.once('connect', r));
  return {
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

interface Completion {
  owner: unknown;
  length: number;
  status: number;
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe('DirectWriter', () => {
  it('is available on this Node line (20, 24 and 26 have the binding it uses)', () => {
    expect(DirectWriter.available).toBe(true);
  });

  it('writes at once when the send buffer has room, and the peer receives the bytes in order', async () => {
    const { server, client, close } = await pair();
    cleanup.push(close);
    const completions: Completion[] = [];
    const writer = new DirectWriter((owner, length, status) => completions.push({ owner, length, status }));
    const parts = [Buffer.from('hello '), Buffer.from('direct '), Buffer.from('world')];
    for (const part of parts) expect(writer.write(server, part, 'owner')).toBe(WRITE_DONE);
    const received: Buffer[] = [];
    let length = 0;
    await new Promise<void>((resolve) => {
      client.on('data', (chunk: Buffer) => {
        received.push(chunk);
        length += chunk.length;
        if (length === 18) resolve();
      });
    });
    expect(Buffer.concat(received).toString()).toBe('hello direct world');
    expect(completions).toEqual([]); // nothing was queued, so nothing completes later
  });

  it('queues once the peer stops reading, completes each queued write when it reads, and loses no byte', async () => {
    const { server, client, close } = await pair();
    cleanup.push(close);
    client.pause();
    const completions: Completion[] = [];
    const writer = new DirectWriter((owner, length, status) => completions.push({ owner, length, status }));
    const data = randomBytes(64 << 20);
    const chunk = 256 << 10;
    let offset = 0;
    let queued = 0;
    // The kernel's buffers take a few MiB at most: writes must start being queued well before 64 MiB.
    while (offset < data.length && queued < 4) {
      const outcome = writer.write(server, data.subarray(offset, offset + chunk), offset);
      expect(outcome).not.toBe(WRITE_FAILED);
      if (outcome === WRITE_QUEUED) queued++;
      offset += chunk;
    }
    expect(queued).toBe(4);
    expect(completions).toEqual([]);
    const received: Buffer[] = [];
    let length = 0;
    await new Promise<void>((resolve) => {
      client.on('data', (c: Buffer) => {
        received.push(c);
        length += c.length;
        if (length === offset) resolve();
      });
      client.resume();
    });
    expect(Buffer.compare(Buffer.concat(received), data.subarray(0, offset))).toBe(0);
    expect(completions).toHaveLength(4);
    for (const c of completions) expect(c).toMatchObject({ length: chunk, status: 0 });
    // In write order, each with the owner it was given.
    const owners = completions.map((c) => c.owner as number);
    expect(owners).toEqual([...owners].sort((a, b) => a - b));
  });

  it('reports a queued write cancelled by a destroy with a negative status', async () => {
    const { server, client, close } = await pair();
    cleanup.push(close);
    client.pause();
    const completions: Completion[] = [];
    const writer = new DirectWriter((owner, length, status) => completions.push({ owner, length, status }));
    const block = randomBytes(1 << 20);
    let outcome: number = WRITE_DONE;
    for (let i = 0; i < 64 && outcome !== WRITE_QUEUED; i++) outcome = writer.write(server, block, 'last');
    expect(outcome).toBe(WRITE_QUEUED);
    server.destroy();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50));
    expect(completions).toHaveLength(1);
    expect(completions[0]?.owner).toBe('last');
    expect(completions[0]?.status).toBeLessThan(0);
  });

  it('fails with a system error, not a throw, on a socket whose handle is gone', async () => {
    const { server, close } = await pair();
    cleanup.push(close);
    const writer = new DirectWriter(() => {});
    server.destroy();
    expect(writer.write(server, Buffer.from('late'), null)).toBe(WRITE_FAILED);
    expect(writer.lastError?.code).toBe('EPIPE');
  });

  it('fails with the peer reset as ECONNRESET or EPIPE once the peer has reset the connection', async () => {
    const { server, client, close } = await pair();
    cleanup.push(close);
    const writer = new DirectWriter(() => {});
    server.on('error', () => {});
    client.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 50));
    let outcome: number = WRITE_DONE;
    for (let i = 0; i < 10 && outcome === WRITE_DONE; i++) outcome = writer.write(server, Buffer.from('x'), null);
    expect(outcome).toBe(WRITE_FAILED);
    expect(['ECONNRESET', 'EPIPE']).toContain(writer.lastError?.code);
  });
});

describe('nodeInternalsAvailable', () => {
  it('says yes on this Node line (20, 24 and 26 have every internal the fast paths use)', () => {
    expect(nodeInternalsAvailable({})).toEqual({ available: true });
    expect(nodeInternalsAvailable({ [NODE_INTERNALS_ENV]: 'on' })).toEqual({ available: true });
  });

  it(`says no, naming ${NODE_INTERNALS_ENV}, when ${NODE_INTERNALS_ENV}=off: the seam every fallback test uses`, () => {
    const answer = nodeInternalsAvailable({ [NODE_INTERNALS_ENV]: 'off' });
    expect(answer.available).toBe(false);
    expect(answer.available ? '' : answer.reason).toMatch(/NET_NODE_INTERNALS=off/);
  });

  it(`refuses any other value of ${NODE_INTERNALS_ENV} with NET_ERR_BAD_CONFIG, saying what is accepted`, () => {
    expect(() => nodeInternalsAvailable({ [NODE_INTERNALS_ENV]: 'of' })).toThrow(
      expect.objectContaining({ code: 'NET_ERR_BAD_CONFIG', message: expect.stringMatching(/"of".*on or off/) }),
    );
  });
});

describe('descriptors and stream state behind the fence', () => {
  it("reads a socket's descriptor, null once it has no handle, and whether it has one", async () => {
    const { server, close } = await pair();
    cleanup.push(close);
    const fd = handleFd(server);
    expect(typeof fd === 'number' && fd > 2).toBe(true);
    expect(hasHandle(server)).toBe(true);
    server.destroy();
    expect(handleFd(server)).toBeNull();
    expect(hasHandle(server)).toBe(false);
  });

  it("tells a stream that has seen its end (before 'end' is emitted), and finds no TLS parent on a plain socket", async () => {
    const { server, client, close } = await pair();
    cleanup.push(close);
    server.pause();
    expect(readEnded(server)).toBe(false);
    client.end('unread'); // buffered, unread: 'end' cannot be emitted before it is read
    for (let i = 0; i < 50 && !readEnded(server); i++) await new Promise((r) => setTimeout(r, 10));
    expect(readEnded(server)).toBe(true);
    expect(server.readableEnded).toBe(false);
    expect(tlsRawSocket(server)).toBeUndefined();
  });

  it("gives a bound dgram socket's handle, and NET_ERR_NODE_INTERNALS for an unbound one", async () => {
    const bound = dgram.createSocket('udp4');
    cleanup.push(() => bound.close());
    await new Promise<void>((r) => bound.bind(0, '127.0.0.1', r));
    expect(datagramHandle(bound).fd).toBeGreaterThan(2);
    const unbound = dgram.createSocket('udp4');
    cleanup.push(() => unbound.close());
    expect(() => datagramHandle(unbound)).toThrow(
      expect.objectContaining({ code: 'NET_ERR_NODE_INTERNALS', internal: 'dgram state' }),
    );
  });
});

/** A listener whose accepted handles go into sockets reading into `buffer` with `onread`; resolves the first. */
async function onreadPair(buffer: Buffer, callback: (nread: number, buf: Buffer) => boolean) {
  const listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((resolve) =>
    listener.once('connection', (socket: net.Socket) =>
      resolve(takeOverSocket(socket, { allowHalfOpen: true, onread: { buffer, callback } })),
    ),
  );
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const server = await accepted;
  return {
    listener,
    server,
    client,
    close: () => {
      client.destroy();
      server.destroy();
      listener.close();
    },
  };
}

describe('HandleReadHook', () => {
  it("hands each read to data() in the socket's buffer and leaves the end of stream to Node", async () => {
    const buffer = Buffer.alloc(64 * 1024);
    const viaNode: number[] = [];
    const { server, client, close } = await onreadPair(buffer, (nread) => {
      viaNode.push(nread);
      return true;
    });
    cleanup.push(close);
    const reads: string[] = [];
    const hook = new HandleReadHook(buffer, {
      data: (socket, buf, nread) => {
        expect(socket).toBe(server);
        reads.push(buf.toString('latin1', 0, nread));
        return true;
      },
      error: () => expect.unreachable('no read failed'),
    });
    expect(hook.install(server)).toBe(true);
    client.write('hello');
    for (let i = 0; i < 100 && reads.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reads).toEqual(['hello']);
    expect(viaNode).toEqual([]); // Node's onread callback never saw it
    const ended = once(server, 'end');
    client.end();
    await ended; // the FIN went through Node: 'end'
  });

  it('hands a failed read (a reset) to error() and destroys the socket without an error event', async () => {
    const buffer = Buffer.alloc(64 * 1024);
    const { server, client, close } = await onreadPair(buffer, () => true);
    cleanup.push(close);
    const errors: number[] = [];
    const hook = new HandleReadHook(buffer, { data: () => true, error: (_socket, errno) => errors.push(errno) });
    expect(hook.install(server)).toBe(true);
    server.on('error', () => expect.unreachable('a hooked reset builds no error'));
    const closed = once(server, 'close');
    client.resetAndDestroy();
    await closed;
    expect(errors).toEqual([-104]); // ECONNRESET
    expect(server.destroyed).toBe(true);
  });

  it('stops reading when data() returns false, until resume()', async () => {
    const buffer = Buffer.alloc(64 * 1024);
    const { server, client, close } = await onreadPair(buffer, () => true);
    cleanup.push(close);
    let reads = 0;
    const hook = new HandleReadHook(buffer, { data: () => ++reads > 1, error: () => {} });
    expect(hook.install(server)).toBe(true);
    client.write('one');
    for (let i = 0; i < 100 && reads === 0; i++) await new Promise((r) => setTimeout(r, 10));
    client.write('two');
    await new Promise((r) => setTimeout(r, 100));
    expect(reads).toBe(1); // stopped after the first
    server.resume();
    for (let i = 0; i < 100 && reads === 1; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reads).toBe(2);
  });

  it("installs on nothing whose handle is gone: the caller keeps Node's path", async () => {
    const { server, close } = await pair();
    cleanup.push(close);
    server.destroy();
    expect(new HandleReadHook(Buffer.alloc(16), { data: () => true, error: () => {} }).install(server)).toBe(false);
  });

  it("moves a socket's next reads into the buffer given to readNextInto, leaving the one just read untouched", async () => {
    const shared = Buffer.alloc(64 * 1024);
    const own = Buffer.alloc(64 * 1024);
    const { server, client, close } = await onreadPair(shared, () => true);
    cleanup.push(close);
    const reads: { own: boolean; text: string }[] = [];
    const hook = new HandleReadHook(shared, {
      data: (socket, buf, nread) => {
        reads.push({ own: buf === own, text: buf.toString('latin1', 0, nread) });
        // First read: move to `own`; second: back to the shared buffer.
        expect(hook.readNextInto(socket, reads.length === 1 ? own : shared)).toBe(true);
        return true;
      },
      error: () => expect.unreachable('no read failed'),
    });
    expect(hook.install(server)).toBe(true);
    const send = async (text: string, count: number): Promise<void> => {
      client.write(text);
      for (let i = 0; i < 100 && reads.length < count; i++) await new Promise((r) => setTimeout(r, 10));
    };
    await send('one', 1);
    await send('two', 2);
    await send('six', 3);
    expect(reads).toEqual([
      { own: false, text: 'one' },
      { own: true, text: 'two' },
      { own: false, text: 'six' },
    ]);
    // Each read landed where the hook said: the shared buffer's first bytes are the last read, own's the second.
    expect(own.toString('latin1', 0, 3)).toBe('two');
    expect(shared.toString('latin1', 0, 3)).toBe('six');
    const other = await pair();
    cleanup.push(other.close);
    expect(hook.readNextInto(other.server, own)).toBe(false); // not hooked by it
  });
});

describe('EndOfInputHook', () => {
  it("leaves data to Node ('data' events) and ends a reset connection through onEnd, with no error event", async () => {
    const { server, client, close } = await pair();
    cleanup.push(close);
    const ended: net.Socket[] = [];
    const hook = new EndOfInputHook((socket) => {
      ended.push(socket);
      socket.destroy();
    });
    expect(hook.install(server)).toBe(true);
    const data = once(server, 'data');
    client.write('junk');
    expect(String((await data)[0])).toBe('junk');
    server.on('error', () => expect.unreachable('no error event after the hook'));
    const closed = once(server, 'close');
    client.resetAndDestroy();
    await closed;
    expect(ended).toEqual([server]);
  });
});

describe('acceptOnListeningHandle', () => {
  it('refuses a server that is not listening (no handle), changing nothing', () => {
    const server = net.createServer();
    expect(acceptOnListeningHandle(server, {}, () => {})).toBe(false);
  });
});

describe('raw accepted handles', () => {
  /** Events of one raw connection, recorded in order; `closed` resolves once libuv is done with the handle. */
  function recorder(): RawHandleEvents & { log: string[]; closed: Promise<void> } {
    let done: () => void = () => {};
    const closed = new Promise<void>((r) => {
      done = r;
    });
    const log: string[] = [];
    return {
      log,
      closed,
      onRead: (bytes) => log.push(bytes === RAW_READ_EOF ? 'eof' : bytes > 0 ? `read ${bytes}` : `error ${bytes}`),
      onQueuedWrite: (status, bytes) => log.push(`queued write ${status} ${bytes}`),
      onShutdown: (status) => log.push(`shutdown ${status}`),
      onClosed: () => {
        log.push('closed');
        done();
      },
    };
  }

  it('are usable on this Node line, and not where NET_NODE_INTERNALS=off says no', () => {
    expect(rawHandleUnsupported({})).toBeUndefined();
    expect(rawHandleUnsupported({ [NODE_INTERNALS_ENV]: 'off' })).toMatch(/NET_NODE_INTERNALS=off/);
  });

  it('answer without a net.Socket: the line and our FIN reach the client, its input and FIN are read, then close', async () => {
    const server = net.createServer(() => {
      throw new Error("a raw handle must never become a 'connection'");
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const events = recorder();
    const accepted = new Promise<RawClientHandle>((resolve, reject) => {
      const taken = acceptRawHandles(server, resolve, (errno) => reject(new Error(`accept failed: ${errno}`)));
      expect(taken).toBe(true);
    });
    const client = net.connect({
      port: (server.address() as net.AddressInfo).port,
      host: '127.0.0.1',
      allowHalfOpen: true,
    });
    try {
      const handle = await accepted;
      expect(readRawHandle(handle, events)).toBe(0);
      expect(writeLatin1ToRawHandle(handle, 'Sunday, December 6, 2026 22:00:00-UTC\r\n')).toBe(0);
      expect(shutdownRawHandle(handle)).toBe(0);
      const chunks: Buffer[] = [];
      client.on('data', (d: Buffer) => chunks.push(d));
      await once(client, 'end');
      expect(Buffer.concat(chunks).toString('latin1')).toBe('Sunday, December 6, 2026 22:00:00-UTC\r\n');
      client.end('bye');
      for (let i = 0; i < 100 && !events.log.includes('eof'); i++) await new Promise((r) => setTimeout(r, 10));
      closeRawHandle(handle);
      await events.closed;
      expect(events.log).toEqual(['shutdown 0', 'read 3', 'eof', 'closed']);
    } finally {
      client.destroy();
      server.close();
    }
  });

  /** A server whose next accepted handle resolves `handle`, and a client connected to it. */
  async function rawPair(clientOptions: net.NetConnectOpts = { port: 0 }) {
    const server = net.createServer(() => {
      throw new Error("a raw handle must never become a 'connection'");
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const handle = new Promise<RawClientHandle>((resolve, reject) => {
      acceptRawHandles(server, resolve, (errno) => reject(new Error(`accept failed: ${errno}`)));
    });
    const client = net.connect({
      ...clientOptions,
      port: (server.address() as net.AddressInfo).port,
      host: '127.0.0.1',
    });
    client.on('error', () => {});
    cleanup.push(() => {
      client.destroy();
      server.close();
    });
    await once(client, 'connect');
    return { handle: await handle, client };
  }

  it('read into a buffer of ours, and into the next one rawReadNextInto gives, leaving the one just read as it was', async () => {
    const { handle, client } = await rawPair();
    const first = Buffer.alloc(64);
    const second = Buffer.alloc(64);
    const reads: string[] = [];
    let current = first;
    const events = recorder();
    const onRead = events.onRead;
    events.onRead = (bytes) => {
      onRead(bytes);
      if (bytes <= 0) return;
      reads.push(current.toString('latin1', 0, bytes));
      if (current === first) {
        rawReadNextInto(handle, second);
        current = second;
      }
    };
    expect(readRawHandle(handle, events, first)).toBe(0);
    client.write('one');
    for (let i = 0; i < 100 && reads.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
    client.write('two!');
    for (let i = 0; i < 100 && reads.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reads).toEqual(['one', 'two!']);
    expect(first.toString('latin1', 0, 3)).toBe('one');
    expect(second.toString('latin1', 0, 4)).toBe('two!');
    closeRawHandle(handle);
    await events.closed;
  });

  it('write Buffers at once or queued (with their byte count), stop and resume reading, and tell the peer', async () => {
    const { handle, client } = await rawPair();
    noDelayRawHandle(handle);
    expect(rawHandlePeer(handle)).toEqual({ address: '127.0.0.1', port: client.localPort });
    const events = recorder();
    expect(readRawHandle(handle, events, Buffer.alloc(1024))).toBe(0);
    expect(writeBufferToRawHandle(handle, Buffer.from('at once'))).toBe(0);
    client.pause();
    // The client reads nothing: the kernel's buffers fill and libuv queues (bounded: 64 MiB at most).
    const chunk = Buffer.alloc(1 << 20, 7);
    let outcome = 0;
    let written = 0;
    for (let i = 0; i < 64 && outcome === 0; i++) {
      outcome = writeBufferToRawHandle(handle, chunk);
      written += chunk.length;
    }
    expect(outcome).toBe(1);
    expect(pauseRawHandle(handle)).toBe(0);
    client.write('while paused');
    await new Promise((r) => setTimeout(r, 50));
    expect(events.log.filter((e) => e.startsWith('read'))).toEqual([]);
    expect(resumeRawHandle(handle)).toBe(0);
    let received = 0;
    client.on('data', (d: Buffer) => {
      received += d.length;
    });
    client.resume();
    for (let i = 0; i < 500 && !events.log.includes(`queued write 0 ${chunk.length}`); i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(events.log).toContain(`queued write 0 ${chunk.length}`);
    expect(events.log).toContain('read 12');
    for (let i = 0; i < 500 && received < written + 7; i++) await new Promise((r) => setTimeout(r, 10));
    expect(received).toBe(written + 7);
    closeRawHandle(handle);
    await events.closed;
  });

  /** What descriptor `fd` of this process is now (`socket:[inode]`...), or 'closed'. */
  function descriptor(fd: number): string {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return 'closed';
    }
  }

  /** Turns of the event loop, for whatever libuv still has to report. */
  async function turns(n: number): Promise<void> {
    for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 5));
  }

  it('close at once, telling no one: the descriptor is closed on return, a queued write is cancelled, the client reads the end', async () => {
    const { handle, client } = await rawPair();
    const events = recorder();
    expect(readRawHandle(handle, events)).toBe(0);
    const fd = (handle as unknown as { fd: number }).fd;
    const socketLink = descriptor(fd);
    expect(socketLink).toMatch(/^socket:/);
    client.pause();
    const chunk = Buffer.alloc(1 << 20, 7);
    let outcome = 0;
    for (let i = 0; i < 64 && outcome === 0; i++) outcome = writeBufferToRawHandle(handle, chunk);
    expect(outcome).toBe(1);
    const ended = new Promise<void>((resolve) => client.once('end', resolve).once('close', () => resolve()));
    client.resume();
    closeRawHandleNow(handle);
    expect(descriptor(fd)).not.toBe(socketLink);
    await ended;
    await turns(4);
    // Our bytes that the kernel held still reached the client; libuv's queued one was cancelled (ECANCELED).
    expect(events.log).toEqual([`queued write -125 ${chunk.length}`]);
  });

  it.each([
    {
      how: 'resetRawHandle: onClosed once libuv is done',
      reset: (h: RawClientHandle) => resetRawHandle(h),
      told: ['closed'],
    },
    {
      how: 'closeRawHandleNow(handle, true): telling no one',
      reset: (h: RawClientHandle) => closeRawHandleNow(h, true),
      told: [],
    },
  ])('reset a connection (SO_LINGER 0), $how; the client sees ECONNRESET', async ({ reset, told }) => {
    const { handle, client } = await rawPair();
    const errors: string[] = [];
    client.on('error', (err: NodeJS.ErrnoException) => errors.push(err.code ?? ''));
    const events = recorder();
    expect(readRawHandle(handle, events)).toBe(0);
    // (events.once would reject on the 'error' this test expects)
    const closed = new Promise((r) => client.once('close', r));
    reset(handle);
    await closed;
    await turns(4);
    expect(errors).toEqual(['ECONNRESET']);
    expect(events.log).toEqual(told);
  });

  it('refuse a server that is not listening (no handle), changing nothing', () => {
    expect(
      acceptRawHandles(
        net.createServer(),
        () => {},
        () => {},
      ),
    ).toBe(false);
  });
});
