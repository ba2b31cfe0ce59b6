import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DatagramBatchError } from '../src/errors.js';
import { DatagramBatch, datagramBatchSupport, takeOverDatagramSocket } from '../src/udp/datagram-batch.js';

const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) {
    try {
      s.close();
    } catch {
      // closed by the test
    }
  }
});

async function bound(type: 'udp4' | 'udp6', host: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  sockets.push(socket);
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return socket;
}

/** Waits (polling the batch, never more than 2 s) until `count` datagrams have been received on `fd`. */
function receiveAll(batch: DatagramBatch, fd: number, count: number): number {
  let n = 0;
  for (let tries = 0; tries < 20 && n === 0; tries++) {
    batch.wait([fd], 100);
    n = batch.receive(fd);
  }
  expect(n).toBe(count);
  return n;
}

function collect(socket: dgram.Socket, count: number): Promise<{ msg: Buffer; port: number }[]> {
  const got: { msg: Buffer; port: number }[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${count} replies`)), 2000);
    socket.on('message', (msg, rinfo) => {
      got.push({ msg, port: rinfo.port });
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe('DatagramBatch (recvmmsg/sendmmsg through koffi)', () => {
  it('is supported on this machine (Linux x64 with koffi)', () => {
    expect(datagramBatchSupport()).toBeUndefined();
  });

  it('receives a burst in one call with each source and length, and sends it back unchanged from the same memory', async () => {
    const server = await bound('udp4', '127.0.0.1');
    const fd = takeOverDatagramSocket(server);
    const client = await bound('udp4', '127.0.0.1');
    const sizes = [0, 1, 64, 1500, 9000, 65507];
    const payloads = sizes.map((size, i) => Buffer.alloc(size, i + 1));
    const replies = collect(client, sizes.length);
    for (const p of payloads) client.send(p, server.address().port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
    const batch = new DatagramBatch(16);
    const n = receiveAll(batch, fd, sizes.length);
    for (let i = 0; i < n; i++) {
      expect(batch.length(i)).toBe(sizes[i]);
      expect(batch.truncated(i)).toBe(false);
      expect(batch.port(i)).toBe(client.address().port);
      expect(batch.address(i)).toBe('127.0.0.1');
      expect(Buffer.compare(Buffer.from(batch.data(i)), payloads[i] as Buffer)).toBe(0);
      batch.reply(i);
    }
    expect(batch.replyBytes(0, n)).toBe(sizes.reduce((a, b) => a + b, 0));
    expect(batch.send(fd)).toBe(n);
    const got = await replies;
    expect(got.map((g) => g.msg.length)).toEqual(sizes);
    for (let i = 0; i < n; i++) expect(Buffer.compare(got[i]?.msg as Buffer, payloads[i] as Buffer)).toBe(0);
    // The reply comes from the server's own socket: what the client sent to.
    expect(got.every((g) => g.port === server.address().port)).toBe(true);
  });

  it('answers only the datagrams queued with reply(), each to its own source', async () => {
    const server = await bound('udp4', '127.0.0.1');
    const fd = takeOverDatagramSocket(server);
    const a = await bound('udp4', '127.0.0.1');
    const b = await bound('udp4', '127.0.0.1');
    const gotA = collect(a, 2);
    let bReplies = 0;
    b.on('message', () => bReplies++);
    a.send('a1', server.address().port, '127.0.0.1');
    b.send('b1', server.address().port, '127.0.0.1');
    a.send('a2', server.address().port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 50));
    const batch = new DatagramBatch(8);
    const n = receiveAll(batch, fd, 3);
    for (let i = 0; i < n; i++) if (batch.port(i) === a.address().port) batch.reply(i);
    expect(batch.replyCount).toBe(2);
    expect(batch.send(fd)).toBe(2);
    expect((await gotA).map((g) => g.msg.toString())).toEqual(['a1', 'a2']);
    await new Promise((r) => setTimeout(r, 50));
    expect(bReplies).toBe(0);
  });

  it('gives IPv6 sources in dgram text form', async () => {
    const server = await bound('udp6', '::1');
    const fd = takeOverDatagramSocket(server);
    const client = await bound('udp6', '::1');
    const replies = collect(client, 1);
    client.send('six', server.address().port, '::1');
    await new Promise((r) => setTimeout(r, 50));
    const batch = new DatagramBatch(4);
    receiveAll(batch, fd, 1);
    expect(batch.address(0)).toBe('::1');
    expect(batch.port(0)).toBe(client.address().port);
    batch.reply(0);
    expect(batch.send(fd)).toBe(1);
    expect((await replies)[0]?.msg.toString()).toBe('six');
  });

  it('returns 0 when nothing is waiting, and wait() times out with false', async () => {
    const server = await bound('udp4', '127.0.0.1');
    const fd = takeOverDatagramSocket(server);
    const batch = new DatagramBatch(4);
    expect(batch.receive(fd)).toBe(0);
    expect(batch.send(fd)).toBe(0);
    const started = Date.now();
    expect(batch.wait([fd], 30)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(20);
  });

  it('stops dgram from reading the socket it took over', async () => {
    const server = await bound('udp4', '127.0.0.1');
    let seenByDgram = 0;
    server.on('message', () => seenByDgram++);
    const fd = takeOverDatagramSocket(server);
    const client = await bound('udp4', '127.0.0.1');
    for (let i = 0; i < 5; i++) client.send('x', server.address().port, '127.0.0.1');
    await new Promise((r) => setTimeout(r, 100));
    expect(seenByDgram).toBe(0);
    receiveAll(new DatagramBatch(8), fd, 5);
  });

  it('throws a coded error for a descriptor that is not a socket, and refuses a bad capacity', () => {
    const batch = new DatagramBatch(2);
    expect(() => batch.receive(-1)).toThrow(DatagramBatchError);
    try {
      batch.receive(-1);
    } catch (error) {
      expect(error).toMatchObject({
        code: 'NET_ERR_DATAGRAM_BATCH',
        errnoCode: 'EBADF',
        errno: -9,
        syscall: 'recvmmsg',
      });
    }
    expect(() => new DatagramBatch(0)).toThrow(/integer from 1 to 1024, got 0/);
    const unbound = dgram.createSocket('udp4');
    sockets.push(unbound);
    expect(() => takeOverDatagramSocket(unbound)).toThrow(/cannot take over/);
  });
});
