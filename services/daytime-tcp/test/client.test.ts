import { execFile } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CLIENT_EXIT, printable, runClient } from '../src/client.js';
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

/** Runs the client in-process, capturing what it prints. */
async function client(target: string, options: { timeoutMs?: number; maxBytes?: number; family?: 0 | 4 | 6 } = {}) {
  let out = '';
  let err = '';
  const code = await runClient(target, {
    timeoutMs: options.timeoutMs ?? 5000,
    maxBytes: options.maxBytes ?? 1024,
    family: options.family ?? 0,
    out: (t) => {
      out += t;
    },
    err: (t) => {
      err += t;
    },
  });
  return { code, out, err };
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

  it('exits 7 when the server closes without answering', async () => {
    const port = await fakeServer((s) => s.end());
    const r = await client(`127.0.0.1:${port}`);
    expect(r.code).toBe(CLIENT_EXIT.NO_ANSWER);
    expect(r.err).toMatch(/closed the connection without sending a date/);
  });

  it('exits 7 when the server resets the connection', async () => {
    const port = await fakeServer((s) => s.resetAndDestroy());
    const r = await client(`127.0.0.1:${port}`);
    expect(r.code).toBe(CLIENT_EXIT.NO_ANSWER);
    expect(r.err).toMatch(/reset the connection/);
  });

  it('exits 4 when the server never answers within --timeout', async () => {
    const port = await fakeServer(() => {});
    const r = await client(`127.0.0.1:${port}`, { timeoutMs: 200 });
    expect(r.code).toBe(CLIENT_EXIT.TIMEOUT);
    expect(r.err).toMatch(/no complete answer from 127\.0\.0\.1:\d+ within 0\.2 s \(--timeout\)/);
  });

  it('exits 4 when a line arrives but the server never closes', async () => {
    const port = await fakeServer((s) => s.write(LINE));
    expect((await client(`127.0.0.1:${port}`, { timeoutMs: 200 })).code).toBe(CLIENT_EXIT.TIMEOUT);
  });

  it('exits 5 when the server sends more than --max-bytes', async () => {
    const port = await fakeServer((s) => s.write(Buffer.alloc(4096, 0x41)));
    const r = await client(`127.0.0.1:${port}`, { maxBytes: 1024 });
    expect(r.code).toBe(CLIENT_EXIT.TOO_LARGE);
    expect(r.err).toMatch(/longer than 1024 bytes \(--max-bytes\)/);
  });

  it('exits 3 when the connection is refused', async () => {
    const port = await fakeServer(() => {});
    servers.pop()?.close();
    const r = await client(`127.0.0.1:${port}`);
    expect(r.code).toBe(CLIENT_EXIT.REFUSED);
    expect(r.err).toMatch(/connection refused by 127\.0\.0\.1:\d+/);
  });

  it('exits 6 when the host name does not resolve', async () => {
    const r = await client('no-such-host.invalid');
    expect(r.code).toBe(CLIENT_EXIT.UNRESOLVED);
    expect(r.err).toMatch(/cannot resolve "no-such-host\.invalid"/);
  });

  it('exits 2 for a target that is not HOST[:PORT]', async () => {
    const r = await client('127.0.0.1:99999');
    expect(r.code).toBe(CLIENT_EXIT.USAGE);
    expect(r.err).toMatch(/port 99999 out of range/);
  });

  it('shows control characters from the server as \\xNN instead of sending them to the terminal', () => {
    expect(printable(Buffer.from('Wed\x1b[31m Nov\x00\r\n'))).toBe('Wed\\x1b[31m Nov\\x00');
  });
});

describe('daytime-tcp client, the command', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [BIN, 'client', ...args], { timeout: 10_000 }, (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });

  it('prints the line and exits 0, or exits with the documented code for each failure', async () => {
    const ok = await fakeServer((s) => s.end(LINE));
    expect(await run([`127.0.0.1:${ok}`])).toEqual({ code: 0, stdout: 'Wed Nov  4 09:05:02 2026\n', stderr: '' });
    const silent = await fakeServer(() => {});
    expect((await run([`127.0.0.1:${silent}`, '--timeout', '0.2'])).code).toBe(4);
    const big = await fakeServer((s) => s.end(Buffer.alloc(100, 0x41)));
    expect((await run([`127.0.0.1:${big}`, '--max-bytes', '50'])).code).toBe(5);
  });

  it('exits 2 without HOST', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/missing HOST\[:PORT\]/);
  });

  it('lists its exit codes in --help; an unknown command such as watch exits 2 naming the commands', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(
      'Exit codes: 0 the line was printed, 1 other failure, 2 bad usage, 3 connection refused, 4 timeout, ' +
        '5 answer too large, 6 host does not resolve, 7 closed without an answer.',
    );
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
