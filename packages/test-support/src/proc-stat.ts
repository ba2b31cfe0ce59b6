/**
 * CPU time of a process from /proc/PID/stat (proc(5)). Its utime, stime, cutime and cstime are in clock ticks,
 * sysconf(_SC_CLK_TCK): 100 on the usual Linux builds but a kernel setting (USER_HZ) all the same, so it is asked
 * for once (`getconf CLK_TCK`) rather than assumed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

/** Clock ticks per second of /proc/PID/stat times, from `getconf CLK_TCK` (asked once, then cached). */
export function clockTicksPerSecond(): number {
  if (ticksPerSecond === undefined) {
    const text = execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim();
    const ticks = Number(text);
    if (!Number.isInteger(ticks) || ticks <= 0)
      throw new Error(`getconf CLK_TCK printed "${text}": expected a positive integer`);
    ticksPerSecond = ticks;
  }
  return ticksPerSecond;
}

/** The fields of /proc/PID/stat these tests read, times in clock ticks. */
export interface ProcStat {
  /** One of R S D Z T t X I (proc(5) field 3). */
  state: string;
  ppid: number;
  /** Time scheduled in user and kernel mode (fields 14 and 15). */
  utime: number;
  stime: number;
  /** The same for waited-for children that exited (fields 16 and 17). */
  cutime: number;
  cstime: number;
}

/** /proc/PID/stat of `pid`, parsed; throws ENOENT once the process is gone (reaped). */
export function readProcStat(pid: number): ProcStat {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'. fields[0] is
  // field 3 (state), so field N is fields[N - 3].
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const n = (i: number) => Number(fields[i]);
  return { state: fields[0] ?? '', ppid: n(1), utime: n(11), stime: n(12), cutime: n(13), cstime: n(14) };
}

/**
 * User + system CPU seconds `pid` has used so far; with `withChildren`, also those of its children that exited and
 * were waited for (a cluster worker that died mid-run is not lost).
 */
export function cpuSeconds(pid: number, options: { withChildren?: boolean } = {}): number {
  const s = readProcStat(pid);
  const ticks = s.utime + s.stime + (options.withChildren ? s.cutime + s.cstime : 0);
  return ticks / clockTicksPerSecond();
}
