#!/usr/bin/env node
// pnpm bench [-- --quick | --check] [--pin split|same|none] [--unpinned] [--generators N] [--only REGEX]
//            [--runs N] [--rate N] [--port-base N] [--out-dir DIR]
//
// Runs every scenario against the C reference, the Node baseline and each built service in the same run, and
// writes results/latest.{json,md} (--quick: results/latest-quick.*; --check: build/check.json, no timing claims).
// Exit code: 1 when any verify failure or failed run (--check: any stall, error or loss too), 2 on bad usage,
// 3 when the run is invalid because the generator was saturated driving a reference (not in --check).
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DIR, BUILD_DIR, buildAll } from './build.mjs';
import { waitForConntrackRoom } from './conntrack.mjs';
import { runIdle, runLoadgen } from './loadgen.mjs';
import { killAllOnExit } from './processes.mjs';
import { generatorNotes, machineInfo, problemsOf, saturatedScenarios, summarize, writeReport } from './report.mjs';
import { CLOSED_LOOP_SLOTS, SCENARIOS } from './scenarios.mjs';
import { openFilesLimit, prepareNode24, scenarioTargets, startServer, stopServer, TARGETS } from './servers.mjs';

const MODES = {
  full: { runs: 3, duration: 2.5, warmup: 0.5 },
  quick: { runs: 1, duration: 1, warmup: 0.3 },
  check: { runs: 1, duration: 0.3, warmup: 0 },
};

// Fixed ports below the ephemeral range (32768-60999), where other jobs on this machine get their ports.
// The bench uses base..base+39; --check in tests passes another base so both can run at once.
const PORT_SPAN = 40;

function parseCli() {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'), // `pnpm bench -- --quick` passes the `--` on
    options: {
      quick: { type: 'boolean', default: false },
      check: { type: 'boolean', default: false },
      pin: { type: 'string', default: 'split' },
      unpinned: { type: 'boolean', default: false },
      generators: { type: 'string', default: '1' },
      rate: { type: 'string' },
      runs: { type: 'string' },
      only: { type: 'string' },
      'port-base': { type: 'string', default: process.env.NET_BENCH_PORT_BASE ?? '21000' },
      'out-dir': { type: 'string' },
    },
  });
  const mode = values.check ? 'check' : values.quick ? 'quick' : 'full';
  const portBase = Number(values['port-base']);
  const generators = Number(values.generators);
  const rate = values.rate === undefined ? undefined : Number(values.rate);
  const runs = values.runs === undefined ? MODES[mode].runs : Number(values.runs);
  if (
    !(Number.isInteger(runs) && runs >= 1 && runs <= 9) ||
    (rate !== undefined && !(Number.isFinite(rate) && rate >= 0 && rate <= 1e6)) ||
    !['split', 'same', 'none'].includes(values.pin) ||
    !(portBase >= 1024 && portBase + PORT_SPAN < 32768) ||
    !(Number.isInteger(generators) && generators >= 1 && generators <= 8)
  ) {
    console.error(
      'usage: run.mjs [--quick|--check] [--pin split|same|none] [--unpinned] [--generators 1-8] [--only REGEX] [--runs 1-9] [--rate 0-1000000] [--port-base 1024-32727]',
    );
    process.exit(2);
  }
  return {
    mode,
    pin: values.pin,
    unpinned: values.unpinned,
    generators,
    runs,
    rate,
    only: values.only ? new RegExp(values.only) : undefined,
    portBase,
    outDir: values['out-dir'],
  };
}

/** CPU lists for taskset: split puts the server on core 0 and the generator on core 1. */
function cpuSets(pin) {
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  if (pin === 'none')
    return { server: '', loadgen: '', description: 'none (server and generator float over all cores)' };
  if (pin === 'same' || cores < 2)
    return { server: '0', loadgen: '0', description: 'server and generator both on core 0 (taskset -c 0)' };
  return { server: '0', loadgen: '1', description: 'server on core 0, load generator on core 1 (taskset)' };
}

