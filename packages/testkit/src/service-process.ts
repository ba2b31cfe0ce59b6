/**
 * Spawning a built service bin as a child process on loopback, reading its JSON log lines, waiting for its
 * readiness line, and making sure it never outlives the test: every child is tracked and, on a failure, its whole
 * process group (a `--workers` primary and its workers) is SIGKILLed by `stopAllServices()` or at process exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** One pino JSON log line. */
export interface LogLine {
  level: number;
  msg?: string;
  service?: string;
  instance?: string;
  time?: string;
  err?: { type?: string; message?: string; stack?: string };
  [key: string]: unknown;
}

/** How a child ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of {@link startService} and {@link runToExit}. */
export interface SpawnOptions {
  /** Added to (and overriding) the parent's environment. */
  env?: Record<string, string | undefined>;
  /** Node flags before the bin, e.g. `['--import', hook]`. */
  execArgv?: string[];
  /** How long to wait for the ready line (startService) or the exit (runToExit). Default 10 000 ms. */
  timeoutMs?: number;
  /**
   * A command that execs the service, e.g. `['prlimit', '--nofile=256:256']` to start it under a limit. It must
   * exec (not fork), so that the child's pid is the service's own.
   */
  wrapper?: readonly string[];
}

/** A running service started by {@link startService}. */
export interface ServiceProcess {
  proc: ChildProcess;
  /** Port of the first endpoint of the ready line. */
  port: number;
  /** Every endpoint of the ready line, as the service formatted them. */
  endpoints: string[];
  /** Port of the admin endpoint when `--admin-port` was given. */
  adminPort: number | undefined;
  /** `http://host:port` of the admin endpoint when `--admin-port` was given. */
  adminUrl: string | undefined;
  /** The ready line itself. */
  ready: LogLine;
  /** Every stdout line parsed as JSON so far (lines that are not JSON are in `rawLines` only). */
  lines: LogLine[];
  /** Every stdout line so far, as text. */
  rawLines: string[];
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the first line (already seen or future) matching `pred`; rejects after `timeoutMs` or on exit. */
  waitForLine(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves when the process exits. */
  exited: Promise<Exit>;
  /** Sends `signal` to the process itself (not its group). */
  kill(signal: NodeJS.Signals): void;
  /** SIGKILLs the whole process group at once (cleanup after a failed check). */
  destroy(): void;
  /**
   * Sends `signal` (default SIGTERM) and resolves with the exit; SIGKILLs the process group after `timeoutMs`
   * (default 15 000) and rejects then.
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** SIGKILLs the child's process group; also after the leader exited, as workers of its group may live on. */
function killGroup(proc: ChildProcess): void {
  try {
    if (proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

/** SIGKILLs every service process group still running (call it in `afterEach`). */
export async function stopAllServices(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const proc of live) {
    if (proc.exitCode === null && proc.signalCode === null) {
      waits.push(new Promise((resolve) => proc.once('exit', resolve)));
    }
    killGroup(proc);
  }
  live.clear();
  await Promise.all(waits);
}

function track(proc: ChildProcess): void {
  live.add(proc);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of live) killGroup(p);
    });
  }
}

interface Spawned {
  proc: ChildProcess;
  lines: LogLine[];
  rawLines: string[];
  stderr: () => string;
  exited: Promise<Exit>;
  onLine: Set<(line: LogLine) => void>;
}

