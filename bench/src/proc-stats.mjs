// CPU time and resident memory of a server and all its descendants (cluster workers), read from /proc.
// CPU is utime+stime+cutime+cstime (proc(5), /proc/PID/stat fields 14-17): the c* fields keep the time of
// children that already exited and were waited for, so a worker that dies mid-run is not lost.
import { readdirSync, readFileSync } from 'node:fs';
// The one /proc/PID/stat reader of the repository, with the clock tick from getconf CLK_TCK.
import { clockTicksPerSecond, readProcStat } from '@net/test-support';

function readStat(pid) {
  try {
    const s = readProcStat(Number(pid));
    return { ppid: s.ppid, cpuTicks: s.utime + s.stime + s.cutime + s.cstime };
  } catch {
    return undefined; // the process exited between readdir and read
  }
}

/** The pid and every live descendant of it. */
export function processTree(rootPid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(name);
    if (!stat) continue;
    if (!children.has(stat.ppid)) children.set(stat.ppid, []);
    children.get(stat.ppid).push(Number(name));
  }
  const tree = [rootPid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;
}

/** CPU seconds used so far by the process tree. */
export function treeCpuSeconds(rootPid) {
  let ticks = 0;
  for (const pid of processTree(rootPid)) ticks += readStat(pid)?.cpuTicks ?? 0;
  return ticks / clockTicksPerSecond();
}

/** Resident set size of the process tree, in bytes (VmRSS from /proc/PID/status). */
export function treeRssBytes(rootPid) {
  let kib = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (match) kib += Number(match[1]);
    } catch {
      // exited meanwhile
    }
  }
  return kib * 1024;
}
