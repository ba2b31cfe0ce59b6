import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { portOf, type ServiceProcess, stopAllServices } from '@net/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, connectTo, echo, randomPayload, startEcho } from './helpers.js';

describe('echo over TCP (RFC 862)', () => {
  let service: ServiceProcess;
  let dir: string;
  let v6Port: number;
  let unixPath: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'echo-tcp-'));
    unixPath = join(dir, 'echo.sock');
    service = await startEcho(['--listen', '[::1]:0', '--listen', `unix:${unixPath}`]);
    v6Port = portOf(service.endpoints.find((e) => e.startsWith('[::1]')) ?? '');
  });
  afterAll(async () => {
    await stopAllServices();
    rmSync(dir, { recursive: true, force: true });
  });

  it('listens on IPv4, IPv6 and a Unix socket at once, as its ready line says', () => {
    expect(service.endpoints).toEqual([`127.0.0.1:${service.port}`, `[::1]:${v6Port}`, `unix:${unixPath}`]);
  });

  it('echoes every byte of 300 concurrent clients sending random payloads of random sizes', async () => {
    const payloads = Array.from({ length: 300 }, () => randomPayload(1, 128 * 1024));
    const results = await Promise.all(
      payloads.map(async (payload) => {
        const socket = await connectTo(service.port);
        return echo(socket, payload);
      }),
    );
    results.forEach((result, i) => {
      expect(result.how).toBe('eof');
      expect(result.data.equals(payloads[i] as Buffer)).toBe(true);
    });
  });

  it('echoes a 64 MiB stream byte for byte, in order', async () => {
    const block = randomBytes(1 << 20);
    const blocks = 64;
    const blockAt = (i: number) => {
      const b = Buffer.from(block);
      b.writeUInt32BE(i, 0); // every block differs: a reordered or repeated block cannot pass
      return b;
    };
    const socket = await connectTo(service.port);
    let checked = 0;
    let mismatch = -1;
    const done = new Promise<void>((resolve, reject) => {
      let expected = blockAt(0);
      socket.on('data', (chunk: Buffer) => {
        let offset = 0;
        while (offset < chunk.length) {
          const inBlock = checked % block.length;
          const n = Math.min(chunk.length - offset, block.length - inBlock);
          if (mismatch === -1 && expected.compare(chunk, offset, offset + n, inBlock, inBlock + n) !== 0) {
            mismatch = checked;
          }
          checked += n;
          offset += n;
          if (checked % block.length === 0) expected = blockAt(checked / block.length);
        }
      });
      socket.on('end', resolve);
      socket.on('error', reject);
    });
    for (let i = 0; i < blocks; i++) {
      if (!socket.write(blockAt(i))) await new Promise((r) => socket.once('drain', r));
    }
    socket.end();
    await done;
    expect(mismatch).toBe(-1);
    expect(checked).toBe(blocks * block.length);
  });

  it('echoes everything still owed after the client half-closes, then closes in order', async () => {
    const socket = await connectTo(service.port);
    const payload = randomBytes(4 << 20);
    // The whole payload is queued, then FIN: most of it is still in flight when the service sees the FIN.
    const result = await echo(socket, payload);
    expect(result.how).toBe('eof');
    expect(result.data.length).toBe(payload.length);
    expect(result.data.equals(payload)).toBe(true);
  });

  it('keeps echoing to a client that half-closed nothing, byte after byte (interactive use)', async () => {
    const socket = await connectTo(service.port);
    const got = collect(socket);
    for (const word of ['a', 'bc', 'def']) {
      const back = new Promise<Buffer>((resolve) => socket.once('data', resolve));
      socket.write(word);
      expect((await back).toString()).toBe(word);
    }
    socket.end();
    expect((await got).how).toBe('eof');
  });

  it('echoes over IPv6 (::1)', async () => {
    const payload = randomBytes(100_000);
    const result = await echo(await connectTo(v6Port, { host: '::1' }), payload);
    expect(result.data.equals(payload)).toBe(true);
  });

  it('echoes over a Unix socket', async () => {
    const payload = randomBytes(100_000);
    const result = await echo(await connectTo(unixPath), payload);
    expect(result.data.equals(payload)).toBe(true);
  });

  it('an empty connection (connect, FIN) gets an orderly close and nothing else', async () => {
    const result = await echo(await connectTo(service.port), Buffer.alloc(0));
    expect(result).toEqual({ data: Buffer.alloc(0), how: 'eof' });
  });
});

describe('greeting line', () => {
  afterAll(stopAllServices);

  it('sends the rendered greeting once, before the echo', async () => {
    const service = await startEcho(['--greeting', 'hello from {instance}\\n', '--instance', 'echo-7']);
    const result = await echo(await connectTo(service.port), Buffer.from('ping'));
    expect(result.data.toString()).toBe('hello from echo-7\nping');
  });
});