function spawnBin(bin: string, args: readonly string[], options: SpawnOptions): Spawned {
  const command = [...(options.wrapper ?? []), process.execPath, ...(options.execArgv ?? []), bin, ...args];
  const proc = spawn(command[0] as string, command.slice(1), {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: stopAllServices() kills workers with their primary, and a Ctrl-C at the terminal
    // running the tests does not reach the service before the test's own signals do.
    detached: true,
  });
  track(proc);
  const lines: LogLine[] = [];
  const rawLines: string[] = [];
  const onLine = new Set<(line: LogLine) => void>();
  let stderr = '';
  let pending = '';
  proc.stdout?.setEncoding('utf8');
  proc.stderr?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    pending += chunk;
    let nl = pending.indexOf('\n');
    while (nl !== -1) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf('\n');
      rawLines.push(text);
      let line: LogLine | undefined;
      try {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed === 'object' && parsed !== null) line = parsed as LogLine;
      } catch {
        // Not JSON: kept in rawLines, where rule 5 finds it.
      }
      if (line) {
        lines.push(line);
        for (const f of onLine) f(line);
      }
    }
  });
  proc.stderr?.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    proc.once('close', (code, signal) => {
      if (pending !== '') rawLines.push(pending);
      live.delete(proc);
      // Workers of a primary that died abruptly must not outlive it.
      killGroup(proc);
      resolve({ code, signal });
    });
  });
  return { proc, lines, rawLines, stderr: () => stderr, exited, onLine };
}

/** Runs a bin to its exit (e.g. `--help`, bad config) and returns its exit and output. */
export async function runToExit(
  bin: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<Exit & { stdout: string; stderr: string; lines: LogLine[] }> {
  const s = spawnBin(bin, args, options);
  const timeoutMs = options.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    s.exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        killGroup(s.proc);
        reject(new Error(`${bin} ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${s.stderr()}`));
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  return { ...exit, stdout: s.rawLines.join('\n'), stderr: s.stderr(), lines: s.lines };
}

/** The port at the end of a formatted endpoint (`127.0.0.1:7`, `[::1]:7`); NaN for a Unix socket. */
export function portOf(endpoint: string): number {
  const m = /:(\d+)$/.exec(endpoint);
  return m ? Number(m[1]) : Number.NaN;
}

/** True for the readiness line of the runtime (`ready: listening on ...`). */
export function isReadyLine(line: LogLine): boolean {
  return typeof line.msg === 'string' && line.msg.startsWith('ready:');
}

/**
 * Starts a bin and resolves once its ready line is logged.
 * @throws when the process exits or `timeoutMs` passes first (the message carries its stderr and last lines).
 */
export async function startService(
  bin: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<ServiceProcess> {
  const s = spawnBin(bin, args, options);
  const waitForLine = (pred: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const seen = s.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        s.onLine.delete(onLine);
      };
      const onLine = (line: LogLine) => {
        if (!pred(line)) return;
        done();
        resolve(line);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(`no matching log line within ${timeoutMs} ms; last lines:\n${s.rawLines.slice(-5).join('\n')}`),
        );
      }, timeoutMs);
      s.onLine.add(onLine);
      s.exited.then((exit) => {
        if (!s.onLine.has(onLine)) return;
        done();
        reject(
          new Error(
            `process exited (code ${exit.code}, signal ${exit.signal}) before a matching log line; stderr: ${s.stderr().trim()}; last lines:\n${s.rawLines.slice(-5).join('\n')}`,
          ),
        );
      });
    });
  };
  let ready: LogLine;
  try {
    ready = await waitForLine(isReadyLine, options.timeoutMs ?? 10_000);
  } catch (err) {
    killGroup(s.proc);
    throw new Error(`${bin} ${args.join(' ')} did not become ready: ${(err as Error).message}`);
  }
  const endpoints = Array.isArray(ready.endpoints) ? (ready.endpoints as string[]) : [];
  const adminUrl = typeof ready.admin === 'string' ? ready.admin : undefined;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> => {
    if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      s.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          killGroup(s.proc);
          reject(new Error(`${bin} did not exit within ${timeoutMs} ms of ${signal}`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  return {
    proc: s.proc,
    port: portOf(endpoints[0] ?? ''),
    endpoints,
    adminPort: adminUrl === undefined ? undefined : portOf(adminUrl),
    adminUrl,
    ready,
    lines: s.lines,
    rawLines: s.rawLines,
    stderr: s.stderr,
    waitForLine,
    exited: s.exited,
    kill: (signal) => {
      if (s.proc.exitCode === null && s.proc.signalCode === null) s.proc.kill(signal);
    },
    stop,
    destroy: () => killGroup(s.proc),
  };
}
