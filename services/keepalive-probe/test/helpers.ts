/**
 * Test helpers: spawning the built bin (also inside a network namespace, through `ip netns exec`), reading its JSON
 * log lines, and making sure no process outlives its test (`killAll()` in afterEach).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built bin (tests run after `tsc -b`). */
export const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** One pino JSON line. */
export interface LogLine {
  level: number;
  msg: string;
  time: string;
  [key: string]: unknown;
}

/** A child process whose stdout JSON lines are parsed as they come. */
export interface Proc {
  proc: ChildProcess;
  lines: LogLine[];
  stdout(): string;
  stderr(): string;
  /** The first line, past or future, matching `pred`; rejects after `timeoutMs` or when the process exits. */
  waitForLine(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM, then SIGKILL of the group after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();

function killGroup(proc: ChildProcess): void {
  try {
    if (proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // ESRCH: gone already.
  }
}

/** A set of processes one test owns, so that concurrent tests clean up only their own. */
export type Owner = Set<ChildProcess>;

/**
 * SIGKILLs every process group still running (or only those of `owner`) and waits for them (call in afterEach, or
 * in onTestFinished with the test's own owner).
 */
export async function killAll(owner: Owner = live): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const proc of owner) {
    if (proc.exitCode === null && proc.signalCode === null) waits.push(new Promise((r) => proc.once('close', r)));
    killGroup(proc);
    live.delete(proc);
  }
  owner.clear();
  await Promise.all(waits);
}

process.once('exit', () => {
  for (const p of live) killGroup(p);
});

/** Spawns `command args` in its own process group (so `ip netns exec` and its node child die together). */
export function start(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; owner?: Owner } = {},
): Proc {
  const proc = spawn(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: { ...process.env, ...options.env },
  });
  live.add(proc);
  options.owner?.add(proc);
  const lines: LogLine[] = [];
  const listeners = new Set<(line: LogLine) => void>();
  let out = '';
  let err = '';
  let pending = '';
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    pending += chunk;
    let nl = pending.indexOf('\n');
    while (nl !== -1) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
      try {
        const line = JSON.parse(text) as LogLine;
        lines.push(line);
        for (const f of listeners) f(line);
      } catch {
        // Not a log line (demo and --once print text).
      }
    }
  });
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('close', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  const waitForLine = (pred: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        listeners.delete(onLine);
      };
      const onLine = (line: LogLine) => {
        if (pred(line)) {
          done();
          resolve(line);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`no matching line within ${timeoutMs} ms; last lines:\n${out.split('\n').slice(-6).join('\n')}`),
        );
      }, timeoutMs);
      listeners.add(onLine);
      void exited.then((e) => {
        if (!listeners.has(onLine)) return;
        done();
        reject(new Error(`exited (${e.code ?? e.signal}) before a matching line; stderr: ${err}\n${out.slice(-2000)}`));
      });
    });
  };
  const stop = async (timeoutMs = 5000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(proc), timeoutMs);
    await exited;
    clearTimeout(timer);
  };
  return { proc, lines, stdout: () => out, stderr: () => err, waitForLine, exited, stop };
}

/** Runs a command to its exit (bounded by `timeoutMs`); returns its code and output. */
export async function run(
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string; lines: LogLine[] }> {
  const p = start(command, args, options.env ? { env: options.env } : {});
  const timer = setTimeout(() => killGroup(p.proc), options.timeoutMs ?? 15_000);
  const { code } = await p.exited;
  clearTimeout(timer);
  return { code, stdout: p.stdout(), stderr: p.stderr(), lines: p.lines };
}

/** Starts `node BIN serve ...` (optionally inside a namespace) and resolves with the process and its port. */
export async function startServe(
  args: readonly string[],
  options: { netns?: string; env?: Record<string, string>; owner?: Owner } = {},
): Promise<Proc & { port: number }> {
  const full = [BIN, 'serve', '--log-format', 'json', ...args];
  const p = options.netns
    ? start('ip', ['netns', 'exec', options.netns, process.execPath, ...full], options)
    : start(process.execPath, full, options);
  const ready = await p.waitForLine((l) => l.msg.startsWith('ready:'));
  const endpoint = (ready.endpoints as string[])[0] ?? '';
  return { ...p, port: Number(/:(\d+)$/.exec(endpoint)?.[1]) };
}

/** True when running as root (network namespaces, nft and packet capture need it). */
export const isRoot = process.getuid?.() === 0;

/** True when `command` is on the PATH. */
export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Resolves after `ms`; only where no event can be awaited (a window in which something must NOT happen). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
