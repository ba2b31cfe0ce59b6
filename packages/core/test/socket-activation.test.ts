/**
 * Socket activation with real descriptors: the test creates a listening TCP socket or a bound UDP socket, passes it to
 * a child process as descriptor 3 (as systemd does, sd_listen_fds(3)), and the child, on the BUILT core (dist/;
 * `pnpm build` first), listens on `fd:3` or `systemd:NAME` and echoes through it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BadEndpointError,
  datagramSocketFd,
  formatListenEndpoint,
  getSocketFd,
  parseListenEndpoint,
} from '../src/index.js';

const fixture = fileURLToPath(new URL('./fixtures/activated.mjs', import.meta.url));

describe('parseListenEndpoint', () => {
  it('reads fd:N and systemd:NAME, and formats them back', () => {
    expect(parseListenEndpoint('fd:3')).toEqual({ kind: 'fd', fd: 3 });
    expect(parseListenEndpoint('systemd:echo-tcp.socket')).toEqual({ kind: 'systemd', name: 'echo-tcp.socket' });
    for (const text of ['fd:0', 'fd:3', 'systemd:echo', 'systemd:a.b_c-d']) {
      expect(formatListenEndpoint(parseListenEndpoint(text))).toBe(text);
    }
    expect(parseListenEndpoint('127.0.0.1:7')).toEqual({ kind: 'ip', family: 4, address: '127.0.0.1', port: 7 });
  });

  it.each([
    ['fd:', /fd:N with N a decimal descriptor number/],
    ['fd:x', /fd:N/],
    ['fd:-1', /fd:N/],
    ['fd:03', /fd:N/],
    ['fd:2147483648', /fd:N/],
    ['systemd:', /systemd:NAME/],
    ['systemd:a:b', /no ":" or space/],
    ['systemd:a b', /no ":" or space/],
  ])('refuses %s with NET_ERR_BAD_ENDPOINT saying what is accepted', (text, message) => {
    expect(() => parseListenEndpoint(text)).toThrow(BadEndpointError);
    expect(() => parseListenEndpoint(text)).toThrow(message);
  });
});

interface Report {
  bound?: string;
  error?: string;
  message?: string;
  env: Record<string, string | null>;
  fds?: { fd: number; name: string }[];
  cloexec?: boolean;
}

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

/**
 * Runs the fixture with `passed` as its descriptors 3, 4, ... and `env` added. With `ownPid`, LISTEN_PID is set to
 * the child's own pid the way a service manager does: a shell sets it to `$$` and execs node, which keeps the pid.
 */
