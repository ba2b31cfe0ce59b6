import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { clientExitCode, parseEndpoint } from '@net/core';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchDaytime, printable } from '../src/client.js';
import { BIN } from './helpers.js';

const servers: net.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A small fake server on loopback that does `behave` with each connection; resolves with its port. */
async function fakeServer(behave: (socket: net.Socket) => void, host = '127.0.0.1'): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    behave(socket);
  });
  servers.push(server);
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Runs the client's exchange in-process: the printable line and exit 0, or the exit code and message of its error. */
async function client(target: string, options: { timeoutMs?: number; maxBytes?: number; family?: 0 | 4 | 6 } = {}) {
  try {
    const answer = await fetchDaytime(parseEndpoint(target, { defaultPort: 1313 }), {
      timeoutMs: options.timeoutMs ?? 5000,
      maxBytes: options.maxBytes ?? 1024,
      family: options.family ?? 0,
    });
    return { code: 0, out: `${printable(answer)}\n`, err: '' };
  } catch (e) {
    return { code: clientExitCode(e), out: '', err: (e as Error).message };
  }
}

const LINE = 'Wed Nov  4 09:05:02 2026\r\n';

describe('daytime-tcp client', () => {
  it('prints the line of a daytime server without its CR LF and exits 0', async () => {
    const port = await fakeServer((s) => s.end(LINE));
    expect(await client(`127.0.0.1:${port}`)).toEqual({ code: 0, out: 'Wed Nov  4 09:05:02 2026\n', err: '' });
  });

  it('reads an answer that arrives in several pieces until the server closes', async () => {
    const port = await fakeServer((s) => {
      s.write('Wed Nov  4 ');
      setTimeout(() => s.end('09:05:02 2026\r\n'), 50);
    });
    expect((await client(`127.0.0.1:${port}`)).out).toBe('Wed Nov  4 09:05:02 2026\n');
  });

  it('connects over IPv6 to a bracketed address and resolves host names', async () => {
    const port6 = await fakeServer((s) => s.end(LINE), '::1');
    expect((await client(`[::1]:${port6}`)).code).toBe(0);
    const port4 = await fakeServer((s) => s.end(LINE));
    expect((await client(`localhost:${port4}`, { family: 4 })).code).toBe(0);
  });

  it('exits 76 when the server closes without answering', async () => {
    const port = await fakeServer((s) => s.end());
    const r = await client(`127.0.0.1:${port}`);
    expect(r.code).toBe(76);
    expect(r.err).toMatch(/closed the connection without sending a date/);
  });

  it('exits 76 when the server resets the connection', async () => {
    const port = await fakeServer((s) => s.resetAndDestroy());
    const r = await client(`127.0.0.1:${port}`);
    expect(r.code).toBe(76);
    expect(r.err).toMatch(/reset|ECONNRESET/);
  });

  it('exits 75 when the server never answers within --timeout', async () => {
    const port = await fakeServer(() => {});
    const r = await client(`127.0.0.1:${port}`, { timeoutMs: 200 });
    expect(r.code).toBe(75);
    expect(r.err).toMatch(/^the answer from 127\.0\.0\.1:\d+ \(--timeout\) timed out after 200 ms$/);
  });

  it('exits 75 when a line arrives but the server never closes', async () => {
    const port = await fakeServer((s) => s.write(LINE));
    expect((await client(`127.0.0.1:${port}`, { timeoutMs: 200 })).code).toBe(75);
  });

  it('exits 1 (a wrong answer) when the server sends more than --max-bytes', async () => {
    const port = await fakeServer((s) => s.write(Buffer.alloc(4096, 0x41)));
    const r = await client(`127.0.0.1:${port}`, { maxBytes: 1024 });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/longer than 1024 bytes \(--max-bytes\)/);
  });

  it('exits 69 when the connection is refused', async () => {
    const port = await fakeServer(() => {});
    servers.pop()?.close();
    const r = await client(`127.0.0.1:${port}`);
    expect(r.code).toBe(69);
    expect(r.err).toMatch(/cannot connect to 127\.0\.0\.1:\d+: tried 127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  it('exits 68 when the host name does not resolve', async () => {
    const r = await client('no-such-host.invalid');
    expect(r.code).toBe(68);
    expect(r.err).toMatch(/no-such-host\.invalid: (ENOTFOUND|EAI_AGAIN)/);
  });

  it('shows control characters from the server as \\xNN instead of sending them to the terminal', () => {
    expect(printable(Buffer.from('Wed\x1b[31m Nov\x00\r\n'))).toBe('Wed\\x1b[31m Nov\\x00');
  });
});

describe('daytime-tcp client, the command', () => {
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [BIN, 'client', ...args],
        { timeout: 10_000, env: { ...process.env, ...env } },
        (error, stdout, stderr) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
        },
      );
    });

  it('prints the line and exits 0, or exits with the shared client code for each failure', async () => {
    const ok = await fakeServer((s) => s.end(LINE));
    expect(await run([`127.0.0.1:${ok}`])).toEqual({ code: 0, stdout: 'Wed Nov  4 09:05:02 2026\n', stderr: '' });
    const silent = await fakeServer(() => {});
    expect((await run([`127.0.0.1:${silent}`], { DAYTIME_TCP_CLIENT_TIMEOUT: '0.2' })).code).toBe(75);
    const big = await fakeServer((s) => s.end(Buffer.alloc(100, 0x41)));
    const tooBig = await run([`127.0.0.1:${big}`, '--max-bytes', '50']);
    expect(tooBig.code).toBe(1);
    expect(tooBig.stderr).toMatch(
      /^daytime-tcp client: wrong answer from 127\.0\.0\.1:\d+: the answer is longer than 50 bytes/,
    );
  });

  it('with --json prints one object carrying the line', async () => {
    const ok = await fakeServer((s) => s.end(LINE));
    const r = await run([`127.0.0.1:${ok}`, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      result: 'ok',
      exitCode: 0,
      target: `127.0.0.1:${ok}`,
      timeoutMs: 5000,
      line: 'Wed Nov  4 09:05:02 2026',
    });
  });

  it('asks the local server, 127.0.0.1:1313, without HOST, and port 1313 for a HOST without a port', async () => {
    const [none, hostOnly] = await Promise.all([run(['--json']), run(['--json', '127.0.0.1'])]);
    expect(JSON.parse(none.stdout)).toMatchObject({ target: '127.0.0.1:1313' });
    expect(JSON.parse(hostOnly.stdout)).toMatchObject({ target: '127.0.0.1:1313' });
  });

  it('exits 2 for a target that is not HOST[:PORT], also with --json', async () => {
    const r = await run(['127.0.0.1:99999', '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/port 99999 out of range/);
    expect(JSON.parse(r.stdout)).toMatchObject({ exitCode: 2, target: null, error: { code: 'NET_ERR_BAD_ENDPOINT' } });
  });

  it('lists the shared exit codes in --help; an unknown command such as watch exits 2 naming the commands', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit codes (the same for every @net client and check command):');
    expect(help.stdout).toMatch(/^ {2}69 {2}refused or unreachable/m);
    const unknown = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'watch', '--help'], { timeout: 10_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
    expect(unknown).toEqual({
      code: 2,
      stdout: '',
      stderr: 'daytime-tcp: unknown command "watch": commands are serve, client\n',
    });
  });
});
