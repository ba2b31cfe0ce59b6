/**
 * The service runtime as a process: the BUILT core (dist/) runs a tiny echo fixture; build it first with
 * `pnpm exec tsc -b`. Real processes and sockets on loopback; every process is killed after each test.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type LoggedProcess, spawnNode, stopAllServices, waitForReady } from '@net/test-support';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reusePortSupport } from '../src/sys/reuse-port.js';

// A real Prometheus text parser. It is a dependency of the sibling @net/testkit, resolved from there so that core
// needs no extra install (core cannot depend on testkit, which depends on core).
const parseProm = createRequire(new URL('../../testkit/package.json', import.meta.url))(
  'parse-prometheus-text-format',
) as (
  text: string,
) => { name: string; help: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];

const fixture = fileURLToPath(new URL('./fixtures/tiny-echo.mjs', import.meta.url));
const udpFixture = fileURLToPath(new URL('./fixtures/tiny-udp.mjs', import.meta.url));
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url));

interface Line {
  level: number;
  msg: string;
  pid: number;
  [key: string]: unknown;
}

interface Proc {
  child: ChildProcess;
  lines: Line[];
  /** Every stdout line, JSON or not. */
  raw: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(pred: (l: Line) => boolean, timeoutMs?: number): Promise<Line>;
}

interface RunOptions {
  /** The fixture to run (default tiny-echo). */
  script?: string;
  /** Run under `prlimit --nofile=N:N` (prlimit execs node: the pid is node's). */
  nofile?: number;
}

/** Spawns a fixture through the shared harness (own process group: workers die with their primary in afterEach). */
function spawnFixture(args: string[], env: Record<string, string>, options: RunOptions): LoggedProcess {
  const wrapper = options.nofile === undefined ? [] : ['prlimit', `--nofile=${options.nofile}:${options.nofile}`, '--'];
  return spawnNode(options.script ?? fixture, args, { env, wrapper });
}

/** This file's view of a harness process. */
function asProc(p: LoggedProcess): Proc {
  return {
    child: p.proc,
    lines: p.lines as Line[],
    raw: p.rawLines,
    stderr: p.stderr,
    exited: p.exited,
    waitFor: (pred, timeoutMs) => p.waitForLine((l) => pred(l as Line), timeoutMs) as Promise<Line>,
  };
}

function run(args: string[], env: Record<string, string> = {}, options: RunOptions = {}): Proc {
  return asProc(spawnFixture(args, env, options));
}

async function start(args: string[], env: Record<string, string> = {}, options: RunOptions = {}) {
  const p = spawnFixture(['serve', '--port', '0', '--admin-port', '0', ...args], env, options);
  const { ready, port, adminUrl } = await waitForReady(p, 'tiny-echo serve');
  return { ...asProc(p), ready: ready as Line, port, admin: adminUrl as string };
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

async function scrape(admin: string) {
  const res = await get(`${admin}/metrics`);
  expect(res.status).toBe(200);
  const families = parseProm(res.body);
  const value = (name: string) => {
    const v = families.find((f) => f.name === name)?.metrics[0]?.value;
    return v === undefined ? undefined : Number(v);
  };
  return { families, value, text: res.body };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    s.once('connect', () => resolve(s)).once('error', reject);
  });
}

/** Writes `data` and resolves with what comes back once `data.length` bytes did. */
function roundTrip(socket: net.Socket, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      have += c.length;
      if (have < data.length) return;
      socket.off('data', onData).off('error', reject);
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', onData).once('error', reject);
    socket.write(data);
  });
}

