import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clockTicksPerSecond, cpuSeconds, readProcStat } from '../src/index.js';

/** Spins the CPU of this thread for about `ms` of CPU time. */
function burn(ms: number): void {
  const start = process.cpuUsage();
  let x = 0;
  for (;;) {
    for (let i = 0; i < 100_000; i++) x += i;
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) break;
  }
  if (x < 0) throw new Error('unreachable');
}

describe('cpuSeconds', () => {
  it('agrees with the process’s own getrusage figure (process.cpuUsage) to within a few clock ticks', () => {
    burn(300);
    const fromProc = cpuSeconds(process.pid);
    const usage = process.cpuUsage();
    const own = (usage.user + usage.system) / 1e6;
    // /proc counts every thread of the process (the same as getrusage(RUSAGE_SELF)), truncated to whole ticks.
    expect(Math.abs(fromProc - own)).toBeLessThan(5 / clockTicksPerSecond());
  });

  it('counts waited-for children that exited only withChildren', () => {
    const before = cpuSeconds(process.pid, { withChildren: true }) - cpuSeconds(process.pid);
    const r = spawnSync(process.execPath, [
      '-e',
      'const s = process.cpuUsage(); while (process.cpuUsage(s).user < 300_000) {}',
    ]);
    expect(r.status).toBe(0);
    const after = cpuSeconds(process.pid, { withChildren: true }) - cpuSeconds(process.pid);
    expect(after - before).toBeGreaterThanOrEqual(0.25);
  });
});

describe('clockTicksPerSecond', () => {
  it('is what getconf CLK_TCK prints, asked once', () => {
    expect(clockTicksPerSecond()).toBe(Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' })));
    expect(clockTicksPerSecond()).toBe(clockTicksPerSecond());
  });
});

describe('readProcStat', () => {
  it('reads the fields after a command name that holds spaces and parentheses', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-proc-stat-'));
    try {
      const odd = join(dir, 'a) (b c');
      symlinkSync(process.execPath, odd);
      const child = spawn(odd, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      try {
        const stat = readProcStat(child.pid as number);
        expect(stat.ppid).toBe(process.pid);
        expect(['R', 'S']).toContain(stat.state);
        expect(stat.utime).toBeGreaterThanOrEqual(0);
      } finally {
        child.kill('SIGKILL');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
