import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { getKeepAlive, type KeepAliveOptions, setKeepAlive } from '../src/sys/keepalive.js';
import { getSocketFd, IPPROTO_TCP, readSocketOption, TCP_KEEPIDLE } from '../src/sys/sockopt.js';

interface Pair {
  server: net.Server;
  client: net.Socket;
  accepted: net.Socket;
}

const open: Pair[] = [];

/** A connected client and the server's accepted socket on 127.0.0.1, port 0. */
async function connectedPair(): Promise<Pair> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const pair = { server, client, accepted: await accepted };
  open.push(pair);
  return pair;
}

afterEach(async () => {
  for (const { server, client, accepted } of open.splice(0)) {
    client.destroy();
    accepted.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

const combinations: KeepAliveOptions[] = [
  { idle: 1, interval: 1, count: 1 },
  { idle: 5, interval: 2, count: 3 },
  { idle: 32767, interval: 32767, count: 127 },
  { idle: 7200, interval: 75, count: 9 },
];

describe('setKeepAlive', () => {
  it('starts from the kernel defaults (disabled, 7200/75/9)', async () => {
    const { client } = await connectedPair();
    expect(getKeepAlive(client)).toEqual({ enabled: false, idle: 7200, interval: 75, count: 9 });
  });

  for (const opts of combinations) {
    const label = `${opts.idle}/${opts.interval}/${opts.count}`;
    it(`sets and reads back ${label} on a connected client`, async () => {
      const { client } = await connectedPair();
      expect(setKeepAlive(client, opts)).toEqual(opts);
      expect(getKeepAlive(client)).toEqual({ enabled: true, ...opts });
    });

    it(`sets and reads back ${label} on an accepted server socket`, async () => {
      const { accepted } = await connectedPair();
      expect(setKeepAlive(accepted, opts)).toEqual(opts);
      expect(getKeepAlive(accepted)).toEqual({ enabled: true, ...opts });
    });
  }

  it('applies a second call exactly (unlike Node, which resets interval and count to 1/10)', async () => {
    const { client } = await connectedPair();
    setKeepAlive(client, { idle: 5, interval: 2, count: 3 });
    setKeepAlive(client, { idle: 6, interval: 2, count: 3 });
    expect(getKeepAlive(client)).toEqual({ enabled: true, idle: 6, interval: 2, count: 3 });
  });

  it('is inherited by sockets accepted on a listening server it was set on', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    expect(setKeepAlive(server, { idle: 11, interval: 3, count: 4 })).toEqual({ idle: 11, interval: 3, count: 4 });
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    const socket = await accepted;
    open.push({ server, client, accepted: socket });
    expect(getKeepAlive(socket)).toEqual({ enabled: true, idle: 11, interval: 3, count: 4 });
  });

  const invalid: Array<[string, KeepAliveOptions, string]> = [
    ['idle 0', { idle: 0, interval: 1, count: 1 }, 'idle 0'],
    ['idle -1', { idle: -1, interval: 1, count: 1 }, 'idle -1'],
    ['idle 1.5', { idle: 1.5, interval: 1, count: 1 }, 'idle 1.5'],
    ['idle 32768', { idle: 32768, interval: 1, count: 1 }, 'idle 32768'],
    ['interval 0', { idle: 5, interval: 0, count: 1 }, 'interval 0'],
    ['interval 32768', { idle: 5, interval: 32768, count: 1 }, 'interval 32768'],
    ['count 0', { idle: 5, interval: 1, count: 0 }, 'count 0'],
    ['count 128', { idle: 5, interval: 1, count: 128 }, 'count 128'],
    ['count NaN', { idle: 5, interval: 1, count: Number.NaN }, 'count NaN'],
  ];
  for (const [label, opts, named] of invalid) {
    it(`rejects ${label} with SocketOptionError naming the value and changes nothing`, async () => {
      const { client } = await connectedPair();
      expect(() => setKeepAlive(client, opts)).toThrow(
        expect.objectContaining({ code: 'NET_ERR_SOCKOPT', message: expect.stringContaining(named) }),
      );
      expect(() => setKeepAlive(client, opts)).toThrow(/expected an integer .* in 1\.\.(32767|127)/);
      expect(getKeepAlive(client)).toEqual({ enabled: false, idle: 7200, interval: 75, count: 9 });
    });
  }

  it('throws SocketOptionError before connect, when the socket has no descriptor yet', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      expect(() => getSocketFd(client)).toThrow(expect.objectContaining({ code: 'NET_ERR_SOCKOPT' }));
      expect(() => setKeepAlive(client, { idle: 5, interval: 1, count: 1 })).toThrow(
        /no file descriptor yet|no handle/,
      );
      await new Promise<void>((resolve) => client.once('connect', resolve));
      expect(setKeepAlive(client, { idle: 5, interval: 1, count: 1 }).idle).toBe(5);
      expect(readSocketOption(client, IPPROTO_TCP, TCP_KEEPIDLE)).toBe(5);
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('throws SocketOptionError after the socket is destroyed', async () => {
    const { client } = await connectedPair();
    client.destroy();
    expect(() => getKeepAlive(client)).toThrow(expect.objectContaining({ code: 'NET_ERR_SOCKOPT' }));
  });
});
