/**
 * What a process holds, read from /proc (proc(5)): open descriptors, resident memory, children, whether it lives
 * (CPU time is @net/test-support's cpuSeconds, with the kernel's clock tick). Figures, not feelings: every case
 * asserts on these.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readProcStat } from '@net/test-support';

/** Open file descriptors of `pid` (entries of /proc/PID/fd). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of `pid` in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Child pids of `pid` (from /proc/PID/task/*\/children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (text !== '') out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    return readProcStat(pid).state !== 'Z';
  } catch {
    return false;
  }
}

/** Resolves once `pred()` is true, polling every `everyMs`; rejects after `timeoutMs`. */
export async function waitUntil(pred: () => boolean, timeoutMs: number, what: string, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Percentile `p` (0-100) of `values` (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export const MiB = 1024 * 1024;
