// Runs the C load generator (one process, or several sharing the load) and returns its figures, the server's CPU
// time over the run, and how busy the generator itself was (saturation).
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
  idBase: '-I',
  spinNs: '-X',
  rate: '-r',
};

/**
 * A generator busy this share of the measured window or more is taken to be the limit (the figure is then a
 * lower bound): it hardly ever waited for the server.
 */
export const SATURATED_BUSY = 0.9;

/**
 * Rate-matched churn and daytime (loadgen -r): a run that completed less than this share of the offered rate did
 * not hold it (the server fell behind, or the generator did), and its CPU per connection is not at the rate the
 * others were measured at.
 */
export const RATE_HELD_SHARE = 0.97;

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
export async function runLoadgen({ mode, port, options, cpus, serverPid, generators = 1 }) {
  const cpuBefore = serverPid ? treeCpuSeconds(serverPid) : 0;
  const started = performance.now();
  const parts = splitLoad(options, generators);
  const runs = parts.map(async (part) => {
    const child = spawnLoadgen(mode, port, part, cpus);
    // 'exit' can come before the last of stdout has been read; 'close' comes after the pipes are drained. Without
    // waiting for it a short run's result line was sometimes lost ("printed no result (exit 0)").
    const closed = new Promise((resolve) => child.once('close', resolve));
    child.stdin.end();
    const stdout = collect(child.stdout);
    const stderr = collect(child.stderr);
    const limitMs = ((options.duration ?? 5) + (options.warmup ?? 1) + 45) * 1000; // setup may take 30 s
    const timer = setTimeout(() => stopProcess(child), limitMs);
    const { code, signal } = await child.exited;
    await closed;
    clearTimeout(timer);
    return parseResult(stdout(), stderr(), code, signal);
  });
  const results = await Promise.all(runs);
  const serverCpuS = serverPid ? treeCpuSeconds(serverPid) - cpuBefore : undefined;
  const result = mergeResults(results);
  result.server_cpu_s = serverCpuS;
  if (serverCpuS !== undefined && !result.failed) {
    // The server's share of one core over the whole generator run: a server that used its core flat out set the
    // pace itself, however busy the generator was (both at their limit: the figure is the server's).
    result.server_cpu_share = serverCpuS / ((performance.now() - started) / 1000);
    if (result.generator_saturated && result.server_cpu_share >= SATURATED_BUSY) {
      result.generator_saturated = false;
      result.server_bound = true;
    }
  }
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
    delete result.hist;
    result.rss_before = rssBefore;
    result.rss_after = rssAfter;
    if (result.opened > 0) result.rss_per_conn = (rssAfter - rssBefore) / result.opened;
    return result;
  } finally {
    clearTimeout(timer);
    await stopProcess(child);
  }
}

/**
 * Splits one scenario's load over `generators` processes: connections (or churn slots, or UDP sockets) and the
 * connection budget divided as evenly as they go, each process numbering its connections from its own base so
 * that no two connections carry the same bytes. Never more processes than connections.
 */
export function splitLoad(options, generators) {
  const conns = options.conns ?? 1;
  const n = Math.max(1, Math.min(generators, conns));
  const share = (total, i) => Math.floor((total * (i + 1)) / n) - Math.floor((total * i) / n);
  return Array.from({ length: n }, (_, i) => ({
    ...options,
    conns: share(conns, i),
    ...(options.maxNew !== undefined ? { maxNew: share(options.maxNew, i) } : {}),
    ...(options.rate ? { rate: (options.rate * share(conns, i)) / conns } : {}),
    ...(n > 1 ? { idBase: Math.floor((conns * i) / n) } : {}),
  }));
}

const SUMMED = ['msgs', 'total_msgs', 'errors', 'verify_failures', 'stalled', 'lost', 'late', 'opened', 'setup_failed'];
const SUMMED_FLOAT = ['msgs_per_s', 'mb_per_s', 'loadgen_cpu_s', 'window_cpu_s', 'offered_per_s'];

