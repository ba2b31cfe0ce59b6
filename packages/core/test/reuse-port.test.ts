import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { bindUdpReusePort, listenReusePort, reusePortSupport } from '../src/sys/reuse-port.js';
import { readSocketOption, SO_REUSEPORT, SOL_SOCKET } from '../src/sys/sockopt.js';

const CONNECTS = 40;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track(server: net.Server): net.Server {
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** A server that counts and closes every connection it accepts. */
function countingServer(): { server: net.Server; count: () => number } {
  let accepted = 0;
  const server = track(
    net.createServer((socket) => {
      accepted++;
      socket.end();
    }),
  );
  return { server, count: () => accepted };
}

/** Makes `n` sequential connects to 127.0.0.1:port, each waited until the server closes it. */
async function connectMany(port: number, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', reject).on('close', () => resolve());
      socket.resume();
    });
  }
}

const ipv6 = await new Promise<boolean>((resolve) => {
  const probe = net.createServer();
  probe.once('error', () => resolve(false));
  probe.listen(0, '::1', () => probe.close(() => resolve(true)));
});

describe('reusePortSupport', () => {
  it('reports native on Node >= 22.12 and fd on Node 20, on Linux', () => {
    const [major = 0] = process.versions.node.split('.').map(Number);
    expect(reusePortSupport()).toBe(major >= 23 ? 'native' : major === 20 ? 'fd' : expect.any(String));
  });
});

describe('listenReusePort', () => {
  const paths: Array<'native' | 'fd' | undefined> = [undefined, 'fd'];
  for (const via of paths) {
    const label = via ?? 'default';
    it(`lets two servers share a port and the kernel spreads ${CONNECTS} connects over both (${label} path)`, async () => {
      const a = countingServer();
      const b = countingServer();
      await listenReusePort(a.server, via ? { host: '127.0.0.1', port: 0, via } : { host: '127.0.0.1', port: 0 });
      const { port } = a.server.address() as net.AddressInfo;
      await listenReusePort(b.server, via ? { host: '127.0.0.1', port, via } : { host: '127.0.0.1', port });
      expect((b.server.address() as net.AddressInfo).port).toBe(port);
      expect(readSocketOption(a.server, SOL_SOCKET, SO_REUSEPORT)).toBe(1);
      expect(readSocketOption(b.server, SOL_SOCKET, SO_REUSEPORT)).toBe(1);

      await connectMany(port, CONNECTS);
      expect(a.count() + b.count()).toBe(CONNECTS);
      expect(a.count()).toBeGreaterThanOrEqual(1);
      expect(b.count()).toBeGreaterThanOrEqual(1);
    });
  }

  it('leaves a plain second listener on the same port with EADDRINUSE', async () => {
    const a = countingServer();
    await listenReusePort(a.server, { host: '127.0.0.1', port: 0 });
    const { port } = a.server.address() as net.AddressInfo;
    const plain = net.createServer();
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      plain.once('error', resolve);
      plain.listen(port, '127.0.0.1');
    });
    expect(error.code).toBe('EADDRINUSE');
  });

  it('fails with EADDRINUSE when the port is held by a listener without SO_REUSEPORT', async () => {
    const plain = track(net.createServer());
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const { port } = plain.address() as net.AddressInfo;
    for (const via of ['fd', undefined] as const) {
      const server = net.createServer();
      await expect(
        listenReusePort(server, via ? { host: '127.0.0.1', port, via } : { host: '127.0.0.1', port }),
      ).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(server.listening).toBe(false);
    }
  });

  it('binds IPv6 loopback through a hand-built sockaddr_in6', async (ctx) => {
    if (!ipv6) ctx.skip();
    const a = countingServer();
    const b = countingServer();
    await listenReusePort(a.server, { host: '::1', port: 0, via: 'fd' });
    const { port, address } = a.server.address() as net.AddressInfo;
    expect(address).toBe('::1');
    await listenReusePort(b.server, { host: '::1', port, via: 'fd' });
    expect(readSocketOption(b.server, SOL_SOCKET, SO_REUSEPORT)).toBe(1);
  });

  it.runIf(process.versions.node.startsWith('20.'))(
    'on Node 20, where listen({ reusePort }) is a silent no-op, a forced native path fails the read-back',
    async () => {
      const server = net.createServer();
      await expect(listenReusePort(server, { host: '127.0.0.1', port: 0, via: 'native' })).rejects.toMatchObject({
        code: 'NET_ERR_SOCKOPT_UNSUPPORTED',
      });
      expect(server.listening).toBe(false);
    },
  );

  it('rejects a bad port with SocketOptionError before touching the server', async () => {
    const server = net.createServer();
    await expect(listenReusePort(server, { host: '127.0.0.1', port: 70000 })).rejects.toMatchObject({
      code: 'NET_ERR_SOCKOPT',
      message: expect.stringContaining('70000'),
    });
  });
});

describe('bindUdpReusePort', () => {
  it(`lets two UDP sockets share a port and spreads datagrams from ${CONNECTS} senders over both`, async () => {
    const counts = [0, 0];
    const sockets = [0, 1].map((i) => {
      const socket = dgram.createSocket('udp4');
      socket.on('message', () => {
        counts[i] = (counts[i] ?? 0) + 1;
      });
      cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
      return socket;
    });
    const [first, second] = sockets as [dgram.Socket, dgram.Socket];
    await bindUdpReusePort(first, { address: '127.0.0.1', port: 0, type: 'udp4' });
    const { port } = first.address();
    await bindUdpReusePort(second, { address: '127.0.0.1', port, type: 'udp4' });
    expect(second.address().port).toBe(port);

    // One sender socket per datagram: the kernel hashes the 4-tuple, so each sender lands on one receiver.
    for (let i = 0; i < CONNECTS; i++) {
      const sender = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) =>
        sender.send(Buffer.from(`d${i}`), port, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
      );
      await new Promise<void>((resolve) => sender.close(() => resolve()));
    }
    const deadline = Date.now() + 2000;
    while ((counts[0] ?? 0) + (counts[1] ?? 0) < CONNECTS && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect((counts[0] ?? 0) + (counts[1] ?? 0)).toBe(CONNECTS);
    expect(counts[0]).toBeGreaterThanOrEqual(1);
    expect(counts[1]).toBeGreaterThanOrEqual(1);
  });

  it('leaves a plain second UDP bind on the same port with EADDRINUSE', async () => {
    const first = dgram.createSocket('udp4');
    cleanups.push(() => new Promise<void>((resolve) => first.close(() => resolve())));
    await bindUdpReusePort(first, { address: '127.0.0.1', port: 0, type: 'udp4' });
    const plain = dgram.createSocket('udp4');
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      plain.once('error', resolve);
      plain.bind(first.address().port, '127.0.0.1');
    });
    expect(error.code).toBe('EADDRINUSE');
    plain.close();
  });

  it('rejects an address of the wrong family', async () => {
    const socket = dgram.createSocket('udp4');
    await expect(bindUdpReusePort(socket, { address: '::1', port: 0, type: 'udp4' })).rejects.toMatchObject({
      code: 'NET_ERR_SOCKOPT',
    });
    socket.close();
  });
});