async function main() {
  const cli = parseCli();
  killAllOnExit();
  // --runs: more rounds settle a figure near a target (the median of 5 moves less between runs than that of 3).
  const settings = { ...MODES[cli.mode], runs: cli.runs };
  const pins = cpuSets(cli.pin);
  const started = Date.now();
  buildAll({ log: (msg) => console.log(`build: ${msg}`) });
  // The idle-memory row also runs on Node 24; --check (the test suite's run) takes it only where it is there already.
  if (cli.mode !== 'check' && (!cli.only || cli.only.test('idle-rss')))
    prepareNode24((msg) => console.log(`build: ${msg}`));
  const machine = machineInfo(pins.description);
  console.log(
    `${cli.mode}: ${settings.runs} run(s) x ${settings.duration} s (+${settings.warmup} s warmup); pinning: ${pins.description}`,
  );

  let nextPort = 0;
  const port = () => cli.portBase + (nextPort++ % PORT_SPAN);
  const scenarios = [];
  const skipped = [];
  let failed = false;

  for (const scenario of cli.unpinned ? withUnpinnedTwins(SCENARIOS) : SCENARIOS) {
    if (!scenario.modes.includes(cli.mode) || (cli.only && !cli.only.test(scenario.id))) continue;
    const targets = scenarioTargets(scenario).map((id) => TARGETS[id]);
    for (const t of targets.filter((t) => t.missing)) {
      console.log(`${scenario.id}: ${t.label}: ${t.missing}; skipped`);
      skipped.push(`${scenario.title}: ${t.label}: ${t.missing}`);
    }
    const present = targets.filter((t) => !t.missing);
    if (present.length < 2) {
      console.log(`${scenario.id}: nothing to compare with the reference; skipped`);
      continue;
    }
    const scenarioPins = scenario.pin === 'none' ? cpuSets('none') : pins;
    scenario.pinUsed = scenario.pin === 'none' ? 'none' : cli.pin;
    const options = {
      ...(cli.mode === 'check' && scenario.checkOptions ? scenario.checkOptions : scenario.options),
      // --check: short runs need few connections, so churn can afford FIN closes and test the half-close.
      ...(cli.mode === 'check' && scenario.options.maxNew ? { maxNew: 3000, fin: scenario.mode === 'tcp-churn' } : {}),
      // Rate-matched scenarios: --rate overrides the offered rate (0: closed loop). --check makes no timing claim
      // and runs closed loop.
      ...(scenario.options.rate
        ? rateOptions(scenario, cli.mode === 'check' ? 0 : offeredRate(scenario, cli.rate))
        : {}),
      duration: settings.duration,
      warmup: settings.warmup,
    };
    const samples = new Map(present.map((t) => [t.id, []]));

    for (let run = 0; run < settings.runs; run++) {
      // Fresh servers each run: memory and connection state from the previous run do not leak into this one.
      const servers = [];
      try {
        for (const target of present) {
          try {
            servers.push(await startServer(target, port(), scenarioPins.server));
          } catch (error) {
            // One broken service must not stop the run: its row says why, the others are still measured.
            servers.push({ target, startError: String(error.message).replace(/\s+/g, ' ').slice(0, 300) });
          }
        }
        // Take turns, starting with a different target each run, so slow drift on a shared machine is spread out.
        for (let i = 0; i < servers.length; i++) {
          const server = servers[(i + run) % servers.length];
          const result = server.startError
            ? { failed: `did not start: ${server.startError}` }
            : await measure(scenario, server, options, scenarioPins.loadgen, cli.generators);
          samples.get(server.target.id).push(result);
          const problems = problemsOf(result, scenario.mode);
          if (result.failed || result.verify_failures > 0 || (cli.mode === 'check' && problems.length)) failed = true;
          console.log(
            `${scenario.id} run ${run + 1}/${settings.runs} ${server.target.label}: ${describe(scenario, result, cli.mode)}${problems.length ? ` PROBLEM: ${problems.join(', ')}` : ''}`,
          );
        }
      } finally {
        await Promise.all(servers.filter((s) => s.child).map(stopServer));
      }
    }
    scenarios.push(summarize(scenario, samples, targets));
  }

  const report = {
    mode: cli.mode,
    runs: settings.runs,
    duration_s: settings.duration,
    warmup_s: settings.warmup,
    pin_description: pins.description,
    generators: cli.generators,
    machine,
    elapsed_s: (Date.now() - started) / 1000,
    loadavg_at_end: os.loadavg().map((x) => Number(x.toFixed(2))),
    scenarios,
    skipped,
  };
  report.generator_notes = generatorNotes(scenarios);
  // A reference the generator could not drive flat out makes every ratio of its scenario a guess: say so
  // loudly, and exit 3, rather than publish it (--check makes no timing claims and is exempt).
  report.invalid = cli.mode === 'check' ? [] : saturatedScenarios(scenarios);
  const outDir = cli.outDir ?? (cli.mode === 'check' ? BUILD_DIR : join(BENCH_DIR, 'results'));
  mkdirSync(outDir, { recursive: true });
  // A partial run (--only) must not overwrite the full run's results: it gets files of its own.
  const base = `${cli.mode === 'full' ? 'latest' : cli.mode === 'quick' ? 'latest-quick' : 'check'}${cli.only ? '-only' : ''}`;
  writeReport(report, join(outDir, `${base}.json`), cli.mode === 'check' ? undefined : join(outDir, `${base}.md`));
  console.log(
    `wrote ${join(outDir, base)}.json${cli.mode === 'check' ? '' : ' and .md'} in ${report.elapsed_s.toFixed(0)} s`,
  );
  if (report.invalid.length)
    console.log(`INVALID: the generator was saturated driving the reference in: ${report.invalid.join('; ')}`);
  return failed ? 1 : report.invalid.length ? 3 : 0;
}

