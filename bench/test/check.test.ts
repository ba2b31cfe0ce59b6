import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_DIR, buildAll, goMissing } from '../src/build.mjs';
import { waitForPort } from './support.js';

// Ports of their own (below the ephemeral range), so a `pnpm bench` on 21000-21039 can run meanwhile.
const CHECK_PORT_BASE = 21050;
const FLIPPING_ECHO_PORT = 21095;

const outDir = mkdtempSync(join(tmpdir(), 'net-bench-check-'));
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command in its own process group, killed whole (SIGKILL) when it outlives timeoutMs or the test fails. */
function run(command: string, args: string[], timeoutMs: number): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Row {
  id: string;
  label: string;
  role: string;
  skipped?: string;
  runs?: { verify_failures: number; stalled: number; total_msgs: number; failed?: string }[];
}

describe('bench --check', () => {
  it('verifies every echoed byte from the C references, the Node baselines and each built service, with no stall', async () => {
    const exit = await run(
      process.execPath,
      [join(BENCH_DIR, 'src', 'run.mjs'), '--check', '--port-base', String(CHECK_PORT_BASE), '--out-dir', outDir],
      90_000,
    );
    expect(exit.code, exit.stdout + exit.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(outDir, 'check.json'), 'utf8'));
    const measured: Row[] = report.scenarios.flatMap((s: { rows: Row[] }) => s.rows.filter((r) => !r.skipped));
    // Every kind of server was exercised, references and Node baselines at least.
    const ids = new Set(measured.map((r) => r.id));
    for (const id of ['c-tcp', 'c-udp', 'c-daytime', 'node-tcp', 'node-udp', 'node-daytime']) expect(ids).toContain(id);
    // The Go baseline is built and verified wherever go is installed (CI installs golang-go).
    if (!goMissing()) expect(ids).toContain('go-tcp');
    for (const row of measured) {
      expect(row.runs!.length, row.id).toBeGreaterThan(0);
      for (const r of row.runs!) {
        expect(r.failed, row.id).toBeUndefined();
        expect(r.total_msgs, row.id).toBeGreaterThan(0);
        expect(r.verify_failures, row.id).toBe(0);
        expect(r.stalled, row.id).toBe(0);
      }
    }
  });

  it('counts verify failures, and exits non-zero, against an echo that flips one byte in every 1000th chunk', async () => {
    const bins = buildAll();
    const server = spawn(
      process.execPath,
      [join(BENCH_DIR, 'test', 'fixtures', 'flipping-echo.mjs'), '--port', String(FLIPPING_ECHO_PORT)],
      {
        detached: true,
        stdio: 'ignore',
      },
    );
    try {
      await waitForPort(FLIPPING_ECHO_PORT);
      // One connection, 64 B messages: each message is one chunk to the server, so every 1000th one is corrupted.
      const exit = await run(
        bins.loadgen,
        ['tcp-pingpong', '-p', String(FLIPPING_ECHO_PORT), '-c', '1', '-s', '64', '-d', '2', '-w', '0'],
        30_000,
      );
      const result = JSON.parse(exit.stdout);
      expect(result.total_msgs).toBeGreaterThan(1000);
      expect(result.verify_failures).toBeGreaterThan(0);
      expect(exit.code).toBe(1);
    } finally {
      process.kill(-server.pid!, 'SIGKILL');
    }
  });
});

describe('bench --runs', () => {
  it('takes as many rounds per figure as asked, and refuses a count outside 1-9 with the usage line (exit 2)', async () => {
    const runsDir = join(outDir, 'runs');
    const runMjs = join(BENCH_DIR, 'src', 'run.mjs');
    const exit = await run(
      process.execPath,
      [runMjs, '--check', '--only', '^udp-pingpong-64x1$', '--runs', '2', '--port-base', '21100', '--out-dir', runsDir],
      120_000,
    );
    expect(exit.code, exit.stdout + exit.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(runsDir, 'check-only.json'), 'utf8'));
    const measured: Row[] = report.scenarios.flatMap((s: { rows: Row[] }) => s.rows.filter((r) => !r.skipped));
    expect(measured.map((r) => r.id)).toContain('c-udp');
    for (const row of measured) expect(row.runs, row.id).toHaveLength(2);
    for (const bad of ['0', '10', '2.5', 'three']) {
      const refused = await run(process.execPath, [runMjs, '--runs', bad], 10_000);
      expect(refused.code, bad).toBe(2);
      expect(refused.stderr).toMatch(/^usage: run\.mjs .*--runs 1-9/);
    }
  });
});
