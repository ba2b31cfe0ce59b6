/**
 * Prometheus's own checker, `promtool` (Debian package `prometheus`), run on text a service served. Its
 * `check metrics` reads exposition text on stdin and reports what breaks the format or the naming conventions
 * (a gauge named `_total`, a counter without it, a missing HELP), exiting non-zero; `@net/testkit` runs it on each
 * service's live `/metrics` (contract rule 10).
 */
import { spawn, spawnSync } from 'node:child_process';

/** Why promtool cannot be run here, or undefined when it can. */
export function promtoolUnavailable(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { stdio: 'ignore', timeout: 10_000 });
  if (r.error) return `promtool is not installed (Debian package prometheus): ${(r.error as Error).message}`;
  return r.status === 0 ? undefined : `promtool --version exited ${r.status}`;
}

/** The outcome of one promtool run: its exit status and what it printed (stdout and stderr). */
export interface PromtoolResult {
  status: number | null;
  output: string;
}

/**
 * Runs `promtool check metrics` on `text` (at most `timeoutMs`, then SIGKILL).
 * @throws when promtool cannot be started.
 */
export function promtoolCheckMetrics(text: string, timeoutMs = 20_000): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
    // promtool may exit before reading everything (a parse error): an EPIPE then is not our failure.
    child.stdin.on('error', () => {});
    child.stdin.end(text);
  });
}