/**
 * A rate-matched scenario's generator options: the offered rate, or closed loop (rate 0): churn and daytime with 4 slots,
 * as they ran before they were rate-matched, ping-pong with its connections.
 */
function offeredRate(scenario, cliRate) {
  // --rate N is a connection rate (churn, daytime); --rate 0 (closed loop) is for every rate-matched scenario.
  if (cliRate === 0) return 0;
  return cliRate !== undefined && scenario.mode !== 'tcp-pingpong' ? cliRate : scenario.options.rate;
}

function rateOptions(scenario, rate) {
  if (rate > 0) return { rate };
  // Ping-pong keeps its connections (the messages are what was paced); churn and daytime their 4 slots.
  return scenario.mode === 'tcp-pingpong' ? { rate: undefined } : { rate: undefined, conns: CLOSED_LOOP_SLOTS };
}

/**
 * Users do not pin: with --unpinned every pinned scenario is followed by its twin with server and generator
 * floating over all cores, reported beside it (same targets, same options, fresh servers).
 */
function withUnpinnedTwins(scenarios) {
  return scenarios.flatMap((s) =>
    s.pin === 'none' || s.mode === 'idle'
      ? [s]
      : [s, { ...s, id: `${s.id}@unpinned`, title: `${s.title}, unpinned`, pin: 'none', variant: true }],
  );
}

async function measure(scenario, server, options, loadgenCpus, generators) {
  const need = scenario.mode === 'idle' ? options.conns : (options.maxNew ?? options.conns);
  const room = await waitForConntrackRoom(need, { log: (msg) => console.log(`${scenario.id}: ${msg}`) });
  if (!room.ok) return { failed: `not run: connection-tracking table at ${room.use.count}/${room.use.max} entries` };
  const t0 = Date.now();
  const idleConns = idleConnectionsFor(server, options.conns);
  const result =
    scenario.mode === 'idle'
      ? await runIdle({
          port: server.port,
          conns: idleConns.conns,
          sources: options.sources,
          cpus: loadgenCpus,
          serverPid: server.child.pid,
        })
      : await runLoadgen({
          mode: scenario.mode,
          port: server.port,
          // A target may need the generator to speak differently (a PROXY header first): its own options.
          options: { ...options, ...server.target.loadgen },
          cpus: loadgenCpus,
          serverPid: server.child.pid,
          generators,
        });
  result.elapsed_s = (Date.now() - t0) / 1000;
  if (scenario.mode === 'idle' && idleConns.note) result.notes = [idleConns.note];
  return result;
}

/**
 * How many idle connections a server can hold under its descriptor limit: a server that needs more than one
 * descriptor per connection (the target says how many) gets what fits, 64 descriptors kept for its own use, and
 * the report says so; its figure stays per connection.
 */
function idleConnectionsFor(server, wanted) {
  const per = server.target.descriptorsPerConnection ?? 1;
  const limit = openFilesLimit(server.child.pid);
  if (per === 1 || limit === undefined || wanted * per + 64 <= limit) return { conns: wanted };
  const conns = Math.floor((limit - 64) / per);
  return { conns, note: `${conns} of ${wanted} connections: ${per} descriptors each under a limit of ${limit}` };
}

function describe(scenario, r, mode) {
  if (r.failed) return 'failed';
  const checks = `verify failures ${r.verify_failures}, stalled ${r.stalled}, errors ${r.errors}`;
  if (mode === 'check') return `${r.total_msgs} verified, ${checks}`;
  if (scenario.mode === 'idle')
    return `${r.opened} open, +${((r.rss_per_conn ?? 0) / 1024).toFixed(1)} KiB RSS each, ${checks}`;
  const offered = r.offered_per_s > 0 ? ` of ${Math.round(r.offered_per_s)} /s offered` : '';
  const rate =
    scenario.metric === 'mb_per_s' ? `${r.mb_per_s.toFixed(0)} MB/s` : `${Math.round(r.msgs_per_s)} /s${offered}`;
  const cpu = r.server_cpu_us_per_msg === undefined ? '' : `, server ${r.server_cpu_us_per_msg.toFixed(1)} µs/msg`;
  const p99 = r.lat_us ? `, p99 ${r.lat_us.p99} µs` : '';
  const gen =
    r.generator_busy === undefined
      ? ''
      : `, generator busy ${(r.generator_busy * 100).toFixed(0)}%${r.generator_saturated ? ' (SATURATED)' : ''}`;
  return `${rate}${cpu}${p99}${gen}, ${checks}`;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
