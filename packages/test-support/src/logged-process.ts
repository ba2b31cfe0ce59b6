/**
 * A child process whose stdout is read as pino JSON log lines as they come, in its own process group, tracked so
 * that it never outlives the test: `stopAllServices()` (in `afterEach`), `stopOwned(owner)` or the exit of the test
 * process SIGKILLs the whole group (a `--workers` primary and its workers, `ip netns exec` and its node, `prlimit`
 * and what it execs).
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

/** A set of processes one test owns, so that concurrent tests of one file stop only their own. */
export type Owner = Set<ChildProcess>;

/** Options of {@link spawnLogged} and the functions built on it. */
export interface SpawnOptions {
  /** Added to (and overriding) the parent's environment. */
  env?: Record<string, string | undefined>;
  /** Node flags before the entry, e.g. `['--import', hook]` (node entries only). */
  execArgv?: string[];
  /** How long to wait for the ready line (startService) or the exit (runToExit). Default 10 000 ms. */
  timeoutMs?: number;
  /**
   * A command that execs the node entry, e.g. `['prlimit', '--nofile=256:256', '--']` to start it under a limit, or
   * `['ip', 'netns', 'exec', name]` to start it in a network namespace. It must exec (not fork), so that the child's
   * pid is the service's own.
   */
  wrapper?: readonly string[];
  /** Also recorded here, for `stopOwned(owner)`. */
  owner?: Owner;
}

/** A child spawned by {@link spawnLogged}. */
export interface LoggedProcess {
  proc: ChildProcess;
  /** Every stdout line parsed as a JSON object so far (lines that are not are in `rawLines` only). */
  lines: LogLine[];
  /** Every stdout line so far, as text. */
  rawLines: string[];
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /**
   * Resolves with the first line (already seen or future) matching `pred`; rejects after `timeoutMs` (default
   * 10 000) or when the process exits first, with its stderr and last lines in the message.
   */
  waitForLine(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves when the process exited and its output is read to the end. */
  exited: Promise<Exit>;
  /** Sends `signal` to the process itself (not its group), unless it exited already. */
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
export function killGroup(proc: ChildProcess): void {
  try {
    if (proc.pid !== undefined) process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // ESRCH: the whole group is gone already.
  }
}

/**
 * SIGKILLs every process group still running and waits for the leaders' exit (call it in `afterEach`; it takes no
 * argument, so it can be passed as the hook itself, which vitest calls with its test context).
 */
export function stopAllServices(): Promise<void> {
  return stopOwned(live);
}

/**
 * SIGKILLs the process groups of `owner` only (call it in `onTestFinished`, so that concurrent tests of one file stop
 * their own processes, also when the test fails).
 */
export async function stopOwned(owner: Owner): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const proc of [...owner]) {
    if (proc.exitCode === null && proc.signalCode === null) {
      waits.push(new Promise((resolve) => proc.once('close', resolve)));
    }
    killGroup(proc);
    live.delete(proc);
    owner.delete(proc);
  }
  await Promise.all(waits);
}

function track(proc: ChildProcess, owner: Owner | undefined): void {
  live.add(proc);
  owner?.add(proc);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const p of live) killGroup(p);
    });
  }
}

/** The last `n` stdout lines, for error messages. */
function tail(rawLines: readonly string[], n = 5): string {
  return rawLines.slice(-n).join('\n');
}