/**
 * One result for several generator processes: counts and rates summed (each rate over that process's own
 * window; the windows start within milliseconds of each other), latency percentiles from the merged histograms,
 * and how busy the generator was over the measured window:
 * - generator_busy: of the time the generator had a core, the share it spent working rather than blocked in
 *   epoll_wait waiting for the server: time on a core / (window - time runnable but waiting for a core), per
 *   thread, from schedstat; the busiest process counts. Near 1: the generator, not the server, set the pace. Time
 *   spent waiting for a core (other processes on the generator's cores: this machine is shared) is left out, so
 *   outside load does not pass for a slow generator; it is generator_runq_share. The softirq work loopback does on
 *   the sender's core is part of the generator's time on a core here: /proc/stat also shows it as softirq, and
 *   adding that counted it twice (a generator that waited a quarter of the window showed as 100 % busy).
 * - generator_cpu_share: its utime+stime per core it may use, over the window.
 * - rate_held (rate-matched runs only): whether it completed RATE_HELD_SHARE of the offered rate.
 */
export function mergeResults(results) {
  const failed = results.find((r) => r.failed);
  if (failed) return failed;
  const merged = { ...results[0], generators: results.length };
  for (const key of SUMMED) merged[key] = results.reduce((sum, r) => sum + (r[key] ?? 0), 0);
  for (const key of SUMMED_FLOAT) merged[key] = results.reduce((sum, r) => sum + (r[key] ?? 0), 0);
  merged.conns = results.reduce((sum, r) => sum + r.conns, 0);
  merged.exit_code = Math.max(...results.map((r) => r.exit_code ?? 0));
  merged.budget_exhausted = results.some((r) => r.budget_exhausted);
  const mean = (key) => results.reduce((sum, r) => sum + (r[key] ?? 0), 0) / results.length;
  // Every process samples the same cores over (nearly) the same window: their core figures are averaged.
  merged.window_s = mean('window_s');
  merged.run_s = results.reduce((sum, r) => sum + (r.run_s ?? 0), 0);
  merged.runq_s = results.reduce((sum, r) => sum + (r.runq_s ?? 0), 0);
  merged.wait_s = results.reduce((sum, r) => sum + (r.wait_s ?? 0), 0);
  merged.cpuset_idle_s = mean('cpuset_idle_s');
  merged.cpuset_softirq_s = mean('cpuset_softirq_s');
  if (results.length > 1) {
    const hist = new Map();
    for (const r of results)
      for (const [bucket, count] of r.hist ?? []) hist.set(bucket, (hist.get(bucket) ?? 0) + count);
    merged.hist = [...hist].sort((a, b) => a[0] - b[0]);
    const max = Math.max(...results.map((r) => r.lat_max_ns ?? 0));
    merged.lat_us = histPercentiles(merged.hist, max);
  }
  delete merged.hist; // thousands of numbers per run: the percentiles are what the report needs
  const capacity = merged.window_s * (merged.cpuset_cores ?? 0);
  if (capacity > 0) {
    merged.generator_cpu_share = merged.window_cpu_s / capacity;
    merged.generator_cores_busy = 1 - merged.cpuset_idle_s / capacity;
    merged.generator_busy = Math.max(...results.map(busyShare));
    merged.generator_runq_share = Math.max(...results.map((r) => r.runq_s / (r.window_s * r.threads)));
    merged.generator_saturated = merged.generator_busy >= SATURATED_BUSY;
  }
  // Rate-matched: did the pair complete the rate offered? (the window is the budget's when it ran out first)
  if (merged.offered_per_s > 0) merged.rate_held = merged.msgs_per_s >= RATE_HELD_SHARE * merged.offered_per_s;
  return merged;
}

function busyShare(r) {
  const had = Math.max(r.window_s - r.runq_s / r.threads, 0.05 * r.window_s);
  return Math.min(1, r.run_s / r.threads / had);
}

/** The generator's log-linear histogram (loadgen.c: 32 buckets per power of two), bucket midpoints in ns. */
function bucketMid(i) {
  if (i < 32) return i;
  const shift = Math.floor(i / 32) - 1;
  return (32 + (i % 32)) * 2 ** shift + 2 ** shift / 2;
}

export function histPercentiles(hist, maxNs) {
  const count = hist.reduce((sum, [, n]) => sum + n, 0);
  if (count === 0) return null;
  const pct = (p) => {
    const want = Math.min(Math.floor(p * count), count - 1);
    let seen = 0;
    for (const [bucket, n] of hist) {
      seen += n;
      if (seen > want) return bucketMid(bucket);
    }
    return maxNs;
  };
  const us = (ns) => Number((ns / 1e3).toFixed(1));
  return { p50: us(pct(0.5)), p99: us(pct(0.99)), p999: us(pct(0.999)), max: us(maxNs) };
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
