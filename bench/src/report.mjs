// Turns the measured samples into figures (medians, ratios to the reference of the same run) and writes them
// as JSON and as a Markdown table.
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { METRICS } from './scenarios.mjs';

export function machineInfo(pin) {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {}
  return {
    cpu: cpuModel,
    cores: os.availableParallelism?.() ?? os.cpus().length,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    date: new Date().toISOString(),
    loadavg_at_start: os.loadavg().map((x) => Number(x.toFixed(2))),
    pin,
  };
}

export function median(values) {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** What makes a single run untrustworthy, as short phrases (empty when clean). */
export function problemsOf(run, mode) {
  if (run.failed) return [run.failed];
  const problems = [];
  if (run.verify_failures > 0) problems.push(`${run.verify_failures} verify failures`);
  if (run.stalled > 0) problems.push(`${run.stalled} stalled`);
  if (run.setup_failed > 0) problems.push(`${run.setup_failed} connections not opened`);
  if (run.errors > 0) problems.push(`${run.errors} errors`);
  if (run.total_msgs === 0) problems.push('no answer at all');
  if (run.rate_held === false)
    problems.push(`held ${Math.round(run.msgs_per_s)} of the ${Math.round(run.offered_per_s)}/s offered`);
  if (mode === 'udp-pingpong' && run.lost > 0.01 * (run.total_msgs + run.lost))
    problems.push(`${run.lost} datagrams lost`);
  return problems;
}

/** Median figure, CPU per message and p99 per target, and each one's ratio to the reference. */
export function summarize(scenario, samplesByTarget, targets) {
  const metric = scenario.metric;
  const rows = targets.map((target) => {
    if (target.missing) return { id: target.id, label: target.label, role: target.role, skipped: target.missing };
    const runs = samplesByTarget.get(target.id) ?? [];
    return {
      id: target.id,
      label: target.label,
      role: target.role,
      value: median(runs.map((r) => (metric === 'rss_per_conn' ? r.rss_per_conn / 1024 : r[metric]))),
      cpu_us_per_msg: median(runs.map((r) => r.server_cpu_us_per_msg)),
      p99_us: median(runs.map((r) => r.lat_us?.p99)),
      generator_busy: median(runs.map((r) => r.generator_busy)),
      generator_cpu_share: median(runs.map((r) => r.generator_cpu_share)),
      generator_saturated_runs: runs.filter((r) => r.generator_saturated).length,
      offered_per_s: median(runs.map((r) => r.offered_per_s)),
      rate_not_held_runs: runs.filter((r) => r.rate_held === false).length,
      problems: [...new Set(runs.flatMap((r) => problemsOf(r, scenario.mode)))],
      notes: [...new Set(runs.flatMap((r) => r.notes ?? []))],
      runs,
    };
  });
  // Ratios pair run i of a target with run i of the reference (the same round, minutes apart at most) and take
  // the median of those: on a shared machine the load drifts between rounds more than within one.
  const ref = rows[0];
  const figure = (r) => (metric === 'rss_per_conn' ? r.rss_per_conn : r[metric]);
  const pairedRatio = (runs, pick) =>
    median(runs.map((r, i) => (ref.runs?.[i] && pick(ref.runs[i]) > 0 ? pick(r) / pick(ref.runs[i]) : undefined)));
  for (const row of rows.slice(1)) {
    if (row.skipped) continue;
    row.ratio = pairedRatio(row.runs, figure);
    row.cpu_ratio = pairedRatio(row.runs, (r) => r.server_cpu_us_per_msg);
  }
  return {
    id: scenario.id,
    title: scenario.title,
    // Rate-matched (churn, daytime, ping-pong x500): every target was offered the same rate of connections or
    // messages; the figure to compare is the server CPU per connection or message, the rates' ratio is 1 by design
    // when both held it.
    offered_per_s: ref.offered_per_s,
    metric,
    unit: scenario.unit ?? METRICS[metric].unit,
    higher_is_better: METRICS[metric].higherIsBetter,
    pin: scenario.pinUsed,
    rows,
  };
}

function fmt(value, unit) {
  if (value === undefined || value === null) return '–';
  if (unit === 'KiB/conn') return `${value.toFixed(1)} ${unit}`;
  if (unit === 'MB/s') return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
  if (value >= 10000) return `${(value / 1000).toFixed(1)}k ${unit}`;
  return `${Math.round(value).toLocaleString('en-US')} ${unit}`;
}
const num = (v, digits = 1) => (v === undefined || v === null ? '–' : v.toFixed(digits));

export function renderMarkdown(report) {
  const m = report.machine;
  const lines = [
    `# Benchmark results (${report.mode})`,
    '',
    `- Date: ${m.date}; run took ${Math.round(report.elapsed_s)} s`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.kernel}, Node ${m.node}; load average (1/5/15 min) at start ${m.loadavg_at_start.join(' ')}, at end ${report.loadavg_at_end.join(' ')}`,
    ...(Math.max(m.loadavg_at_start[0], report.loadavg_at_end[0]) > m.cores
      ? [
          '- **The machine was busy with other work during this run: throughput figures and their ratios are noisy; server CPU per message is the figure to trust.**',
        ]
      : []),
    `- Pinning: ${report.pin_description}`,
    `- Method: ${report.runs} run(s) per figure (median), ${report.duration_s} s measured after ${report.warmup_s} s warmup; targets of a scenario take turns within each run; ratio = target / reference of the same run`,
    '- Server CPU: utime+stime of the server and its children (/proc/PID/stat) over the whole loadgen run, divided by every message it completed (stream: per 64 KiB chunk; churn and daytime: per connection)',
    '',
    `- Generator: ${report.generators ?? 1} process(es) per measurement on the generator's cores; "Generator busy %" is, of the time the generator had a core, the share it worked instead of waiting for the server (schedstat); 90 % or more while the server used less than 90 % of a core: saturated, the figure is a lower bound`,
    ...(report.scenarios.some((s) => s.offered_per_s)
      ? [
          '- Rate-matched scenarios ("offered"): the generator opens connections (churn, daytime) or sends messages (ping-pong x500) open loop at the same rate for the reference and every target (`loadgen -r`), below what it sustains alone; their figure is the server CPU per connection or message at that rate (CPU ratio). A run that completed less than 97 % of the offered rate is flagged ("held N of the M/s offered"): the server fell behind, or, with the generator busy 90 % or more, the generator did',
        ]
      : []),
    ...(report.invalid?.length
      ? [
          '',
          `**INVALID RUN: the generator was saturated driving the reference in: ${report.invalid.join('; ')}. Those scenarios' ratios are not measurements of the targets.**`,
        ]
      : []),
    '',
    '| Scenario | Target | Reference (C) | Target figure | Ratio | Server CPU µs/msg (ref / target) | CPU ratio | p99 µs (ref / target) | Generator busy % (ref / target) | Checks |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of report.scenarios) {
    const [ref, ...others] = s.rows;
    const refProblems = ref.problems?.length ? ` (reference: ${ref.problems.join(', ')})` : '';
    for (const row of others) {
      const title = s.offered_per_s ? `${s.title}, ${fmt(s.offered_per_s, s.unit)} offered` : s.title;
      if (row.skipped) {
        lines.push(`| ${title} | ${row.label} | ${fmt(ref.value, s.unit)} | ${row.skipped} | | | | | | |`);
        continue;
      }
      const ratio = row.ratio === undefined ? '–' : `${row.ratio.toFixed(2)}x${s.higher_is_better ? '' : ' (memory)'}`;
      const saturated = row.generator_saturated_runs
        ? [`generator saturated in ${row.generator_saturated_runs} run(s): a lower bound`]
        : [];
      const checks = [([...row.problems, ...saturated].join(', ') || 'ok') + refProblems, ...row.notes].join('; ');
      const pct = (v) => (v === undefined ? '–' : (v * 100).toFixed(0));
      lines.push(
        `| ${title} | ${row.label} | ${fmt(ref.value, s.unit)} | ${fmt(row.value, s.unit)} | ${ratio} | ` +
          `${num(ref.cpu_us_per_msg)} / ${num(row.cpu_us_per_msg)} | ${row.cpu_ratio === undefined ? '–' : `${row.cpu_ratio.toFixed(2)}x`} | ` +
          `${num(ref.p99_us, 0)} / ${num(row.p99_us, 0)} | ${pct(ref.generator_busy)} / ${pct(row.generator_busy)} | ${checks} |`,
      );
    }
  }
  lines.push('', '## Is the load generator the limit?', '', ...report.generator_notes.map((n) => `- ${n}`), '');
  if (report.skipped.length) lines.push('## Not measured', '', ...report.skipped.map((n) => `- ${n}`), '');
  return lines.join('\n');
}

