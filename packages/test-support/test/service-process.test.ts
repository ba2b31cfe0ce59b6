import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  isReadyLine,
  type Owner,
  portOf,
  runCommandToExit,
  runToExit,
  spawnNode,
  startService,
  stopAllServices,
  stopOwned,
  waitForReady,
} from '../src/index.js';

const fixture = fileURLToPath(new URL('./fixtures/service.mjs', import.meta.url));

// Passed as the hook itself, as service tests do (vitest rejects a hook whose first parameter is not destructured).
afterEach(stopAllServices);
afterAll(stopAllServices);

/** True while a process `pid` exists (signal 0 checks without sending). */
function exists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls `pred` every 20 ms, up to 5 s. */
async function eventually(pred: () => boolean): Promise<boolean> {
  for (let i = 0; i < 250 && !pred(); i++) await new Promise((r) => setTimeout(r, 20));
  return pred();
}

describe('startService', () => {
  it('resolves with the endpoints, port, admin port and ready line of the ready line, and the port accepts', async () => {
    const s = await startService(fixture, ['ready', '--admin']);
    expect(isReadyLine(s.ready)).toBe(true);
    expect(s.endpoints).toEqual([`127.0.0.1:${s.port}`]);
    expect(s.adminUrl).toBe(`http://127.0.0.1:${s.adminPort}`);
    expect(s.ready.pid).toBe(s.proc.pid);
    const socket = net.connect({ host: '127.0.0.1', port: s.port });
    await once(socket, 'connect');
    socket.destroy();
  });

  it('waits for a ready line that comes later, and leaves adminUrl undefined without one', async () => {
    const s = await startService(fixture, ['late-ready']);
    expect(s.port).toBeGreaterThan(0);
    expect(s.adminUrl).toBeUndefined();
    expect(s.adminPort).toBeUndefined();
  });

  it('keeps JSON lines in lines and every stdout line, JSON or not, in rawLines', async () => {
    const s = await startService(fixture, ['ready']);
    expect(s.lines.map((l) => l.msg)).toEqual(['starting', s.ready.msg]);
    expect(s.rawLines).toContain('plain text, not a log line');
    expect(s.stdout()).toContain('plain text, not a log line\n');
  });

  it('rejects with the stderr and exit code when the process exits before its ready line', async () => {
    await expect(startService(fixture, ['exit-early'])).rejects.toThrow(
      /did not become ready: process exited \(code 2, signal null\).*--bogus is not a flag/s,
    );
  });

  it('rejects after timeoutMs without a ready line, with the last lines, and kills the process', async () => {
    const p = spawnNode(fixture, ['never-ready']);
    await expect(waitForReady(p, 'never-ready', 500)).rejects.toThrow(
      /never-ready did not become ready: no matching log line within 500 ms.*"msg":"starting"/s,
    );
    expect((await p.exited).signal).toBe('SIGKILL');
  });

  it('stop() sends SIGTERM and resolves with the exit', async () => {
    const s = await startService(fixture, ['ready']);
    expect(await s.stop()).toEqual({ code: 0, signal: null });
    expect(s.lines.at(-1)?.msg).toBe('stopped');
  });

  it('stop() SIGKILLs the group and rejects when the process outlives timeoutMs', async () => {
    const s = await startService(fixture, ['ready']);
    await expect(s.stop('SIGUSR2', 300)).rejects.toThrow(/did not exit within 300 ms of SIGUSR2/);
    // The fixture ignores SIGUSR2: only the SIGKILL ends it.
    expect((await s.exited).signal).toBe('SIGKILL');
  });

  it('stopAllServices kills the whole process group, a grandchild included', async () => {
    const s = await startService(fixture, ['with-child']);
    const grandchild = s.ready.childPid as number;
    expect(exists(grandchild)).toBe(true);
    await stopAllServices();
    expect(await eventually(() => !exists(grandchild))).toBe(true);
  });

  it('stopOwned(owner) stops only the processes of that owner', async () => {
    const owner: Owner = new Set();
    const mine = await startService(fixture, ['ready'], { owner });
    const other = await startService(fixture, ['ready']);
    await stopOwned(owner);
    expect((await mine.exited).signal).toBe('SIGKILL');
    expect(other.proc.exitCode).toBeNull();
    expect(other.proc.signalCode).toBeNull();
  });

  it('runs the entry through a wrapper that execs it, so the pid is the service’s own', async () => {
    const s = await startService(fixture, ['ready'], { wrapper: ['env', 'FIXTURE_WRAPPED=1'] });
    expect(s.ready.pid).toBe(s.proc.pid);
  });
});

describe('runToExit', () => {
  it('returns the exit code, stdout as lines and as written, stderr and the JSON lines', async () => {
    const r = await runToExit(fixture, ['exit-early']);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^\{.*"msg":"starting"\}$/);
    expect(r.rawStdout).toBe(`${r.stdout}\n`);
    expect(r.stderr).toBe('fixture: --bogus is not a flag\n');
    expect(r.lines.map((l) => l.msg)).toEqual(['starting']);
  });

  it('rejects and kills the process when it outlives timeoutMs', async () => {
    await expect(runCommandToExit('sleep', ['30'], { timeoutMs: 300 })).rejects.toThrow(
      /sleep 30 did not exit within 300 ms/,
    );
  });
});

describe('portOf', () => {
  it('reads the port after the last colon of an IPv4 or IPv6 endpoint, NaN for a Unix path', () => {
    expect(portOf('127.0.0.1:7')).toBe(7);
    expect(portOf('[::1]:15000')).toBe(15000);
    expect(portOf('unix:/run/echo.sock')).toBeNaN();
  });
});