function runActivated(
  mode: 'tcp' | 'udp',
  endpoint: string,
  passed: number[],
  env: Record<string, string> = {},
  ownPid = false,
): { report: Promise<Report>; exited: Promise<number | null> } {
  const argv = [fixture, mode, endpoint];
  const [command, args] = ownPid
    ? ['/bin/sh', ['-c', 'LISTEN_PID=$$ exec "$0" "$@"', process.execPath, ...argv]]
    : [process.execPath, argv];
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...passed],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const report = new Promise<Report>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no report in 10 s; stderr: ${err}`)), 10_000);
    child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const line = out.split('\n')[0];
      if (out.includes('\n') && line !== undefined) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as Report);
      }
    });
    child.once('close', () => {
      clearTimeout(timer);
      if (!out.includes('\n')) reject(new Error(`exited without a report; stderr: ${err}`));
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { report, exited };
}

async function tcpListener(): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function udpSocket(): Promise<dgram.Socket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return socket;
}

function echoOverTcp(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.end(text));
    let got = '';
    socket.setEncoding('utf8').on('data', (d: string) => {
      got += d;
    });
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
  });
}

function echoOverUdp(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('no UDP echo in 5 s'));
    }, 5000);
    socket.once('message', (m) => {
      clearTimeout(timer);
      socket.close();
      resolve(m.toString());
    });
    socket.send(text, port, '127.0.0.1');
  });
}

const address = (s: net.Server) => s.address() as net.AddressInfo;

describe('listen and bindUdp on a passed descriptor', () => {
  it('listens on fd:3, a TCP listener created by the parent, and echoes through it', async () => {
    const server = await tcpListener();
    const { port } = address(server);
    const { report, exited } = runActivated('tcp', 'fd:3', [getSocketFd(server)]);
    // The parent's copy closes: from now on only the child accepts on the socket.
    server.close();
    expect((await report).bound).toBe(`127.0.0.1:${port}`);
    expect(await echoOverTcp(port, 'over fd 3')).toBe('over fd 3');
    expect(await exited).toBe(0);
  });

  it('listens on systemd:NAME: LISTEN_FDNAMES names fd 3 and 4, LISTEN_PID is checked, the variables are unset, the descriptors close-on-exec', async () => {
    const first = await tcpListener();
    const second = await tcpListener();
    const { port } = address(second);
    const { report, exited } = runActivated(
      'tcp',
      'systemd:second',
      [getSocketFd(first), getSocketFd(second)],
      { LISTEN_FDS: '2', LISTEN_FDNAMES: 'first:second' },
      true,
    );
    first.close();
    second.close();
    const r = await report;
    expect(r.bound).toBe(`127.0.0.1:${port}`);
    expect(r.env).toEqual({ LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null });
    expect(r.fds).toEqual([
      { fd: 3, name: 'first' },
      { fd: 4, name: 'second' },
    ]);
    expect(r.cloexec).toBe(true);
    expect(await echoOverTcp(port, 'named')).toBe('named');
    expect(await exited).toBe(0);
  });

  it('adopts a passed UDP socket with bindUdp("fd:3") and echoes a datagram through it', async () => {
    const socket = await udpSocket();
    const { port } = socket.address();
    const { report, exited } = runActivated('udp', 'fd:3', [datagramSocketFd(socket)]);
    socket.close();
    expect((await report).bound).toBe(`127.0.0.1:${port}`);
    expect(await echoOverUdp(port, 'datagram over fd 3')).toBe('datagram over fd 3');
    expect(await exited).toBe(0);
  });
});

describe('what cannot be used is refused with NET_ERR_SOCKET_ACTIVATION, saying why', () => {
  it('refuses systemd:NAME when LISTEN_PID names another process, and still unsets the variables', async () => {
    const server = await tcpListener();
    const { report } = runActivated('tcp', 'systemd:echo', [getSocketFd(server)], {
      LISTEN_PID: '1',
      LISTEN_FDS: '1',
      LISTEN_FDNAMES: 'echo',
    });
    server.close();
    const r = await report;
    expect(r.error).toBe('NET_ERR_SOCKET_ACTIVATION');
    expect(r.message).toMatch(/LISTEN_PID is 1 but this process is \d+/);
    expect(r.env).toEqual({ LISTEN_PID: null, LISTEN_FDS: null, LISTEN_FDNAMES: null });
  });

  it('refuses systemd:NAME without socket activation, and a name that was not passed, listing the names that were', async () => {
    const none = runActivated('tcp', 'systemd:echo', []);
    expect((await none.report).message).toMatch(/not started by socket activation \(LISTEN_FDS and LISTEN_PID/);
    const server = await tcpListener();
    const other = runActivated(
      'tcp',
      'systemd:echo',
      [getSocketFd(server)],
      { LISTEN_FDS: '1', LISTEN_FDNAMES: 'daytime' },
      true,
    );
    server.close();
    expect((await other.report).message).toContain(
      'no socket named "echo" was passed (LISTEN_FDNAMES: daytime (fd 3))',
    );
  });

  it('refuses a TCP socket given to bindUdp and a UDP socket given to listen, naming the unit setting', async () => {
    const server = await tcpListener();
    const tcpToUdp = runActivated('udp', 'fd:3', [getSocketFd(server)]);
    const socket = await udpSocket();
    const udpToTcp = runActivated('tcp', 'fd:3', [datagramSocketFd(socket)]);
    server.close();
    socket.close();
    const a = await tcpToUdp.report;
    expect(a.error).toBe('NET_ERR_SOCKET_ACTIVATION');
    expect(a.message).toContain('descriptor 3 is a stream (TCP) socket, this service needs a datagram (UDP) socket');
    const b = await udpToTcp.report;
    expect(b.error).toBe('NET_ERR_SOCKET_ACTIVATION');
    expect(b.message).toContain('descriptor 3 is a datagram (UDP) socket, this service needs a stream (TCP) socket');
  });

  it('refuses a connected (not listening) TCP socket, a file, and a descriptor that is not open', async () => {
    const server = await tcpListener();
    const client = net.connect(address(server).port, '127.0.0.1');
    await new Promise((resolve) => client.once('connect', resolve));
    const connected = runActivated('tcp', 'fd:3', [getSocketFd(client)]);
    const file = openSync(fixture, 'r');
    const notSocket = runActivated('tcp', 'fd:3', [file]);
    // Node holds a few descriptors of its own (epoll, eventfd, pipes) just above 2: ask for one far above them.
    const closed = runActivated('tcp', 'fd:900', []);
    expect((await connected.report).message).toContain('descriptor 3 is not listening');
    expect((await notSocket.report).message).toContain('descriptor 3 is not a socket');
    expect((await closed.report).message).toContain('descriptor 900 is not open in this process');
    closeSync(file);
    client.destroy();
    server.close();
  });
});

describe('the runtime with a passed socket', () => {
  it('refuses --workers 2 with --listen fd:3 (exit 2): workers cannot share a descriptor only the primary holds', () => {
    const tinyEcho = fileURLToPath(new URL('./fixtures/tiny-echo.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [tinyEcho, 'serve', '--listen', 'fd:3', '--workers', '2'], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--workers 2 cannot share fd:3: run one process per passed socket');
  });
});
