import dgram from 'node:dgram';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { AddressInUseError, BadEndpointError } from '../src/errors.js';
import { reusePortSupport } from '../src/sys/reuse-port.js';
import { type BoundUdpSocket, bindUdp } from '../src/udp/udp-bind.js';
import { runAsNobody } from './support/as-nobody.js';

const sockets: dgram.Socket[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function track(bound: Promise<BoundUdpSocket>): Promise<BoundUdpSocket> {
  const b = await bound;
  sockets.push(b.socket);
  return b;
}

/** Sends `text` from a fresh socket of `type` to host:port and resolves with what `server` received and from where. */
async function roundTrip(server: dgram.Socket, type: 'udp4' | 'udp6', host: string, port: number) {
  const client = dgram.createSocket(type);
  sockets.push(client);
  const received = once(server, 'message') as Promise<[Buffer, dgram.RemoteInfo]>;
  client.send('ping', port, host);
  const [msg, rinfo] = await received;
  return { text: msg.toString(), from: rinfo.address };
}

function readSysctl(name: string): Promise<string | undefined> {
  return fs.readFile(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').then(
    (s) => s.trim(),
    () => undefined,
  );
}

describe('bindUdp', () => {
  it('binds 127.0.0.1 port 0 and reports the real port as endpoint and port', async () => {
    const b = await track(bindUdp('127.0.0.1:0'));
    expect(b.port).toBeGreaterThan(0);
    expect(b.endpoint).toBe(`127.0.0.1:${b.port}`);
    expect(await roundTrip(b.socket, 'udp4', '127.0.0.1', b.port)).toEqual({ text: 'ping', from: '127.0.0.1' });
  });

  it('binds [::1] port 0 and formats the endpoint with brackets', async () => {
    const b = await track(bindUdp({ kind: 'ip', family: 6, address: '::1', port: 0 }));
    expect(b.endpoint).toBe(`[::1]:${b.port}`);
    expect(await roundTrip(b.socket, 'udp6', '::1', b.port)).toEqual({ text: 'ping', from: '::1' });
  });

  it('binds every interface dual stack for ":0": IPv4 datagrams arrive as ::ffff:a.b.c.d on the same socket', async () => {
    const b = await track(bindUdp(':0'));
    expect(b.endpoint).toBe(`[::]:${b.port}`);
    expect(await roundTrip(b.socket, 'udp4', '127.0.0.1', b.port)).toEqual({ text: 'ping', from: '::ffff:127.0.0.1' });
    expect(await roundTrip(b.socket, 'udp6', '::1', b.port)).toEqual({ text: 'ping', from: '::1' });
  });

  it("binds a host name's first address in resolver order", async () => {
    const b = await track(bindUdp('localhost:0'));
    expect(b.endpoint).toMatch(/^(127\.0\.0\.1|\[::1\]):\d+$/);
  });

  it('sets the socket buffers asked for and reads back what the kernel made of them (Linux doubles them)', async () => {
    const b = await track(bindUdp('127.0.0.1:0', { recvBufferSize: 65_536, sendBufferSize: 65_536 }));
    const factor = process.platform === 'linux' ? 2 : 1;
    expect(b.recvBufferSize).toBe(65_536 * factor);
    expect(b.sendBufferSize).toBe(65_536 * factor);
    const plain = await track(bindUdp('127.0.0.1:0'));
    const rmemDefault = await readSysctl('net.core.rmem_default');
    if (rmemDefault !== undefined) expect(plain.recvBufferSize).toBe(Number(rmemDefault));
  });

  it('maps EADDRINUSE (the port bound twice without reuse) to AddressInUseError naming the endpoint with /udp', async () => {
    const first = await track(bindUdp('127.0.0.1:0'));
    const err = await bindUdp(`127.0.0.1:${first.port}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AddressInUseError);
    expect(err).toMatchObject({ code: 'NET_ERR_ADDR_IN_USE', endpoint: `127.0.0.1:${first.port}/udp` });
    expect((err as Error).message).toContain(`cannot listen on 127.0.0.1:${first.port}/udp: address already in use`);
    expect(((err as Error).cause as NodeJS.ErrnoException).code).toBe('EADDRINUSE');
    // The failed socket was closed: the first one still owns the port and receives.
    expect(await roundTrip(first.socket, 'udp4', '127.0.0.1', first.port)).toEqual({ text: 'ping', from: '127.0.0.1' });
  });

  it.runIf(reusePortSupport() !== 'none')(
    'lets two sockets share a port with reusePort (skipped where SO_REUSEPORT is unavailable)',
    async () => {
      const first = await track(bindUdp('127.0.0.1:0', { reusePort: true }));
      const second = await track(bindUdp(`127.0.0.1:${first.port}`, { reusePort: true }));
      expect(second.endpoint).toBe(first.endpoint);
    },
  );

  it('maps EADDRNOTAVAIL (an address of no interface) to BadEndpointError', async (ctx) => {
    if ((await readSysctl('net.ipv4.ip_nonlocal_bind')) === '1') ctx.skip('net.ipv4.ip_nonlocal_bind=1 allows it');
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): assigned to no host.
    const err = await bindUdp('192.0.2.1:0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadEndpointError);
    expect((err as Error).message).toContain('192.0.2.1:0/udp');
    expect((err as Error).message).toContain('not assigned to any interface');
  });

  it('refuses a Unix endpoint with BadEndpointError: UDP needs an IP address', async () => {
    const err = await bindUdp('unix:/tmp/net-udp-bind.sock').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadEndpointError);
    expect((err as Error).message).toMatch(/unix:\/tmp\/net-udp-bind\.sock.*UDP over IP/);
  });

  it('refuses a host name that does not resolve with BadEndpointError naming it', async () => {
    const err = await bindUdp('no-such-host.invalid:0').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadEndpointError);
    expect((err as Error).message).toMatch(/host "no-such-host\.invalid" does not resolve \(E[A-Z_]+\)/);
  });
});

/**
 * EACCES needs an unprivileged process: the tests run as root, which may bind anything. As in listen.test.ts, a
 * child running as nobody (uid 65534) imports bindUdp() transpiled from the sources and reports the error it gets.
 */
describe('bindUdp without privilege', () => {
  const isRoot = process.getuid?.() === 0;

  interface ChildResult {
    name: string;
    code?: string;
    message: string;
    hint?: string;
    endpoint?: string;
  }

  function bindAsNobody(endpoint: string): Promise<ChildResult> {
    return runAsNobody(
      'udp/udp-bind',
      `import { bindUdp } from './udp/udp-bind.js';
      bindUdp(${JSON.stringify(endpoint)}).then(
        (b) => { console.log(JSON.stringify({ name: 'bound', message: b.endpoint })); b.socket.close(); },
        (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message, hint: e.hint,
          endpoint: e.endpoint })));`,
    );
  }

  it.runIf(isRoot)(
    'maps EACCES on UDP port 81 to AccessDeniedError with the same hint as listen (needs root to drop to uid 65534)',
    async () => {
      const result = await bindAsNobody('127.0.0.1:81');
      expect(result).toMatchObject({ name: 'AccessDeniedError', code: 'NET_ERR_ACCESS', endpoint: '127.0.0.1:81/udp' });
      expect(result.message).toContain('cannot listen on 127.0.0.1:81/udp: permission denied; ');
      expect(result.message).toContain('CAP_NET_BIND_SERVICE');
      expect(result.message).toContain('net.ipv4.ip_unprivileged_port_start');
      expect(result.message).toContain('port >= 1024');
      expect(result.hint).toContain('CAP_NET_BIND_SERVICE');
      expect(result.message.endsWith(`; ${String(result.hint)}`)).toBe(true);
    },
  );
});
