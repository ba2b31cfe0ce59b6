// Runs the C load generator once and returns its JSON line, plus the server's CPU time over the run.
import { join } from 'node:path';
import { BUILD_DIR } from './build.mjs';
import { treeCpuSeconds, treeRssBytes } from './proc-stats.mjs';
import { startProcess, stopProcess } from './processes.mjs';

export const FLAGS = {
  conns: '-c',
  size: '-s',
  duration: '-d',
  warmup: '-w',
  threads: '-t',
  inflight: '-k',
  sources: '-b',
  lossMs: '-L',
  hold: '-H',
  maxNew: '-n',
};

/** Options that are switches: present or not. */
export const SWITCHES = {
  // Close with FIN and read the echo to EOF (churn in --check: tests the half-close).
  fin: '-F',
  // Every connection starts with a PROXY protocol v2 header (for a service's PROXY listener).
  proxy: '-P',
};

export function loadgenArgs(mode, port, options) {
  const args = [mode, '-a', '127.0.0.1', '-p', String(port)];
  for (const [key, flag] of Object.entries(FLAGS))
    if (options[key] !== undefined) args.push(flag, String(options[key]));
  for (const [key, flag] of Object.entries(SWITCHES)) if (options[key] === true) args.push(flag);
  return args;
}

function spawnLoadgen(mode, port, options, cpus) {
  const bin = join(BUILD_DIR, 'loadgen');
  const args = loadgenArgs(mode, port, options);
  const stdio = ['pipe', 'pipe', 'pipe'];
  return cpus ? startProcess('taskset', ['-c', cpus, bin, ...args], { stdio }) : startProcess(bin, args, { stdio });
}

function collect(stream) {
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    text += chunk;
  });
  return () => text;
}

/**
 * One timed run. `serverPid` (optional) is sampled before and after: the server's CPU seconds over the whole
 * loadgen run (setup, warmup, measurement and drain) divided by every message the loadgen completed is the
 * server CPU per message.
 */
export async function runLoadgen({ mode, port, options, cpus, serverPid }) {
  const cpuBefore = serverPid ? treeCpuSeconds(serverPid) : 0;
  const child = spawnLoadgen(mode, port, options, cpus);
  child.stdin.end();
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  const limitMs = ((options.duration ?? 5) + (options.warmup ?? 1) + 45) * 1000; // setup may take 30 s
  const timer = setTimeout(() => stopProcess(child), limitMs);
  const { code, signal } = await child.exited;
  clearTimeout(timer);
  const serverCpuS = serverPid ? treeCpuSeconds(serverPid) - cpuBefore : undefined;
  const result = parseResult(stdout(), stderr(), code, signal);
  result.server_cpu_s = serverCpuS;
  if (serverCpuS !== undefined && result.total_msgs > 0)
    result.server_cpu_us_per_msg = (serverCpuS * 1e6) / result.total_msgs;
  return result;
}

/**
 * Opens `conns` idle connections (each echoed 64 B once) and returns how much the server's RSS grew per
 * connection. The loadgen holds them until its stdin closes.
 */
export async function runIdle({ port, conns, sources, cpus, serverPid, settleMs = 500 }) {
  const rssBefore = treeRssBytes(serverPid);
  const child = spawnLoadgen('idle', port, { conns, sources, hold: 120 }, cpus);
  const stderr = collect(child.stderr);
  child.stdout.setEncoding('utf8');
  let line = '';
  const timer = setTimeout(() => stopProcess(child), 60_000);
  try {
    for await (const chunk of child.stdout) {
      line += chunk;
      if (line.includes('\n')) break;
    }
    // Let the server finish whatever its accept path defers (Node allocates on the first read) before sampling.
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const rssAfter = treeRssBytes(serverPid);
    child.stdin.end();
    const { code, signal } = await child.exited;
    const result = parseResult(line, stderr(), code, signal);
    result.rss_before = rssBefore;
    result.rss_after = rssAfter;
    if (result.opened > 0) result.rss_per_conn = (rssAfter - rssBefore) / result.opened;
    return result;
  } finally {
    clearTimeout(timer);
    await stopProcess(child);
  }
}

function parseResult(stdout, stderr, code, signal) {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) {
    return {
      failed: `loadgen printed no result (exit ${code ?? signal}): ${stderr.trim().slice(-500)}`,
      exit_code: code,
    };
  }
  const result = JSON.parse(line);
  result.exit_code = code;
  return result;
}
