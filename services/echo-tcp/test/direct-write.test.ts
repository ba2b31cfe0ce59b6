import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectWriter, WRITE_DONE, WRITE_FAILED, WRITE_QUEUED } from '../src/direct-write.js';

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
