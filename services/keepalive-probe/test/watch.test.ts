/**
 * `watch` on loopback: `--once` as a check (exit 0 all up, 1 any down), and the long-running watcher that logs
 * transitions only, exposes the target gauge and reconnect counter, and reconnects with backoff.
 */
import net from 'node:net';
import { spawnLogged, stopAllServices } from '@net/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTargets } from '../src/watch.js';
import { BIN, run, startServe } from './helpers.js';

afterEach(() => stopAllServices());

/** A loopback port nothing listens on: a server's port after it stopped. */
async function closedPort(): Promise<number> {
  const server = await startServe(['--port', '0']);
  await server.stop();
  return server.port;
}

describe('watch --once', () => {
  it('exits 0 and prints each target up when all targets are up', async () => {
    const a = await startServe(['--port', '0']);
    const b = await startServe(['--port', '0']);
    const r = await run(process.execPath, [BIN, 'watch', '--once', `127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`up    127.0.0.1:${a.port}\nup    127.0.0.1:${b.port}\n2 of 2 targets up\n`);
  });

  it('exits 1 at --once-timeout and says why when a target is down', async () => {
    const live = await startServe(['--port', '0']);
    const dead = await closedPort();
    const r = await run(process.execPath, [
      ...[BIN, 'watch', '--once', '--once-timeout', '1', '--log-format', 'json'],
      ...[`127.0.0.1:${live.port}`, `127.0.0.1:${dead}`],
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`up    127.0.0.1:${live.port}\ndown  127.0.0.1:${dead} (ECONNREFUSED)\n1 of 2 targets up\n`);
    // Logs go to stderr with --once, so that stdout is only the result.
    expect(r.stderr).toContain('"event":"target_down"');
  });

  it('refuses a target that is not a TCP HOST:PORT with exit code 2', async () => {
    const r = await run(process.execPath, [BIN, 'watch', '--once', 'unix:/tmp/x.sock']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid target "unix:/tmp/x.sock": expected a TCP HOST:PORT');
    expect(() => parseTargets([])).toThrow(/at least one HOST:PORT/);
    expect(parseTargets(['127.0.0.1:7', '127.0.0.1:07'])).toHaveLength(1);
  });
});

describe('watch', () => {
  it('logs up and down transitions only, counts reconnects, and comes back up when the target returns', async () => {
    const first = await startServe(['--port', '0', '--drain-timeout', '0']);
    const target = `127.0.0.1:${first.port}`;
    const watch = spawnLogged(process.execPath, [
      ...[BIN, 'watch', target, '--log-format', 'json', '--log-level', 'debug', '--admin-port', '0'],
      ...['--backoff-initial', '0.05', '--backoff-max', '0.2'],
    ]);
    const started = await watch.waitForLine((l) => typeof l.admin === 'string');
    const metrics = async () => (await fetch(`${started.admin as string}/metrics`)).text();
    await watch.waitForLine((l) => l.event === 'target_up');
    expect(await metrics()).toMatch(new RegExp(`^net_watch_target_up\\{[^}]*target="${target}"[^}]*\\} 1$`, 'm'));

    await first.stop();
    const down = await watch.waitForLine((l) => l.event === 'target_down');
    expect(down).toMatchObject({ level: 30, target });
    expect(await metrics()).toMatch(new RegExp(`^net_watch_target_up\\{[^}]*target="${target}"[^}]*\\} 0$`, 'm'));
    // Several attempts fail while the target is away (backoff 50-200 ms); none is logged at info.
    await watch.waitForLine((l) => l.msg === 'target still down');

    await startServe(['--port', String(first.port)]);
    const up = await watch.waitForLine((l) => l.event === 'target_up' && typeof l.downSeconds === 'number');
    expect(up.level).toBe(30);
    const text = await metrics();
    expect(text).toMatch(new RegExp(`^net_watch_target_up\\{[^}]*target="${target}"[^}]*\\} 1$`, 'm'));
    const reconnects = Number(/^net_watch_reconnects_total\{[^}]*\} (\d+)$/m.exec(text)?.[1]);
    expect(reconnects).toBeGreaterThanOrEqual(2);
    const info = watch.lines.filter((l) => l.level === 30 && (l.event === 'target_up' || l.event === 'target_down'));
    expect(info.map((l) => l.event)).toEqual(['target_up', 'target_down', 'target_up']);
    await watch.stop();
    expect((await watch.exited).code).toBe(0);
  });
});

describe('watch under the runtime', () => {
  it('turns /readyz 200 and net_ready 1 once its targets are started, and exits 0 on SIGTERM with the runtime lines', async () => {
    const server = await startServe(['--port', '0']);
    const watch = spawnLogged(process.execPath, [
      ...[BIN, 'watch', `127.0.0.1:${server.port}`, '--log-format', 'json', '--admin-port', '0'],
    ]);
    const admin = (await watch.waitForLine((l) => typeof l.admin === 'string')).admin as string;
    await watch.waitForLine((l) => l.event === 'target_up');
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    expect(await (await fetch(`${admin}/metrics`)).text()).toMatch(/^net_ready 1$/m);
    watch.proc.kill('SIGTERM');
    expect(await watch.exited).toEqual({ code: 0, signal: null });
    expect(watch.lines.find((l) => l.msg === 'starting')).toMatchObject({ command: 'watch' });
    expect(watch.lines.find((l) => l.msg === 'stopping')).toMatchObject({ signal: 'SIGTERM' });
    expect(watch.lines.at(-1)).toMatchObject({ msg: 'stopped', exitCode: 0 });
  });

  it('exits 3 saying why when its admin port is taken, as documented', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = holder.address() as net.AddressInfo;
      const r = await run(process.execPath, [BIN, 'watch', '127.0.0.1:9', '--admin-port', String(port)]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(
        /^keepalive-probe watch: cannot start the admin endpoint: .*(EADDRINUSE|address already in use)/,
      );
    } finally {
      holder.close();
    }
  });

  it('lists its own exit codes in --help', async () => {
    const r = await run(process.execPath, [BIN, 'watch', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'Exit codes: 0 all up (--once) or stopped by a signal, 1 a target still down at --once-timeout, 2 bad usage, ' +
        '3 keepalive settings or admin endpoint unavailable, 70 uncaught error, 130 second signal.',
    );
  });
});
