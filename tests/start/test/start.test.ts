/**
 * `npm start` as a process manager (systemd, tmux, foreman) drives it: a signal to npm's PID alone stops every
 * service, a service that dies is reported and fails the run, a second Ctrl-C forces the drain. Every case runs
 * the real `npm start -- --no-install` with NET_START_PORTS=0, so the kernel picks every port and a user's own
 * running services are never in the way; afterwards every service process must be gone and every port free.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NAMES = ['echo-tcp', 'daytime-tcp', 'udp-echo', 'keepalive-probe'] as const;
const LISTING = /^ {2}(\S+) +(tcp|udp) 127\.0\.0\.1:(\d+) +admin http:\/\/127\.0\.0\.1:(\d+)$/;
const hasNpm = spawnSync('npm', ['--version'], { stdio: 'ignore' }).status === 0;
const hasPnpm = spawnSync('pnpm', ['--version'], { stdio: 'ignore' }).status === 0;

interface Service {
  name: string;
  proto: 'tcp' | 'udp';
  port: number;
  adminPort: number;
  pid: number;
}

interface Run {
  npm: ChildProcess;
  services: Map<string, Service>;
  /** Everything npm and the script printed so far, stdout and stderr together. */
  output(): string;
  /** Resolves once the output contains `text` (rejects after `ms`). */
  waitFor(text: string | RegExp, ms?: number): Promise<void>;
  /** npm's exit: code or signal, bounded by `ms`. */
  exited(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const runs: Run[] = [];

/** The PIDs of every descendant of `pid`, from /proc (children of each thread). */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const pending = [pid];
  while (pending.length > 0) {
    const p = pending.pop() as number;
    let kids: number[] = [];
    try {
      kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      // gone meanwhile
    }
    out.push(...kids);
    pending.push(...kids);
  }
  return out;
}

/** The service a PID runs, from its command line (`.../services/<name>/dist/main.js serve ...`). */
function serviceOf(pid: number): string | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.map((a) => /services\/([\w-]+)\/dist\/main\.js$/.exec(a)?.[1]).find(Boolean);
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts `npm start -- --no-install` and resolves once every service is listed with its ports and PID. */
async function startNpm(): Promise<Run> {
  const npm = spawn('npm', ['start', '--', '--no-install'], {
    cwd: ROOT,
    env: { ...process.env, NET_START_PORTS: '0', NET_START_VERBOSE: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    // A process group of its own, as under a process manager: no signal of ours reaches it but those we aim.
    detached: true,
  });
  let text = '';
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => {
    text += d.toString();
    for (const w of waiters) w();
  };
  npm.stdout?.on('data', onData);
  npm.stderr?.on('data', onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    npm.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters) w();
    });
  });
  const run: Run = {
    npm,
    services: new Map(),
    output: () => text,
    waitFor: (wanted, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (typeof wanted === 'string' ? text.includes(wanted) : wanted.test(text)) done(resolve);
          else if (npm.exitCode !== null || npm.signalCode !== null) done(() => reject(notFound('npm exited')));
        };
        const notFound = (why: string) => new Error(`${why} before printing ${String(wanted)}; output:\n${text}`);
        const timer = setTimeout(() => done(() => reject(notFound(`${ms} ms passed`))), ms);
        const done = (f: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          f();
        };
        waiters.add(check);
        check();
      }),
    exited: (ms = 60_000) =>
      Promise.race([
        exit,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`npm still running after ${ms} ms; output:\n${text}`)), ms).unref(),
        ),
      ]),
  };
  runs.push(run);
  await run.waitFor('Try: ');
  const pids = new Map<string, number>();
  for (const pid of descendants(npm.pid as number)) {
    const name = serviceOf(pid);
    if (name) pids.set(name, pid);
  }
  for (const line of text.split('\n')) {
    const m = LISTING.exec(line);
    if (!m) continue;
    const [, name, proto, port, adminPort] = m as unknown as [string, string, 'tcp' | 'udp', string, string];
    run.services.set(name, { name, proto, port: Number(port), adminPort: Number(adminPort), pid: pids.get(name) ?? 0 });
  }
  expect([...run.services.keys()].sort()).toEqual([...NAMES].sort());
  for (const s of run.services.values()) expect(s.pid, `PID of ${s.name}`).toBeGreaterThan(0);
  return run;
}

