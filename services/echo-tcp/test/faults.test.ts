import { randomBytes } from 'node:crypto';
import { stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { collect, connectTo, receive, startEcho } from './helpers.js';

describe('test knobs', () => {
  afterEach(stopAllServices);

  it('--delay-ms holds every echo for that long, keeping order and every byte', async () => {
    const service = await startEcho(['--delay-ms', '150']);
    const socket = await connectTo(service.port);
    const got = collect(socket);
    const started = performance.now();
    const first = receive(socket, 1, 5000);
    const parts = Array.from({ length: 20 }, () => randomBytes(10_000));
    for (const p of parts) socket.write(p);
    await first;
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    socket.end();
    const result = await got;
    expect(result.how).toBe('eof');
    expect(result.data.equals(Buffer.concat(parts))).toBe(true);
  });

  it('--close-after-bytes echoes exactly that many bytes, then closes in order', async () => {
    const service = await startEcho(['--close-after-bytes', '10']);
    const socket = await connectTo(service.port);
    const got = collect(socket);
    socket.write('0123456789abcdef'); // no FIN from us: the service closes on its own
    const result = await got;
    expect(result.data.toString()).toBe('0123456789');
    expect(result.how).toBe('eof');
  });

  it('--close-after-bytes with --close-with-reset ends with a reset after the bytes', async () => {
    const service = await startEcho(['--close-after-bytes', '10', '--close-with-reset']);
    const socket = await connectTo(service.port);
    const got = collect(socket);
    const ten = receive(socket, 10, 5000);
    socket.write('0123456789abcdef');
    expect((await ten).subarray(0, 10).toString()).toBe('0123456789');
    expect((await got).how).toBe('reset');
  });

  it('--close-after-seconds closes a connection that long after it opened, after echoing what it owed', async () => {
    const service = await startEcho(['--close-after-seconds', '0.3']);
    const socket = await connectTo(service.port);
    const got = collect(socket);
    socket.write('before');
    const result = await got;
    expect(result).toEqual({ data: Buffer.from('before'), how: 'eof' });
  });

  it('--close-with-reset answers a half-close with the whole echo, then a reset instead of a FIN', async () => {
    const service = await startEcho(['--close-with-reset']);
    const socket = await connectTo(service.port);
    const payload = randomBytes(64 * 1024);
    const back = receive(socket, payload.length, 5000);
    const got = collect(socket);
    socket.end(payload);
    expect((await back).equals(payload)).toBe(true);
    expect((await got).how).toBe('reset');
  });
});
