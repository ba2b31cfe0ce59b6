import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { acceptRawHandles, type RawClientHandle } from '@net/core';
import { afterEach, describe, expect, it } from 'vitest';
import { RawConnection, RawEcho, type RawEchoOwner } from '../src/raw-echo.js';
import { offerUntilStalled, receive } from './helpers.js';

/** An in-process server on 127.0.0.1:0 echoing on raw handles alone (raw-echo.ts), with what its owner is told. */
async function rawServer(maxBuffered: number, greeting?: Buffer) {
  const told = { pauses: 0, failed: [] as string[], closed: 0 };
  const owner: RawEchoOwner = {
    stats: { receivedBytes: 0, sentBytes: 0 },
    maxBuffered,
    onBackpressure: () => {
      told.pauses++;
    },
    failed: (_conn, errno, syscall) => told.failed.push(`${syscall} ${errno}`),
    closed: () => {
      told.closed++;
    },
  };
  const engine = new RawEcho(owner);
  const accepted: RawConnection[] = [];
  const server = net.createServer(() => {
    throw new Error("a raw connection must never become a 'connection'");
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  acceptRawHandles(
    server,
    (handle) => {
      const conn = new RawConnection(handle, engine);
      accepted.push(conn);
      conn.start(greeting);
    },
    (errno) => told.failed.push(`accept ${errno}`),
  );
  cleanup.push(() => {
    for (const c of accepted) c.destroy();
    server.close();
  });
  return { owner, told, accepted, port: (server.address() as net.AddressInfo).port };
}

async function connect(port: number, options: { allowHalfOpen?: boolean } = {}): Promise<net.Socket> {
  const client = net.connect({ port, host: '127.0.0.1', ...options });
  client.on('error', () => {});
  cleanup.push(() => client.destroy());
  await new Promise((r) => client.once('connect', r));
  return client;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await sleep(10);
  if (!condition()) throw new Error(`never: ${what}`);
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

describe('the raw echo (no net.Socket)', () => {
  it('echoes what the client sends, then answers its FIN with ours once the echo is out, and closes', async () => {
    const { owner, told, accepted, port } = await rawServer(1 << 20);
    const client = await connect(port, { allowHalfOpen: true });
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((r) => client.once('end', r));
    const payload = randomBytes(200_000); // bulk reads too: the connection's own buffer
    client.end(payload);
    await ended;
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    await until(() => told.closed === 1, 'the connection closed');
    expect(told.failed).toEqual([]);
    expect(owner.stats).toEqual({ receivedBytes: payload.length, sentBytes: payload.length });
    expect([accepted[0]?.bytesRead, accepted[0]?.bytesWritten]).toEqual([payload.length, payload.length]);
  });

  it('sends the greeting before any echo', async () => {
    const { port } = await rawServer(1 << 20, Buffer.from('hello\r\n'));
    const client = await connect(port);
    const back = receive(client, 11);
    client.write('ping');
    expect((await back).toString()).toBe('hello\r\nping');
  });

  it('stops reading past maxBuffered queued (by at most one read), and resumes when the client reads', async () => {
    const maxBuffered = 256 * 1024;
    const { told, accepted, port } = await rawServer(maxBuffered);
    const client = await connect(port);
    client.pause(); // never read, for now
    const payload = randomBytes(32 << 20);
    const offered = await offerUntilStalled(client, payload);
    const conn = accepted[0] as RawConnection;
    expect(told.pauses).toBeGreaterThanOrEqual(1);
    expect(conn.queuedBytes).toBeGreaterThan(maxBuffered);
    expect(conn.queuedBytes).toBeLessThanOrEqual(maxBuffered + 64 * 1024);
    expect(offered).toBeLessThan(payload.length);
    const back = receive(client, offered, 20_000);
    client.resume();
    expect((await back).equals(payload.subarray(0, offered))).toBe(true);
    expect(conn.queuedBytes).toBe(0);
  });

  it('on a client reset, tells its owner once (read ECONNRESET) and closes', async () => {
    const { told, port } = await rawServer(1 << 20);
    const client = await connect(port);
    const back = receive(client, 5);
    client.write('hello');
    expect((await back).toString()).toBe('hello');
    client.resetAndDestroy();
    await until(() => told.closed === 1, 'the connection closed');
    expect(told.failed).toEqual(['read -104']);
  });

  it('finishing (a drain) sends our FIN after what was read, then discards later input until the client closes', async () => {
    const { told, accepted, port } = await rawServer(1 << 20);
    const client = await connect(port, { allowHalfOpen: true });
    const chunks: Buffer[] = [];
    client.on('data', (c: Buffer) => chunks.push(c));
    const ended = new Promise((r) => client.once('end', r));
    const echoed = receive(client, 6);
    client.write('before');
    await echoed;
    (accepted[0] as RawConnection).finish();
    await ended;
    client.write('after'); // read and dropped, not echoed, not a reset
    await sleep(20);
    expect(told.closed).toBe(0);
    client.end();
    await new Promise((r) => client.once('close', r));
    await until(() => told.closed === 1, 'the connection closed');
    expect(Buffer.concat(chunks).toString()).toBe('before');
    expect(told.failed).toEqual([]);
  });

  it('a greeting the kernel refuses (the client reset first) closes the connection through its events, once', async () => {
    const told = { failed: [] as string[], closed: 0 };
    const engine = new RawEcho({
      stats: { receivedBytes: 0, sentBytes: 0 },
      maxBuffered: 1 << 20,
      onBackpressure: () => {},
      failed: (_conn, errno, syscall) => told.failed.push(`${syscall} ${errno}`),
      closed: () => {
        told.closed++;
      },
    });
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => server.close());
    const handles: RawClientHandle[] = [];
    acceptRawHandles(
      server,
      (h) => handles.push(h),
      () => {},
    );
    const client = await connect((server.address() as net.AddressInfo).port);
    await until(() => handles.length === 1, 'accepted');
    client.resetAndDestroy();
    await new Promise((r) => client.once('close', r));
    await sleep(20); // the reset reaches the accepted socket
    const conn = new RawConnection(handles[0] as RawClientHandle, engine);
    conn.start(Buffer.from('hello\r\n'));
    await until(() => told.closed === 1, 'the connection closed');
    expect(told.failed).toHaveLength(1);
    expect(told.failed[0]).toMatch(/^(write|read) -(104|32)$/); // ECONNRESET or EPIPE
    expect(conn.destroyed).toBe(true);
  });

  it('destroy() closes at once, and only once', async () => {
    const { told, accepted, port } = await rawServer(1 << 20);
    const client = await connect(port);
    await until(() => accepted.length === 1, 'accepted');
    const closed = new Promise((r) => client.once('close', r));
    const conn = accepted[0] as RawConnection;
    conn.destroy();
    conn.destroy();
    await closed;
    await until(() => told.closed === 1, 'the connection closed');
    await sleep(20);
    expect(told.closed).toBe(1);
  });
});
