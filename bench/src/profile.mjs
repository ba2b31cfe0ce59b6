#!/usr/bin/env node
// pnpm bench:profile -- --target echo-tcp --scenario tcp-churn [--seconds 3] [--out-dir DIR]
//
// "Profile before you optimise", reproducibly: starts one service target of the bench under `node --cpu-prof`,
// pinned as the bench pins it, drives it with one scenario's load for --seconds, stops it with SIGTERM (the service
// drains and exits, which writes the profile), and prints the functions with the most self time. The .cpuprofile
// opens in Chrome DevTools or speedscope for a flame graph. Exit code: 1 when nothing was profiled, 2 on bad usage.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BUILD_DIR, buildAll } from './build.mjs';
import { runLoadgen } from './loadgen.mjs';
import { killAllOnExit } from './processes.mjs';
import { SCENARIOS } from './scenarios.mjs';
import { startServer, stopServer, TARGETS } from './servers.mjs';

/** Self time per function (name, file, line), in percent of all samples, the idle ones left out. */
export function topSelfTime(profile, count = 25) {
  const sampled = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    sampled.set(id, (sampled.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map();
  let busy = 0;
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') continue;
    const time = sampled.get(node.id) ?? 0;
    busy += time;
    const key = `${functionName || '(anonymous)'} ${url.split('/').slice(-2).join('/')}${url ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + time);
  }
  return [...byFunction]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, time]) => ({ name, percent: busy > 0 ? (100 * time) / busy : 0 }));
}

async function main() {
  const { values } = parseArgs({
    args: process.argv.slice(2).filter((a) => a !== '--'),
    options: {
      target: { type: 'string', default: 'echo-tcp' },
      scenario: { type: 'string', default: 'tcp-pingpong-64x50' },
      seconds: { type: 'string', default: '3' },
      'out-dir': { type: 'string', default: join(BUILD_DIR, 'profiles') },
      port: { type: 'string', default: '21040' },
    },
  });
  const target = TARGETS[values.target];
  const scenario = SCENARIOS.find((s) => s.id === values.scenario);
  const seconds = Number(values.seconds);
  const services = Object.keys(TARGETS).filter((id) => TARGETS[id].role === 'service');
  if (target?.role !== 'service' || !scenario || scenario.mode === 'idle' || !(seconds > 0 && seconds <= 60)) {
    console.error(`usage: profile.mjs --target ${services.join('|')} --scenario ID [--seconds 1-60] [--out-dir DIR]`);
    console.error(
      `scenarios: ${SCENARIOS.filter((s) => s.mode !== 'idle')
        .map((s) => s.id)
        .join(', ')}`,
    );
    process.exit(2);
  }
  if (target.missing) {
    console.error(`${target.id}: ${target.missing}`);
    process.exit(1);
  }
  killAllOnExit();
  buildAll();
  const dir = join(values['out-dir'], `${target.id}-${scenario.id}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  // The same command as in the bench, with the profiler's flags right after the node binary.
  const profiled = {
    ...target,
    command: (port) => {
      const [node, ...rest] = target.command(port);
      return [node, '--cpu-prof', `--cpu-prof-dir=${dir}`, ...rest];
    },
  };
  const server = await startServer(profiled, Number(values.port), '0');
  const options = { ...scenario.options, ...target.loadgen, duration: seconds, warmup: 0.5 };
  const result = await runLoadgen({
    mode: scenario.mode,
    port: server.port,
    options,
    cpus: '1',
    serverPid: server.child.pid,
  });
  await stopServer(server);
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) {
    console.error(`no profile written in ${dir} (did the service exit on SIGTERM?); log: ${server.logPath}`);
    process.exit(1);
  }
  const lines = [
    `${target.label} under ${scenario.title}: ${Math.round(result.msgs_per_s ?? 0)} /s, server ${result.server_cpu_us_per_msg?.toFixed(1)} µs per message`,
    'self time, % of the samples where the process was not idle:',
  ];
  for (const file of files) {
    if (files.length > 1) lines.push(file);
    for (const { name, percent } of topSelfTime(JSON.parse(readFileSync(join(dir, file), 'utf8'))))
      lines.push(`${percent.toFixed(1).padStart(6)}  ${name}`);
  }
  lines.push(`profile: ${join(dir, files[0])}`);
  writeFileSync(join(dir, 'top.txt'), `${lines.join('\n')}\n`);
  console.log(lines.join('\n'));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
