import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { getUserTimeout, setUserTimeout, USER_TIMEOUT_MAX_MS } from '../src/sys/user-timeout.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function connectedPair(): Promise<{ server: net.Server; client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer();
  const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const accepted = await acceptedP;
  cleanups.push(async () => {
    client.destroy();
    accepted.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, client, accepted };
}

describe('setUserTimeout', () => {
  it('is off (0) on a fresh socket', async () => {
    const { client } = await connectedPair();
    expect(getUserTimeout(client)).toBe(0);
  });

  for (const ms of [1, 3000, 10_000, USER_TIMEOUT_MAX_MS, 0]) {
    it(`sets and reads back ${ms} ms on a client and on an accepted socket`, async () => {
      const { client, accepted } = await connectedPair();
      expect(setUserTimeout(client, ms)).toBe(ms);
      expect(getUserTimeout(client)).toBe(ms);
      expect(setUserTimeout(accepted, ms)).toBe(ms);
      expect(getUserTimeout(accepted)).toBe(ms);
    });
  }

  it('turns the option off again with 0', async () => {
    const { client } = await connectedPair();
    setUserTimeout(client, 4000);
    setUserTimeout(client, 0);
    expect(getUserTimeout(client)).toBe(0);
  });

  it('is inherited by sockets accepted on a listening server it was set on', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    expect(setUserTimeout(server, 4500)).toBe(4500);
    const acceptedP = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const accepted = await acceptedP;
    cleanups.push(async () => {
      client.destroy();
      accepted.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    expect(getUserTimeout(accepted)).toBe(4500);
  });

  for (const bad of [-1, 1.5, 2 ** 31, Number.NaN]) {
    it(`rejects ${bad} with SocketOptionError naming the value and changes nothing`, async () => {
      const { client } = await connectedPair();
      setUserTimeout(client, 2000);
      expect(() => setUserTimeout(client, bad)).toThrow(
        expect.objectContaining({ code: 'NET_ERR_SOCKOPT', message: expect.stringContaining(`timeout ${bad}:`) }),
      );
      expect(getUserTimeout(client)).toBe(2000);
    });
  }
});
