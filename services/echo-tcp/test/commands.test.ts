import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { portOf, runToExit, type ServiceProcess, stopAllServices } from '@net/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, startEcho } from './helpers.js';

/** Runs `echo-tcp client ...` with `input` on stdin; resolves with its exit code and output. */
function clientWithStdin(
  args: string[],
  input: Buffer,
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, 'client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    proc.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error('client did not exit within 10 s'));
    }, 10_000);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    proc.stdin.end(input);
  });
}

/** A TCP server on a free port that answers with `handle`; closed in afterAll. */
function fakeServer(handle: (socket: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve) => {
    const server = net.createServer(handle);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

const portOfServer = (s: net.Server) => (s.address() as net.AddressInfo).port;

describe('client and check commands', () => {
  let plain: ServiceProcess;
  let proxyPort: number;
  let shortEcho: ServiceProcess;
  let resetting: ServiceProcess;
  let greeting: ServiceProcess;
  let silent: net.Server;
  let corrupting: net.Server;
  let freePort: number;

  beforeAll(async () => {
    [plain, shortEcho, resetting, greeting] = await Promise.all([
      startEcho(['--proxy-listen', '127.0.0.1:0']),
      startEcho(['--close-after-bytes', '5']),
      startEcho(['--close-after-bytes', '5', '--close-with-reset']),
      startEcho(['--greeting', 'echo-tcp {instance} ready\\r\\n']),
    ]);
    proxyPort = portOf(plain.endpoints[1] ?? '');
    const sockets: net.Socket[] = [];
    silent = await fakeServer((s) => sockets.push(s));
    silent.on('close', () => {
      for (const s of sockets) s.destroy();
    });
    corrupting = await fakeServer((s) => s.on('data', (c: Buffer) => s.write(Buffer.from(c).fill(0x58, 0, 1))));
    const closed = await fakeServer(() => {});
    freePort = portOfServer(closed);
    await new Promise((r) => closed.close(r));
  });
  afterAll(async () => {
    silent.close();
    corrupting.close();
    await stopAllServices();
  });

  it('client prints the echo of its arguments and exits 0 when the server closed in order', async () => {
    const r = await runToExit(BIN, ['client', `127.0.0.1:${plain.port}`, 'hello', 'world']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hello world');
    expect(r.stderr).toContain('sent 12 bytes, received 12');
    expect(r.stderr).toContain('closed the connection in order (FIN)');
  });

  it('client sends standard input and prints every byte that comes back', async () => {
    const input = randomBytes(300_000);
    const r = await clientWithStdin([`127.0.0.1:${plain.port}`], input);
    expect(r.code).toBe(0);
    expect(r.stdout.equals(input)).toBe(true);
  });

  it('client reports a short echo (exit 3) and a reset (exit 4)', async () => {
    const [short, reset] = await Promise.all([
      runToExit(BIN, ['client', `127.0.0.1:${shortEcho.port}`, 'more than five']),
      runToExit(BIN, ['client', `127.0.0.1:${resetting.port}`, 'more than five']),
    ]);
    expect(short.code).toBe(3);
    expect(short.stdout).toBe('more ');
    expect(short.stderr).toContain('10 bytes did not come back');
    expect(reset.code).toBe(4);
    expect(reset.stderr).toContain('reset the connection (RST)');
  });

  it('client exits 1 when it cannot connect, 5 when nothing comes back in time, 2 on bad usage', async () => {
    const [refused, timeout, usage] = await Promise.all([
      runToExit(BIN, ['client', `127.0.0.1:${freePort}`, 'x']),
      runToExit(BIN, ['client', `127.0.0.1:${portOfServer(silent)}`, '--timeout', '0.3', 'x']),
      runToExit(BIN, ['client']),
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ECONNREFUSED');
    expect(timeout.code).toBe(5);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('HOST:PORT');
  });

  it('check verifies a random payload byte for byte and prints one line: 0 when healthy', async () => {
    const [ok, big, haproxyStyle, viaProxy, withGreeting] = await Promise.all([
      runToExit(BIN, ['check', `127.0.0.1:${plain.port}`]),
      runToExit(BIN, ['check', `127.0.0.1:${plain.port}`, '--size', String(4 << 20)]),
      // HAProxy's external-check arguments: <proxy_addr> <proxy_port> <server_addr> <server_port>.
      runToExit(BIN, ['check', '0.0.0.0', '0', '127.0.0.1', String(plain.port)]),
      runToExit(BIN, ['check', `127.0.0.1:${proxyPort}`, '--proxy']),
      runToExit(BIN, ['check', `127.0.0.1:${greeting.port}`, '--greeting']),
    ]);
    for (const r of [ok, big, haproxyStyle, viaProxy, withGreeting]) {
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(/^ok 127\.0\.0\.1:\d+: \d+ random bytes echoed in [\d.]+ ms$/);
    }
  });

  it('check exits 1 with one line on a wrong echo, a silent server, a refused connect or a PROXY listener without --proxy', async () => {
    const [wrong, silentCheck, refused, noHeader] = await Promise.all([
      runToExit(BIN, ['check', `127.0.0.1:${portOfServer(corrupting)}`]),
      runToExit(BIN, ['check', `127.0.0.1:${portOfServer(silent)}`, '--timeout', '0.3']),
      runToExit(BIN, ['check', `127.0.0.1:${freePort}`]),
      runToExit(BIN, ['check', `127.0.0.1:${proxyPort}`]),
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/^fail 127\.0\.0\.1:\d+: echo differs from the payload at byte 0 of 1024$/);
    expect(silentCheck.code).toBe(1);
    expect(silentCheck.stdout).toContain('timed out');
    expect(refused.code).toBe(1);
    expect(noHeader.code).toBe(1);
    for (const r of [wrong, silentCheck, refused, noHeader]) expect(r.stdout.split('\n')).toHaveLength(1);
  });
});
