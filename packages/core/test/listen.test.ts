import { spawn } from 'node:child_process';
import dns from 'node:dns';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AbortedError, AddressInUseError, SocketClosedError, UnixPathTooLongError } from '../src/errors.js';
import { formatEndpoint } from '../src/net/endpoint.js';
import { readToEnd, writeAll } from '../src/net/exact-io.js';
import { boundEndpoint, listen } from '../src/net/listen.js';
import { reusePortSupport } from '../src/sys/reuse-port.js';
import { readSocketOption, SO_REUSEPORT, SOL_SOCKET } from '../src/sys/sockopt.js';
import { runAsNobody } from './support/as-nobody.js';

const servers: net.Server[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) server.close();
  for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
});

async function track(server: Promise<net.Server>): Promise<net.Server> {
  const s = await server;
  servers.push(s);
  return s;
}

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'net-listen-'));
  dirs.push(dir);
  return dir;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

/** Connects, sends a line, and returns what the server answered before closing. */
async function exchange(options: net.NetConnectOpts): Promise<string> {
  const socket = net.connect(options);
  await once(socket, 'connect');
  await writeAll(socket, 'ping');
  socket.end();
  const reply = await readToEnd(socket, { limit: 1024, timeoutMs: 5_000 });
  socket.destroy();
  return reply.toString();
}

/** Answers "pong:<what it read>" after the client half-closes. */
function pongServer(): net.Server {
  const server = net.createServer({ allowHalfOpen: true }, async (socket) => {
    socket.on('error', () => {});
    const request = await readToEnd(socket, { limit: 1024 });
    socket.end(`pong:${request}`);
  });
  return server;
}