async function waitUntil(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

beforeAll(() => {
  if (!existsSync(built)) throw new Error('build @net/core first: cd packages/core && pnpm exec tsc -b');
});

afterEach(stopAllServices);

describe('command line', () => {
  it('lists every flag with its variable and default in --help, for serve as the default command', async () => {
    const p = run(['--help']);
    expect((await p.exited).code).toBe(0);
    const help = p.raw.join('\n');
    expect(help).toMatch(/^Usage: tiny-echo serve \[options\]/);
    expect(help).toMatch(/--max-line .*Env: TINY_ECHO_MAX_LINE\. Default: 80\./);
    expect(help).toMatch(/--workers .*Env: TINY_ECHO_WORKERS\. Default: 1\./);
    expect(help).toContain('70 uncaught error');
  });

  it('prints the version and exits 0', async () => {
    const p = run(['--version']);
    expect((await p.exited).code).toBe(0);
    expect(p.raw).toEqual(['tiny-echo 9.8.7']);
  });

  it('exits 2 with one message naming the flag, the value and what is accepted', async () => {
    const p = run(['serve', '--port', '70000']);
    expect(await p.exited).toEqual({ code: 2, signal: null });
    expect(p.stderr()).toBe(
      'tiny-echo: invalid --port "70000": expected a port number from 0 to 65535 (0 picks a free port)\n',
    );
    expect(p.lines).toEqual([]);
  });

  it('exits 2 naming the environment variable when the value came from it', async () => {
    const p = run(['serve'], { TINY_ECHO_MAX_LINE: '0' });
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toBe('tiny-echo: invalid TINY_ECHO_MAX_LINE "0": expected an integer from 1 to 1024\n');
  });

  it('exits 2 on an unknown flag', async () => {
    const p = run(['--bogus']);
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toMatch(/^tiny-echo: invalid option --bogus: unknown option; accepted options are --host, /);
  });

  it('exits 2 naming the commands when the first word is no command, also before --help', async () => {
    const runs = await Promise.all(
      [['frobnicate'], ['client', '--help'], ['toString', '--port', '0']].map(async (args) => {
        const p = run(args);
        return { args, exit: await p.exited, stderr: p.stderr(), raw: p.raw };
      }),
    );
    for (const r of runs) {
      expect(r.exit, r.args.join(' ')).toEqual({ code: 2, signal: null });
      expect(r.stderr).toBe(`tiny-echo: unknown command "${r.args[0]}": commands are serve, ping, watch\n`);
      expect(r.raw).toEqual([]);
    }
  });

  it('exits 1 with a coded message when the port is taken', async () => {
    const a = await start([]);
    const b = run(['serve', '--port', String(a.port)]);
    expect((await b.exited).code).toBe(1);
    expect(b.stderr()).toMatch(/EADDRINUSE|address already in use/);
  });
});

describe('admin endpoint', () => {
  it('serves /healthz, /readyz and /metrics that a Prometheus parser reads, with the used metrics', async () => {
    const p = await start(['--instance', 'box-1']);
    const s = await connect(p.port);
    expect((await roundTrip(s, Buffer.from('abc'))).toString()).toBe('abc');
    expect((await get(`${p.admin}/healthz`)).status).toBe(200);
    expect((await get(`${p.admin}/readyz`)).status).toBe(200);
    expect((await get(`${p.admin}/nope`)).status).toBe(404);
    const m = await scrape(p.admin);
    for (const f of m.families) {
      expect(f.type, f.name).not.toBe('UNTYPED');
      expect(f.help, f.name).not.toBe('');
    }
    expect(m.value('net_ready')).toBe(1);
    expect(m.value('net_connections_open')).toBe(1);
    expect(m.value('net_connections_total')).toBe(1);
    expect(m.value('net_received_bytes_total')).toBe(3);
    expect(m.value('net_sent_bytes_total')).toBe(3);
    expect(m.families.find((f) => f.name === 'net_service_info')?.metrics[0]?.labels).toEqual({
      service_name: 'tiny-echo',
      service_instance_id: 'box-1',
      service_version: '9.8.7',
    });
    expect(m.families.some((f) => f.name === 'process_resident_memory_bytes')).toBe(true);
    s.destroy();
  });
});

describe('drain', () => {
  it('echoes every byte sent before SIGTERM, refuses new connections, and exits 0', async () => {
    const p = await start([]);
    const s = await connect(p.port);
    // 4 MiB written while we do not read: most of it sits in socket buffers on both sides when the signal comes.
    const data = Buffer.alloc(4 << 20, 'x');
    for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
    s.pause();
    s.write(data);
    p.child.kill('SIGTERM');
    await p.waitFor((l) => l.msg.startsWith('draining'));
    expect((await get(`${p.admin}/readyz`)).status).toBe(503);
    await expect(connect(p.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.end();
    s.resume();
    await new Promise((resolve) => s.once('end', resolve));
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(await p.exited).toEqual({ code: 0, signal: null });
  });

  it('exits 130 at once on a second signal', async () => {
    const p = await start([]);
    const s = await connect(p.port);
    p.child.kill('SIGINT');
    await p.waitFor((l) => l.msg.startsWith('draining'));
    p.child.kill('SIGINT');
    expect((await p.exited).code).toBe(130);
    s.destroy();
  });

  it('closes what remains when the drain period is over and exits 0', async () => {
    const p = await start(['--drain-timeout', '0.3']);
    const s = await connect(p.port);
    // allowHalfOpen: the server's FIN shows as 'end' (or 'close' after a reset).
    const closed = new Promise((resolve) => s.once('end', resolve).once('close', resolve).resume());
    p.child.kill('SIGTERM');
    const exit = await p.exited;
    expect(exit, JSON.stringify([p.lines.slice(-3), p.stderr()])).toEqual({ code: 0, signal: null });
    await closed;
    expect(p.lines.some((l) => l.msg.startsWith('drain period over'))).toBe(true);
  });
});

describe('uncaught errors', () => {
  it('are logged once with their stack and exit 70', async () => {
    const p = await start([]);
    p.child.kill('SIGUSR2');
    expect((await p.exited).code).toBe(70);
    const fatal = p.lines.filter((l) => l.level === 60);
    expect(fatal).toHaveLength(1);
    expect((fatal[0]?.err as { stack?: string } | undefined)?.stack).toMatch(/deliberate uncaught error\n\s+at /);
  });
});

describe('--workers 2', () => {
  it('both workers serve; a SIGKILLed worker is restarted while the other keeps its connections; metrics add up', async () => {
    const p = await start(['--workers', '2', '--log-level', 'debug']);
    expect(p.ready.msg).toMatch(/with 2 workers$/);
    const workerPids = new Map<number, number>(); // worker id -> pid
    for (const l of p.lines) if (l.msg === 'worker listening') workerPids.set(l.worker as number, l.pid);
    expect(workerPids.size).toBe(2);

    // Open connections until both workers serve some (the kernel or the primary spreads them).
    const byPid = new Map<number, net.Socket[]>();
    for (let i = 0; i < 40 && byPid.size < 2; i++) {
      const s = await connect(p.port);
      await roundTrip(s, Buffer.from('hi'));
      const line = await p.waitFor((l) => l.msg === 'connection accepted' && l.peerPort === s.localPort);
      byPid.set(line.pid, [...(byPid.get(line.pid) ?? []), s]);
    }
    expect(byPid.size).toBe(2);
    const [victimPid, survivorPid] = [...byPid.keys()] as [number, number];
    const victims = byPid.get(victimPid) as net.Socket[];
    const survivors = byPid.get(survivorPid) as net.Socket[];
    const before = await scrape(p.admin);
    expect(before.value('net_connections_open')).toBe(victims.length + survivors.length);
    expect(before.value('net_build_info')).toBe(1);

    const victimsClosed = victims.map(
      (s) => new Promise((resolve) => s.once('end', resolve).once('close', resolve).resume()),
    );
    process.kill(victimPid, 'SIGKILL');
    await Promise.all(victimsClosed);
    for (const s of survivors) expect((await roundTrip(s, Buffer.from('still here'))).toString()).toBe('still here');
    await p.waitFor((l) => l.msg === 'restarted worker is ready');

    await waitUntil('the restarted worker in the aggregate', async () => {
      const m = await scrape(p.admin);
      return m.value('net_worker_restarts_total') === 1 && m.value('net_connections_open') === survivors.length;
    });
    const after = await scrape(p.admin);
    expect(after.value('net_build_info')).toBe(1);
    expect(after.value('net_ready')).toBe(1);
    const fresh = await connect(p.port);
    expect((await roundTrip(fresh, Buffer.from('new'))).toString()).toBe('new');
    fresh.destroy();
    for (const s of survivors) s.end();
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });
});

describe('signals during start-up', () => {
  it('drains and exits 0 when SIGTERM arrives while serve() is still starting, never announcing readiness', async () => {
    const p = run(['serve', '--port', '0', '--start-delay', '1500', '--log-level', 'debug']);
    await p.waitFor((l) => l.msg === 'serve: starting');
    p.child.kill('SIGTERM');
    await p.waitFor((l) => l.msg.startsWith('signal during start-up'));
    expect(await p.exited, p.stderr()).toEqual({ code: 0, signal: null });
    const messages = p.lines.map((l) => l.msg);
    expect(messages.some((m) => m.startsWith('draining'))).toBe(true);
    expect(messages.some((m) => m.startsWith('ready:'))).toBe(false);
    expect(messages.at(-1)).toBe('stopped');
  });

  it('exits 130 at once on a second signal during start-up', async () => {
    const p = run(['serve', '--port', '0', '--start-delay', '30000', '--log-level', 'debug']);
    await p.waitFor((l) => l.msg === 'serve: starting');
    p.child.kill('SIGTERM');
    await p.waitFor((l) => l.msg.startsWith('signal during start-up'));
    p.child.kill('SIGINT');
    expect(await p.exited).toEqual({ code: 130, signal: null });
  });
});

describe('descriptor limit', () => {
  it('logs RLIMIT_NOFILE in the starting line', async () => {
    const p = await start([]);
    const starting = await p.waitFor((l) => l.msg === 'starting');
    expect(starting.descriptorLimit).toEqual({
      soft: expect.anything(),
      hard: expect.anything(),
    });
  });

  it.skipIf(!hasPrlimit)(
    'under prlimit --nofile=256 lowers --max-connections 10000 to 192 with one warning, also with --workers 2',
    async () => {
      const one = await start(['--max-connections', '10000', '--log-level', 'debug'], {}, { nofile: 256 });
      expect((await one.waitFor((l) => l.msg === 'starting')).descriptorLimit).toEqual({ soft: 256, hard: 256 });
      const warnings = one.lines.filter((l) => l.level === 40 && l.msg.startsWith('--max-connections 10000 exceeds'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ maxConnections: 10_000, effective: 192 });
      expect((await one.waitFor((l) => l.msg === 'serve: starting')).maxConnections).toBe(192);

      const workers = await start(
        ['--workers', '2', '--max-connections', '10000', '--log-level', 'debug'],
        {},
        { nofile: 256 },
      );
      const said = workers.lines.filter((l) => l.msg.startsWith('--max-connections 10000 exceeds'));
      expect(said.filter((l) => l.level === 40)).toHaveLength(1);
      expect(said.filter((l) => l.level === 20)).toHaveLength(2); // each worker, at debug
      expect(workers.lines.filter((l) => l.msg === 'serve: starting').map((l) => l.maxConnections)).toEqual([192, 192]);
    },
  );
});

describe('transport', () => {
  it('a TCP service shows net_connections_open 0 before its first client; a UDP service shows no connection metrics', async () => {
    const tcp = await start([]);
    const t = await scrape(tcp.admin);
    expect(t.value('net_connections_open')).toBe(0);
    expect(t.value('net_connections_total')).toBe(0);

    const udp = await start([], {}, { script: udpFixture });
    const u = await scrape(udp.admin);
    expect(u.value('net_ready')).toBe(1);
    const names = u.families.map((f) => f.name);
    for (const name of ['net_connections_open', 'net_connections_total', 'net_connection_duration_seconds']) {
      expect(names).not.toContain(name);
    }
  });

  it.skipIf(reusePortSupport() === 'native')(
    'words the --workers warning of a UDP service for a shared socket, not round-robin (Node without SO_REUSEPORT)',
    async () => {
      const udp = await start(['--workers', '2'], {}, { script: udpFixture });
      const warning = udp.lines.find((l) => l.level === 40 && l.msg.startsWith('SO_REUSEPORT is not available'));
      expect(warning?.msg).toContain('2 workers share one UDP socket through node:cluster');
      expect(warning?.msg).not.toContain('round-robin');
      expect(udp.ready.balancing).toBe('node:cluster shared socket');
    },
  );
});

describe('runtime: true commands', () => {
  it('lists the common logging and admin settings in the command help', async () => {
    const p = run(['watch', '--help']);
    expect((await p.exited).code).toBe(0);
    const help = p.raw.join('\n');
    expect(help).toMatch(/^Usage: tiny-echo watch \[options\]/);
    for (const flag of ['--admin-port', '--admin-host', '--log-level', '--log-format', '--instance', '--exit-code']) {
      expect(help).toContain(flag);
    }
    expect(help).not.toContain('--drain-timeout');
    expect(help).toMatch(/--admin-port .*Env: TINY_ECHO_ADMIN_PORT\./);
    // The command's own exit codes, in order, instead of serve's generic line.
    expect(help).toContain('Exit codes: 0 stopped by a signal, 2 bad usage, 3 the admin endpoint cannot listen.');
    expect(help).not.toContain('70 uncaught error');
  });

  it('exits with the start-failure code of the command, saying why, when its admin port is taken', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = holder.address() as net.AddressInfo;
      const p = run(['watch', '--admin-port', String(port)]);
      expect(await p.exited).toEqual({ code: 3, signal: null });
      expect(p.stderr()).toMatch(
        /^tiny-echo watch: cannot start the admin endpoint: .*(EADDRINUSE|address already in use)/,
      );
      expect(p.lines.find((l) => l.level === 60)?.msg).toMatch(/^cannot start the admin endpoint/);
      expect(p.lines.some((l) => l.msg === 'watching')).toBe(false);
    } finally {
      holder.close();
    }
  });

  it('gives the command a logger, metrics and the admin endpoint; SIGTERM aborts its signal and it exits with its code', async () => {
    const p = run(['watch', '--admin-port', '0', '--instance', 'w-1', '--exit-code', '7']);
    const watching = await p.waitFor((l) => l.msg === 'watching');
    expect(watching).toMatchObject({ instance: 'w-1', service: 'tiny-echo', level: 30, logLevel: 'info' });
    const admin = watching.admin as string;
    expect((await get(`${admin}/readyz`)).status).toBe(200);
    const m = await scrape(admin);
    expect(m.value('net_ready')).toBe(1);
    expect(m.value('net_watch_reconnects_total')).toBe(1);
    expect(m.families.find((f) => f.name === 'net_service_info')?.metrics[0]?.labels).toMatchObject({
      service_version: '9.8.7',
      service_instance_id: 'w-1',
    });
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 7, signal: null });
    expect(p.lines.find((l) => l.msg === 'watch: finishing')?.reason).toBe('SIGTERM');
    expect(p.lines.at(-1)).toMatchObject({ msg: 'stopped', exitCode: 7 });
  });

  it('turns /readyz to 503 at the signal and exits 130 on a second one', async () => {
    const p = run(['watch', '--admin-port', '0', '--linger', '30000']);
    const admin = (await p.waitFor((l) => l.msg === 'watching')).admin as string;
    p.child.kill('SIGINT');
    await p.waitFor((l) => l.msg === 'watch: finishing');
    expect((await get(`${admin}/readyz`)).status).toBe(503);
    p.child.kill('SIGINT');
    expect(await p.exited).toEqual({ code: 130, signal: null });
  });
});