/**
 * The generator is not what limits a target's figure when the same generator, in the same run, drove the
 * reference faster; its own CPU share (of the one core it runs on) says how close it came to its limit.
 */
export function generatorNotes(scenarios) {
  const notes = [];
  let faster = 0;
  let compared = 0;
  for (const s of scenarios) {
    if (!s.higher_is_better) continue;
    const [ref, ...others] = s.rows;
    for (const row of others) {
      if (row.ratio === undefined) continue;
      compared++;
      if (row.ratio < 1) faster++;
      else if (!s.offered_per_s)
        notes.push(
          `${s.title}: ${row.label} was as fast as or faster than the reference (${row.ratio.toFixed(2)}x): this figure may be limited by the generator or by the loopback`,
        );
    }
    if (ref.rate_not_held_runs > 0) {
      notes.push(
        `${s.title}: the reference did not hold the ${fmt(s.offered_per_s, s.unit)} offered in ${ref.rate_not_held_runs} run(s): the ratios are not valid`,
      );
    }
    if (ref.generator_saturated_runs > 0) {
      notes.push(
        `${s.title}: the generator was saturated (busy ${(ref.generator_busy * 100).toFixed(0)}% of the window, median) driving the reference in ${ref.generator_saturated_runs} run(s): the reference figure is a lower bound and the ratios are not valid`,
      );
    }
  }
  notes.unshift(
    `The same generator drove the C reference faster than the target in ${faster} of ${compared} throughput comparisons; each of those target figures is below what the generator demonstrably sustains.`,
  );
  return notes;
}

/**
 * Scenarios whose reference was driven by a saturated generator, or (rate-matched) did not hold the offered rate,
 * in any round: their ratios are not valid.
 */
export function saturatedScenarios(scenarios) {
  return scenarios
    .filter((s) => s.rows[0]?.generator_saturated_runs > 0 || s.rows[0]?.rate_not_held_runs > 0)
    .map((s) => s.title);
}

export function writeReport(report, jsonPath, mdPath) {
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`);
  if (mdPath) writeFileSync(mdPath, `${renderMarkdown(report)}\n`);
}