/** Whether `port` on 127.0.0.1 can be bound again (TCP listen or UDP bind), i.e. nothing holds it. */
async function portFree(proto: 'tcp' | 'udp', port: number): Promise<boolean> {
  if (proto === 'udp') {
    const socket = dgram.createSocket('udp4');
    try {
      socket.bind(port, '127.0.0.1');
      await once(socket, 'listening');
      return true;
    } catch {
      return false;
    } finally {
      socket.close();
    }
  }
  const server = net.createServer();
  try {
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

/** Every service process of `run` has exited and each of its ports (service and admin) is free. */
async function expectAllGone(run: Run): Promise<void> {
  for (const s of run.services.values()) {
    expect(alive(s.pid), `${s.name} (PID ${s.pid}) still running`).toBe(false);
    expect(await portFree(s.proto, s.port), `${s.name}'s ${s.proto} port ${s.port}`).toBe(true);
    expect(await portFree('tcp', s.adminPort), `${s.name}'s admin port ${s.adminPort}`).toBe(true);
  }
}

afterEach(async () => {
  // Also on failure: nothing a case started outlives it.
  for (const run of runs.splice(0)) {
    for (const s of run.services.values()) if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
    if (run.npm.exitCode === null && run.npm.signalCode === null) {
      try {
        process.kill(-(run.npm.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
      await once(run.npm, 'exit');
    }
  }
});

describe.skipIf(!hasNpm)('npm start under a process manager (skipped without npm)', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`stops every service and frees every port when npm's PID alone gets ${signal}, and exits 0`, async () => {
      const run = await startNpm();
      process.kill(run.npm.pid as number, signal);
      const { code, signal: bySignal } = await run.exited();
      expect(run.output()).toContain(`start: ${signal}: draining`);
      for (const name of NAMES) expect(run.output()).toContain(`  ${name} stopped (exit 0)`);
      expect({ code, bySignal }).toEqual({ code: 0, bySignal: null });
      await expectAllGone(run);
    });
  }

  it("drains without forcing on a terminal's Ctrl-C, which reaches npm and the script alike (SIGINT to the group)", async () => {
    const run = await startNpm();
    // The terminal signals the whole foreground group, and npm forwards its copy too: two SIGINTs at once.
    process.kill(-(run.npm.pid as number), 'SIGINT');
    const { code } = await run.exited();
    expect(run.output()).not.toContain('start: forced');
    for (const name of NAMES) expect(run.output()).toContain(`  ${name} stopped (exit 0)`);
    expect(code).toBe(0);
    await expectAllGone(run);
  });

  it('reports a service that dies, stops the others and exits non-zero', async () => {
    const run = await startNpm();
    const victim = run.services.get('daytime-tcp') as Service;
    process.kill(victim.pid, 'SIGKILL');
    const { code } = await run.exited();
    expect(run.output()).toContain('start: daytime-tcp exited on its own (signal SIGKILL); stopping the others');
    expect(run.output()).toContain('start: not stopped cleanly: daytime-tcp (signal SIGKILL)');
    for (const name of NAMES.filter((n) => n !== 'daytime-tcp')) {
      expect(run.output()).toContain(`  ${name} stopped (exit 0)`);
    }
    expect(code).toBe(1);
    await expectAllGone(run);
  });

  it('shows which service is still draining, and a second SIGINT kills it and says so, exiting 1', async () => {
    const run = await startNpm();
    const echo = run.services.get('echo-tcp') as Service;
    // A client that never closes its side keeps echo-tcp draining (it half-closes and waits for the client's FIN
    // until its drain timeout, 10 s) after the first SIGINT.
    const client = net.connect({ port: echo.port, host: '127.0.0.1', allowHalfOpen: true });
    client.on('error', () => {});
    await once(client, 'connect');
    try {
      process.kill(run.npm.pid as number, 'SIGINT');
      await run.waitFor('start: still draining: echo-tcp');
      process.kill(run.npm.pid as number, 'SIGINT');
      const { code } = await run.exited();
      expect(run.output()).toContain('start: forced: SIGKILL to echo-tcp');
      expect(run.output()).toContain('start: stopped by force; services did not finish their drain');
      expect(code).toBe(1);
      await expectAllGone(run);
    } finally {
      client.destroy();
    }
  });
});

describe.skipIf(!hasPnpm)('the service commands at the repository root (skipped without pnpm on PATH)', () => {
  for (const name of NAMES) {
    it(`pnpm exec ${name} --help exits 0 and prints its usage`, () => {
      const r = spawnSync('pnpm', ['exec', name, '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
      expect(r.error).toBeUndefined();
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout + r.stderr).toContain(name);
    });
  }
});