describe('listen', () => {
  it('listens on 127.0.0.1 port 0 and boundEndpoint reports the port the kernel chose', async () => {
    const server = await track(listen('127.0.0.1:0'));
    const bound = boundEndpoint(server);
    expect(bound).toMatchObject({ kind: 'ip', family: 4, address: '127.0.0.1' });
    expect(bound).toHaveProperty('port', portOf(server));
    expect(portOf(server)).toBeGreaterThan(0);
  });

  it('listens on [::1] and formats the bound endpoint bracketed', async () => {
    const server = await track(listen('[::1]:0'));
    expect(formatEndpoint(boundEndpoint(server))).toBe(`[::1]:${portOf(server)}`);
  });

  it('listens dual stack on every interface, so IPv4 and IPv6 loopback clients both get through', async () => {
    const server = await track(listen(':0', { server: pongServer() }));
    expect(boundEndpoint(server)).toMatchObject({ kind: 'ip', family: 6, address: '::' });
    expect(await exchange({ host: '127.0.0.1', port: portOf(server) })).toBe('pong:ping');
    expect(await exchange({ host: '::1', port: portOf(server) })).toBe('pong:ping');
  });

  it('refuses IPv4 clients on [::] when ipv6Only is set', async () => {
    const server = await track(listen('[::]:0', { ipv6Only: true }));
    const client = net.connect({ host: '127.0.0.1', port: portOf(server) });
    const [err] = (await once(client, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('accepts ipv6Only on an IPv4 endpoint, where it has no meaning', async () => {
    const server = await track(listen('127.0.0.1:0', { ipv6Only: true, backlog: 8 }));
    expect(server.listening).toBe(true);
  });

  it('listens on a host name at the first address the resolver returns', async () => {
    const [first] = await dns.promises.lookup('localhost', { all: true, verbatim: true });
    const server = await track(listen('localhost:0'));
    expect(boundEndpoint(server)).toMatchObject({ kind: 'ip', address: first?.address });
  });

  it('creates a half-open capable server: it can still answer after the client sent its FIN', async () => {
    const server = await track(listen('127.0.0.1:0'));
    server.on('connection', async (socket) => {
      const request = await readToEnd(socket, { limit: 1024 });
      socket.end(`pong:${request}`);
    });
    expect(await exchange({ host: '127.0.0.1', port: portOf(server) })).toBe('pong:ping');
  });

  it('listens on a Unix socket path', async () => {
    const file = path.join(await tempDir(), 'echo.sock');
    const server = await track(listen(`unix:${file}`, { server: pongServer() }));
    expect(boundEndpoint(server)).toEqual({ kind: 'unix', path: file, abstract: false });
    expect((await fs.lstat(file)).isSocket()).toBe(true);
    expect(await exchange({ path: file })).toBe('pong:ping');
  });

  it('listens on a Linux abstract socket name, which Node reaches through a leading NUL and leaves no file', async () => {
    const name = `net-core-test-${process.pid}-${Date.now()}`;
    const server = await track(listen(`unix:@${name}`, { server: pongServer() }));
    expect(boundEndpoint(server)).toEqual({ kind: 'unix', path: name, abstract: true });
    expect(await exchange({ path: `\0${name}` })).toBe('pong:ping');
    await expect(fs.lstat(name)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('replaces a stale Unix socket file left by a process that was killed', async () => {
    const file = path.join(await tempDir(), 'stale.sock');
    // SIGKILL skips close(), so the socket file stays behind with nobody listening.
    const child = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(file)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    await once(child, 'exit');
    expect((await fs.lstat(file)).isSocket()).toBe(true);
    const server = await track(listen(`unix:${file}`, { server: pongServer() }));
    expect(await exchange({ path: file })).toBe('pong:ping');
    expect(server.listening).toBe(true);
  });

  it('never removes a Unix socket that a live server answers on', async () => {
    const file = path.join(await tempDir(), 'live.sock');
    await track(listen(`unix:${file}`, { server: pongServer() }));
    await expect(listen(`unix:${file}`)).rejects.toBeInstanceOf(AddressInUseError);
    expect(await exchange({ path: file })).toBe('pong:ping');
  });

  it('never removes a file that is not a socket', async () => {
    const file = path.join(await tempDir(), 'not-a-socket');
    await fs.writeFile(file, 'keep me');
    await expect(listen(`unix:${file}`)).rejects.toThrow(/not a socket/);
    expect(await fs.readFile(file, 'utf8')).toBe('keep me');
  });

  it('maps EADDRINUSE to AddressInUseError naming the endpoint and the fix', async () => {
    const first = await track(listen('127.0.0.1:0'));
    const endpoint = `127.0.0.1:${portOf(first)}`;
    const err = await listen(endpoint).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AddressInUseError);
    expect(err).toMatchObject({ code: 'NET_ERR_ADDR_IN_USE', endpoint });
    expect((err as Error).message).toContain('use port 0');
    expect((err as Error).cause).toMatchObject({ code: 'EADDRINUSE' });
  });

  it('leaves a passed-in server usable for a retry after EADDRINUSE', async () => {
    const first = await track(listen('127.0.0.1:0'));
    const server = net.createServer();
    await expect(listen(`127.0.0.1:${portOf(first)}`, { server })).rejects.toBeInstanceOf(AddressInUseError);
    await track(listen('127.0.0.1:0', { server }));
    expect(server.listening).toBe(true);
  });

  it('rejects a Unix path longer than sun_path allows before touching the file system', async () => {
    await expect(listen(`unix:/${'x'.repeat(200)}`)).rejects.toBeInstanceOf(UnixPathTooLongError);
  });

  it('rejects with AbortedError without listening when the signal is already aborted', async () => {
    const server = net.createServer();
    await expect(listen('127.0.0.1:0', { server, signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortedError);
    expect(server.listening).toBe(false);
  });

  it('closes the server when the signal aborts after it started listening', async () => {
    const controller = new AbortController();
    const server = await track(listen('127.0.0.1:0', { signal: controller.signal }));
    const closed = once(server, 'close');
    controller.abort();
    await closed;
    expect(server.listening).toBe(false);
  });

  it('boundEndpoint rejects a server that is not listening with SocketClosedError', () => {
    expect(() => boundEndpoint(net.createServer())).toThrow(SocketClosedError);
  });
});

/**
 * listen's `reusePort` goes through reuse-port.ts's one SO_REUSEPORT path, which reads the option back: on Node 20,
 * whose listen({ reusePort: true }) is a silent no-op, the socket must still carry SO_REUSEPORT=1 and share its port.
 */
describe.runIf(reusePortSupport() !== 'none')('listen with reusePort', () => {
  it('binds with SO_REUSEPORT read back as 1, so a second listener shares the port, on every Node', async () => {
    const first = await track(listen('127.0.0.1:0', { reusePort: true, server: pongServer() }));
    expect(readSocketOption(first, SOL_SOCKET, SO_REUSEPORT)).toBe(1);
    const second = await track(listen(`127.0.0.1:${portOf(first)}`, { reusePort: true, server: pongServer() }));
    expect(portOf(second)).toBe(portOf(first));
    expect(readSocketOption(second, SOL_SOCKET, SO_REUSEPORT)).toBe(1);
    expect(await exchange({ host: '127.0.0.1', port: portOf(first) })).toBe('pong:ping');
  });

  it('binds every interface dual stack with reusePort, as without it', async () => {
    const server = await track(listen(':0', { reusePort: true, server: pongServer() }));
    expect(boundEndpoint(server)).toMatchObject({ kind: 'ip', family: 6, address: '::' });
    expect(await exchange({ host: '127.0.0.1', port: portOf(server) })).toBe('pong:ping');
    expect(await exchange({ host: '::1', port: portOf(server) })).toBe('pong:ping');
  });

  it('keeps ipv6Only with reusePort: IPv4 clients are refused on [::]', async () => {
    const server = await track(listen('[::]:0', { reusePort: true, ipv6Only: true }));
    expect(readSocketOption(server, SOL_SOCKET, SO_REUSEPORT)).toBe(1);
    const client = net.connect({ host: '127.0.0.1', port: portOf(server) });
    const [err] = (await once(client, 'error').catch((e: unknown) => [e])) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });

  it('maps EADDRINUSE against a listener without SO_REUSEPORT to AddressInUseError', async () => {
    const plain = await track(listen('127.0.0.1:0'));
    await expect(listen(`127.0.0.1:${portOf(plain)}`, { reusePort: true })).rejects.toBeInstanceOf(AddressInUseError);
  });
});

/**
 * EACCES needs an unprivileged process: the tests run as root, which may bind anything. A child running as
 * nobody (uid 65534) imports listen() transpiled from the sources with the TypeScript compiler (Node 20 cannot
 * load .ts files) and reports the error it gets.
 */
describe('listen without privilege', () => {
  const isRoot = process.getuid?.() === 0;

  function listenAsNobody(endpoint: string): Promise<{ name: string; code: string; message: string }> {
    return runAsNobody(
      'net/listen',
      `import { listen } from './net/listen.js';
      listen(${JSON.stringify(endpoint)}).then(
        (s) => { console.log(JSON.stringify({ name: 'listening' })); s.close(); },
        (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })));`,
    );
  }

  it.runIf(isRoot)(
    'maps EACCES on port 81 to AccessDeniedError with the capability and sysctl hints (needs root to drop to uid 65534)',
    async () => {
      const result = await listenAsNobody('127.0.0.1:81');
      expect(result).toMatchObject({ name: 'AccessDeniedError', code: 'NET_ERR_ACCESS' });
      expect(result.message).toContain('127.0.0.1:81');
      expect(result.message).toContain('CAP_NET_BIND_SERVICE');
      expect(result.message).toContain('net.ipv4.ip_unprivileged_port_start');
      expect(result.message).toContain('port >= 1024');
    },
  );

  it.runIf(isRoot)(
    'maps EACCES on a Unix path in a directory nobody may write to AccessDeniedError (needs root to drop to uid 65534)',
    async () => {
      const dir = await tempDir(); // mode 0700, owned by root
      const result = await listenAsNobody(`unix:${path.join(dir, 'x.sock')}`);
      expect(result).toMatchObject({ name: 'AccessDeniedError', code: 'NET_ERR_ACCESS' });
      expect(result.message).toContain('writable');
    },
  );
});