describe('client commands (defineClientCommand)', () => {
  /** Runs `tiny-echo ping ...` to its exit. */
  async function ping(args: string[], env: Record<string, string> = {}) {
    const p = run(['ping', ...args], env);
    const exit = await p.exited;
    return { ...exit, stdout: p.raw.join('\n'), stderr: p.stderr() };
  }
  /** A TCP server on loopback that accepts and never answers; closed with its connections by the returned function. */
  async function silentServer(): Promise<{ port: number; close(): void }> {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as net.AddressInfo).port,
      close() {
        for (const s of sockets) s.destroy();
        server.close();
      },
    };
  }
  async function closedPort(): Promise<number> {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  it('ends --help with the one exit-code table and names every variable PREFIX_<COMMAND>_<SETTING>', async () => {
    const help = await ping(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--timeout\s.*Env: TINY_ECHO_PING_TIMEOUT\. Default: 5\./);
    expect(help.stdout).toMatch(/--json\s.*Env: TINY_ECHO_PING_JSON\. Default: false\./);
    const table = help.stdout.slice(help.stdout.indexOf('Exit codes'));
    const codes = [...table.matchAll(/^ {2}(\d+)\s/gm)].map((m) => Number(m[1]));
    expect(codes).toEqual([0, 1, 2, 68, 69, 70, 75, 76]);
    expect(help.stdout.trimEnd().endsWith('(EX_PROTOCOL)')).toBe(true);
  });

  it('exits 0 against the echo, and with --json prints one object with result, exitCode, target, elapsedMs and the answer', async () => {
    const s = await start([]);
    const [text, json] = await Promise.all([ping([`127.0.0.1:${s.port}`]), ping([`127.0.0.1:${s.port}`, '--json'])]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    expect(text.stdout).toBe(`pong from 127.0.0.1:${s.port}`);
    expect(json.code).toBe(0);
    const result = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(result).toMatchObject({
      result: 'ok',
      exitCode: 0,
      target: `127.0.0.1:${s.port}`,
      timeoutMs: 5000,
      answer: 'ping\n',
    });
    expect(Object.keys(result).slice(0, 5)).toEqual(['result', 'exitCode', 'target', 'elapsedMs', 'timeoutMs']);
    expect(result.elapsedMs).toBeGreaterThan(0);
    expect(result).not.toHaveProperty('error');
  });

  it('exits 69 when refused, 75 when the peer never answers (timeout from its variable), 2 on a bad target', async () => {
    const silent = await silentServer();
    try {
      const port = await closedPort();
      const [refused, timeout, usage] = await Promise.all([
        ping([`127.0.0.1:${port}`, '--json']),
        ping([`127.0.0.1:${silent.port}`, '--json'], { TINY_ECHO_PING_TIMEOUT: '0.2' }),
        ping(['127.0.0.1:70000', '--json']),
      ]);
      expect(refused.code).toBe(69);
      expect(JSON.parse(refused.stdout)).toMatchObject({
        result: 'error',
        exitCode: 69,
        target: `127.0.0.1:${port}`,
        error: { code: 'NET_ERR_CONNECT', message: expect.stringContaining('ECONNREFUSED') },
      });
      expect(refused.stderr).toMatch(/^tiny-echo ping: cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED\n$/);
      expect(timeout.code).toBe(75);
      expect(JSON.parse(timeout.stdout)).toMatchObject({
        exitCode: 75,
        timeoutMs: 200,
        error: { code: 'NET_ERR_TIMEOUT' },
      });
      expect(usage.code).toBe(2);
      expect(JSON.parse(usage.stdout)).toMatchObject({
        exitCode: 2,
        target: null,
        error: { code: 'NET_ERR_BAD_ENDPOINT' },
      });
    } finally {
      silent.close();
    }
  });

  it('defaults to the service’s own local endpoint, 127.0.0.1 and its default port', async () => {
    const r = await ping(['--json', '--timeout', '0.5']);
    // Nothing listens on the fixture's default port 17007 during the tests: refused, but at that target.
    expect(JSON.parse(r.stdout)).toMatchObject({ target: '127.0.0.1:17007' });
  });

  it('prints JSON with exit code 2 also when a flag or variable does not parse, and one line on stderr', async () => {
    const [flag, variable, noJson] = await Promise.all([
      ping(['--json', '--timeout', 'soon']),
      ping(['--timeout', '-1'], { TINY_ECHO_PING_JSON: 'yes' }),
      ping(['--timeout', 'soon']),
    ]);
    for (const r of [flag, variable]) {
      expect(r.code).toBe(2);
      expect(JSON.parse(r.stdout)).toMatchObject({
        result: 'error',
        exitCode: 2,
        target: null,
        timeoutMs: null,
        error: { code: 'NET_ERR_BAD_CONFIG', message: expect.stringContaining('--timeout') },
      });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(noJson.code).toBe(2);
    expect(noJson.stdout).toBe('');
  });

  it('warns on stderr about a variable no command reads, naming the one a client command reads', async () => {
    const s = await start([]);
    const r = await ping([`127.0.0.1:${s.port}`], { TINY_ECHO_TIMEOUT: '3' });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'tiny-echo ping: TINY_ECHO_TIMEOUT matches no setting of tiny-echo and is ignored (did you mean TINY_ECHO_PING_TIMEOUT?)\n',
    );
    // serve knows the client's variables and does not warn about them; a dropped name it warns about, with the hint.
    const [served, old] = await Promise.all([
      start([], { TINY_ECHO_PING_TIMEOUT: '3' }),
      start([], { TINY_ECHO_TIMEOUT: '3' }),
    ]);
    expect(served.lines.filter((l) => l.level === 40)).toEqual([]);
    expect(old.lines.filter((l) => l.level === 40).map((l) => [l.variable, l.msg])).toEqual([
      [
        'TINY_ECHO_TIMEOUT',
        'TINY_ECHO_TIMEOUT matches no setting of tiny-echo and is ignored (did you mean TINY_ECHO_PING_TIMEOUT?)',
      ],
    ]);
  });
});
