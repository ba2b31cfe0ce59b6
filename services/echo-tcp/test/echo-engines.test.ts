import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectionState, type EchoContext, type EchoSocket } from '../src/connection-state.js';
import { bytesQueued, FastEcho, finishFastEcho, startFastEcho } from '../src/fast-echo.js';
import { acceptOnHandle, takeOver } from '../src/handle-takeover.js';
import { finishEcho, startEcho } from '../src/stream-echo.js';
import { kConnection } from '../src/symbols.js';
import { offerUntilStalled, receive } from './helpers.js';

type Path = 'stream' | 'fast';

/** An in-process echo server on 127.0.0.1:0 using one engine alone: the stream echo or the fast one. */
async function echoServer(maxBuffered: number, path: Path = 'stream') {
  const context = {
    stats: { receivedBytes: 0, sentBytes: 0 },
    maxBuffered,
    pauses: 0,
    readErrors: [] as number[],
    onBackpressure: () => {
      context.pauses++;
    },
    onReadError: (_socket: EchoSocket, errno: number) => {
      context.readErrors.push(errno);
    },
  };
  const accepted: EchoSocket[] = [];
  const fast = path === 'fast';
  const engine = fast ? new FastEcho() : undefined;
  const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: fast }, (socket) => {
    if (fast) {
      const s = takeOver(socket, engine as FastEcho, new ConnectionState(context as EchoContext));
      accepted.push(s);
      startFastEcho(s);
      return;
    }
    const s = socket as EchoSocket;
    s[kConnection] = new ConnectionState(context as EchoContext);
    accepted.push(s);
    startEcho(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, context, accepted, port: (server.address() as net.AddressInfo).port };
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe.each(['stream', 'fast'] as const)('the echo loop (%s engine)', (path) => {
  it('stops reading when more than maxBuffered bytes are queued, and resumes when the client reads', async () => {
    const maxBuffered = 256 * 1024;
    const { server, context, accepted, port } = await echoServer(maxBuffered, path);
    cleanup.push(() => server.close());
    const client = net.connect({ port, host: '127.0.0.1' });
    cleanup.push(() => client.destroy());
    await new Promise((r) => client.once('connect', r));
    client.pause(); // never read, for now
    const payload = randomBytes(32 << 20);
    const offered = await offerUntilStalled(client, payload);
    const socket = accepted[0] as EchoSocket;
    // The fast path stops the handle's reads (onread returned false) without pausing the stream.
    if (path === 'stream') expect(socket.isPaused()).toBe(true);
    expect(context.pauses).toBeGreaterThanOrEqual(1);
    // Bounded: the queue passed maxBuffered (that is why reading stopped) by at most one read (64 KiB).
    expect(bytesQueued(socket)).toBeGreaterThan(maxBuffered);
    expect(bytesQueued(socket)).toBeLessThanOrEqual(maxBuffered + 64 * 1024);
    expect(offered).toBeLessThan(payload.length);

    // Reading resumes the echo: every byte offered comes back.
    const back = receive(client, offered, 20_000);
    client.resume();
    expect((await back).equals(payload.subarray(0, offered))).toBe(true);
    expect(context.stats.receivedBytes).toBe(offered);
  });

  it('on a client reset, closes the socket and reports it once: onReadError on the fast path, an error event on the stream path', async () => {
    const { server, context, accepted, port } = await echoServer(1 << 20, path);
    cleanup.push(() => server.close());
    const client = net.connect({ port, host: '127.0.0.1' });
    cleanup.push(() => client.destroy());
    await new Promise((r) => client.once('connect', r));
    const back = receive(client, 5);
    client.write('hello');
    expect((await back).toString()).toBe('hello');
    const socket = accepted[0] as EchoSocket;
    const errors: NodeJS.ErrnoException[] = [];
    socket.on('error', (err: NodeJS.ErrnoException) => errors.push(err));
    const closed = new Promise((r) => socket.once('close', r));
    client.resetAndDestroy();
    await closed;
    if (path === 'fast') {
      expect(context.readErrors).toEqual([-104]); // ECONNRESET, with no Error object built
      expect(errors).toEqual([]);
    } else {
      expect(context.readErrors).toEqual([]);
      expect(errors.map((e) => e.code)).toEqual(['ECONNRESET']);
    }
  });

  it('finishing echoes what was already read, sends FIN, and discards later input', async () => {
    const { server, accepted, port } = await echoServer(1 << 20, path);
    cleanup.push(() => server.close());
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    cleanup.push(() => client.destroy());
    await new Promise((r) => client.once('connect', r));
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((r) => client.once('end', r));
    const echoed = receive(client, 6);
    client.write('before');
    await echoed;
    (path === 'fast' ? finishFastEcho : finishEcho)(accepted[0] as EchoSocket);
    await ended;
    client.write('after'); // read and dropped by the service, not echoed, not a reset
    client.end();
    await new Promise((r) => client.once('close', r));
    expect(Buffer.concat(chunks).toString()).toBe('before');
  });

  it('keeps the server connection count right: it drops when connections close, and close() completes', async () => {
    const { server, port } = await echoServer(1 << 20, path);
    const clients = await Promise.all(
      Array.from(
        { length: 3 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const c = net.connect({ port, host: '127.0.0.1' }, () => resolve(c));
          }),
      ),
    );
    for (const c of clients) {
      const back = receive(c, 2);
      c.write('hi');
      expect((await back).toString()).toBe('hi');
    }
    const count = () => new Promise<number>((r, j) => server.getConnections((e, n) => (e ? j(e) : r(n))));
    expect(await count()).toBe(3);
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const c of clients) c.destroy();
    await closed;
    expect(await count()).toBe(0);
  });
});

