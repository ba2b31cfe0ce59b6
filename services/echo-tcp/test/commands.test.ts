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

  it('client reports a short echo and a reset as a broken exchange (exit 76)', async () => {
    const [short, reset] = await Promise.all([
      runToExit(BIN, ['client', `127.0.0.1:${shortEcho.port}`, 'more than five']),
      runToExit(BIN, ['client', `127.0.0.1:${resetting.port}`, 'more than five']),
    ]);
    expect(short.code).toBe(76);
    expect(short.stdout).toBe('more ');
    expect(short.stderr).toMatch(
      /^echo-tcp client: 127\.0\.0\.1:\d+: sent 15 bytes, received 5; 10 bytes did not come back; the server closed the connection in order \(FIN\)\n$/,
    );
    expect(reset.code).toBe(76);
    expect(reset.stderr).toContain('reset the connection (RST)');
  });

  it('client exits 69 when refused, 75 when nothing comes back in time, 2 on a bad target', async () => {
    const [refused, timeout, usage] = await Promise.all([
      runToExit(BIN, ['client', `127.0.0.1:${freePort}`, 'x']),
      runToExit(BIN, ['client', `127.0.0.1:${portOfServer(silent)}`, '--timeout', '0.3', 'x']),
      runToExit(BIN, ['client', '127.0.0.1:70000']),
    ]);
    expect(refused.code).toBe(69);
    expect(refused.stderr).toContain('ECONNREFUSED');
    expect(timeout.code).toBe(75);
    expect(timeout.stderr).toContain('nothing moved for 0.3 s');
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('70000');
  });

  it('client --json prints one object with the byte counts and how the server closed, and not the echo', async () => {
    const [ok, short] = await Promise.all([
      runToExit(BIN, ['client', '--json', `127.0.0.1:${plain.port}`, 'hello']),
      runToExit(BIN, ['client', '--json', `127.0.0.1:${shortEcho.port}`, 'more than five']),
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      result: 'ok',
      exitCode: 0,
      target: `127.0.0.1:${plain.port}`,
      timeoutMs: 10_000,
      sent: 6,
      received: 6,
      close: 'eof',
    });
    expect(ok.stderr).toBe('');
    expect(short.code).toBe(76);
    expect(JSON.parse(short.stdout)).toMatchObject({
      result: 'error',
      exitCode: 76,
      sent: 15,
      received: 5,
      error: { code: 'NET_ERR_PREMATURE_EOF' },
    });
  });

  it('client and check default to the local server, 127.0.0.1:15000, and read ECHO_TCP_<COMMAND>_* variables', async () => {
    const [client, check, help] = await Promise.all([
      runToExit(BIN, ['client', '--json'], { env: { ECHO_TCP_CLIENT_TIMEOUT: '0.5' } }),
      runToExit(BIN, ['check', '--json'], { env: { ECHO_TCP_CHECK_TIMEOUT: '0.5', ECHO_TCP_CHECK_SIZE: '7' } }),
      runToExit(BIN, ['check', '--help']),
    ]);
    expect(JSON.parse(client.stdout)).toMatchObject({ target: '127.0.0.1:15000', timeoutMs: 500 });
    expect(JSON.parse(check.stdout)).toMatchObject({ target: '127.0.0.1:15000', timeoutMs: 500 });
    for (const v of ['TIMEOUT', 'SIZE', 'PROXY', 'GREETING', 'JSON'])
      expect(help.stdout).toContain(`Env: ECHO_TCP_CHECK_${v}.`);
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
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^ok 127\.0\.0\.1:\d+: \d+ random bytes echoed in [\d.]+ ms$/);
    }
  });

  it('check exits 1 on a wrong echo, 75 on a silent server, 69 when refused, 76 from a PROXY listener without --proxy; one line each', async () => {
    const [wrong, silentCheck, refused, noHeader, json] = await Promise.all([
      runToExit(BIN, ['check', `127.0.0.1:${portOfServer(corrupting)}`]),
      runToExit(BIN, ['check', `127.0.0.1:${portOfServer(silent)}`, '--timeout', '0.3']),
      runToExit(BIN, ['check', `127.0.0.1:${freePort}`]),
      runToExit(BIN, ['check', `127.0.0.1:${proxyPort}`]),
      runToExit(BIN, ['check', '--json', `127.0.0.1:${portOfServer(corrupting)}`]),
    ]);
    // Each code with its line, so that a failure says which check went wrong and how.
    expect(wrong.code, wrong.stderr).toBe(1);
    expect(wrong.stderr).toMatch(
      /^echo-tcp check: wrong answer from 127\.0\.0\.1:\d+: the echo differs from the payload at byte 0 of 1024\n$/,
    );
    expect(silentCheck.code, silentCheck.stderr).toBe(75);
    expect(silentCheck.stderr).toContain('timed out');
    expect(refused.code, refused.stderr).toBe(69);
    expect(noHeader.code, noHeader.stderr).toBe(76);
    for (const r of [wrong, silentCheck, refused, noHeader]) {
      expect(r.stdout).toBe('');
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    }
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      result: 'error',
      exitCode: 1,
      bytes: 1024,
      firstDifference: 0,
      error: { code: 'NET_ERR_BAD_REPLY' },
    });
  });
});