/** Spawns `command args` in its own process group and parses its stdout as JSON log lines. */
export function spawnLogged(command: string, args: readonly string[], options: SpawnOptions = {}): LoggedProcess {
  const proc = spawn(command, args, {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: stopAllServices() kills workers with their primary, and a Ctrl-C at the terminal
    // running the tests does not reach the service before the test's own signals do.
    detached: true,
  });
  track(proc, options.owner);
  const lines: LogLine[] = [];
  const rawLines: string[] = [];
  const onLine = new Set<(line: LogLine) => void>();
  let stdout = '';
  let stderr = '';
  let pending = '';
  proc.stdout?.setEncoding('utf8');
  proc.stderr?.setEncoding('utf8');
  proc.stdout?.on('data', (chunk: string) => {
    stdout += chunk;
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
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) line = parsed as LogLine;
      } catch {
        // Not JSON (help text, a demo's table): kept in rawLines.
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
    // 'close', not 'exit': the last lines are read by then.
    proc.once('close', (code, signal) => {
      if (pending !== '') rawLines.push(pending);
      live.delete(proc);
      options.owner?.delete(proc);
      // Workers of a primary that died abruptly must not outlive it.
      killGroup(proc);
      resolve({ code, signal });
    });
  });
  const waitForLine = (pred: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        onLine.delete(listener);
      };
      const listener = (line: LogLine) => {
        if (!pred(line)) return;
        done();
        resolve(line);
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `no matching log line within ${timeoutMs} ms; stderr: ${stderr.trim()}; last lines:\n${tail(rawLines)}`,
          ),
        );
      }, timeoutMs);
      onLine.add(listener);
      void exited.then((exit) => {
        if (!onLine.has(listener)) return;
        done();
        reject(
          new Error(
            `process exited (code ${exit.code}, signal ${exit.signal}) before a matching log line; stderr: ${stderr.trim()}; last lines:\n${tail(rawLines)}`,
          ),
        );
      });
    });
  };
  const running = () => proc.exitCode === null && proc.signalCode === null;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<Exit> => {
    if (running()) proc.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          killGroup(proc);
          reject(new Error(`${command} did not exit within ${timeoutMs} ms of ${signal}`));
        }, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  return {
    proc,
    lines,
    rawLines,
    stdout: () => stdout,
    stderr: () => stderr,
    waitForLine,
    exited,
    kill: (signal) => {
      if (running()) proc.kill(signal);
    },
    destroy: () => killGroup(proc),
    stop,
  };
}

/** The command line that runs the node `entry` with `args`, through `options.wrapper` when given. */
export function nodeCommand(entry: string, args: readonly string[], options: SpawnOptions = {}): string[] {
  return [...(options.wrapper ?? []), process.execPath, ...(options.execArgv ?? []), entry, ...args];
}

/** Spawns the node `entry` (a built bin, a fixture) with `args`; see {@link spawnLogged}. */
export function spawnNode(entry: string, args: readonly string[], options: SpawnOptions = {}): LoggedProcess {
  const [command, ...rest] = nodeCommand(entry, args, options);
  return spawnLogged(command as string, rest, options);
}

/** What {@link runToExit} returns: the exit, the output and the JSON lines of stdout. */
export type Finished = Exit & {
  /** stdout's lines joined by `\n`, without the last line's newline (`'hello world'` for `hello world\n`). */
  stdout: string;
  /** stdout exactly as written. */
  rawStdout: string;
  stderr: string;
  lines: LogLine[];
};

/**
 * Runs `command args` to its exit, bounded by `options.timeoutMs` (default 10 000): past it, the group is
 * SIGKILLed and the promise rejects with the stderr so far.
 */
export async function runCommandToExit(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): Promise<Finished> {
  const s = spawnLogged(command, args, options);
  const timeoutMs = options.timeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([
    s.exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        killGroup(s.proc);
        reject(new Error(`${command} ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${s.stderr()}`));
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  return { ...exit, stdout: s.rawLines.join('\n'), rawStdout: s.stdout(), stderr: s.stderr(), lines: s.lines };
}

/** Runs the node `entry` (e.g. `--help`, bad config) to its exit; see {@link runCommandToExit}. */
export function runToExit(entry: string, args: readonly string[], options: SpawnOptions = {}): Promise<Finished> {
  const [command, ...rest] = nodeCommand(entry, args, options);
  return runCommandToExit(command as string, rest, options);
}