describe('accepting on the listening handle (acceptOnHandle)', () => {
  it('hands each connection straight to a fast socket: no connection event, the count follows, maxConnections drops', async () => {
    const context = {
      stats: { receivedBytes: 0, sentBytes: 0 },
      maxBuffered: 1 << 20,
      onBackpressure: () => {},
      onReadError: () => {},
    } as unknown as EchoContext;
    let connectionEvents = 0;
    let drops = 0;
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true }, () => {
      connectionEvents++;
    });
    server.on('drop', () => drops++);
    server.maxConnections = 2;
    cleanup.push(() => server.close());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const accepted: EchoSocket[] = [];
    const onSocket = (socket: EchoSocket) => {
      accepted.push(socket);
      startFastEcho(socket);
    };
    expect(acceptOnHandle(server, new FastEcho(), context, onSocket)).toBe(true);
    const port = (server.address() as net.AddressInfo).port;
    const connect = () =>
      new Promise<net.Socket>((resolve) => {
        const c = net.connect({ port, host: '127.0.0.1' }, () => resolve(c));
        c.on('error', () => {});
        cleanup.push(() => c.destroy());
      });
    const clients = [await connect(), await connect()];
    for (const c of clients) {
      const back = receive(c, 5);
      c.write('hello');
      expect((await back).toString()).toBe('hello');
    }
    expect(accepted).toHaveLength(2);
    expect(connectionEvents).toBe(0);
    expect(accepted.every((s) => (s as unknown as { server: net.Server }).server === server)).toBe(true);
    const count = () => new Promise<number>((r, j) => server.getConnections((e, n) => (e ? j(e) : r(n))));
    expect(await count()).toBe(2);
    // A third is over maxConnections: closed at once and reported as 'drop', as Node's own accept does.
    const third = await connect();
    await new Promise((r) => third.once('close', r));
    expect(drops).toBe(1);
    expect(accepted).toHaveLength(2);
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const c of clients) c.destroy();
    await closed;
    expect(await count()).toBe(0);
  });
});
