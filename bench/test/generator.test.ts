import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAll } from '../src/build.mjs';
import { histPercentiles, mergeResults, runLoadgen, splitLoad } from '../src/loadgen.mjs';
import { renderMarkdown, saturatedScenarios, summarize } from '../src/report.mjs';
import { CONNECTION_RATE, PINGPONG_RATE, PINGPONG_X50_RATE, SCENARIOS } from '../src/scenarios.mjs';
import { waitForPort } from './support.js';

// A port of its own (below the ephemeral range), apart from the bench's 21000-21039 and check.test.ts's.
const REF_PORT = 21096;

describe('splitting one load over several generator processes', () => {
  it('divides connections and the churn budget exactly, and numbers each process from its own base', () => {
    const parts = splitLoad({ conns: 50, maxNew: 15001, size: 64 }, 3);
    expect(parts.map((p) => p.conns)).toEqual([16, 17, 17]);
    expect(parts.reduce((sum, p) => sum + p.maxNew, 0)).toBe(15001);
    expect(parts.map((p) => p.idBase)).toEqual([0, 16, 33]);
    expect(parts.every((p) => p.size === 64)).toBe(true);
  });

  it("divides a rate-matched load's offered rate in proportion to each process's slots", () => {
    const parts = splitLoad({ conns: 32, rate: 5000, maxNew: 15000 }, 3);
    expect(parts.map((p) => p.conns)).toEqual([10, 11, 11]);
    expect(parts.reduce((sum, p) => sum + p.rate, 0)).toBeCloseTo(5000, 6);
    expect(splitLoad({ conns: 4 }, 2).every((p) => p.rate === undefined)).toBe(true);
  });

  it('never starts more processes than there are connections, and leaves one process unnumbered', () => {
    expect(splitLoad({ conns: 1, inflight: 32 }, 4)).toEqual([{ conns: 1, inflight: 32 }]);
  });
});

describe('the report of a run', () => {
  const scenario = {
    id: 'tcp-pingpong-64x50',
    title: 'TCP ping-pong 64 B x50',
    mode: 'tcp-pingpong',
    metric: 'msgs_per_s',
  };
  const targets = [
    { id: 'c-tcp', label: 'C epoll', role: 'reference' },
    { id: 'echo-tcp', label: 'echo-tcp', role: 'service' },
  ];
  const run = (rate: number, busy: number) => ({
    msgs_per_s: rate,
    total_msgs: rate,
    verify_failures: 0,
    stalled: 0,
    errors: 0,
    generator_busy: busy,
    generator_saturated: busy >= 0.9,
  });
  const report = (refBusy: number) => {
    const samples = new Map([
      ['c-tcp', [run(100_000, refBusy)]],
      ['echo-tcp', [run(80_000, 0.5)]],
    ]);
    const scenarios = [summarize(scenario, samples, targets)];
    return {
      mode: 'full',
      runs: 1,
      duration_s: 2.5,
      warmup_s: 0.5,
      pin_description: 'split',
      generators: 1,
      machine: { date: 'now', cpu: 'cpu', cores: 2, kernel: 'Linux', node: 'v20', loadavg_at_start: [0, 0, 0] },
      elapsed_s: 1,
      loadavg_at_end: [0, 0, 0],
      scenarios,
      skipped: [],
      generator_notes: [],
      invalid: saturatedScenarios(scenarios),
    };
  };

  it('is marked INVALID, naming the scenario, when the generator was saturated driving the reference', () => {
    const bad = report(0.95);
    expect(bad.invalid).toEqual(['TCP ping-pong 64 B x50']);
    expect(renderMarkdown(bad)).toMatch(
      /INVALID RUN: the generator was saturated driving the reference in: TCP ping-pong 64 B x50/,
    );
    const good = report(0.6);
    expect(good.invalid).toEqual([]);
    expect(renderMarkdown(good)).not.toMatch(/INVALID/);
    expect(renderMarkdown(good)).toMatch(/\| 60 \/ 50 \| ok \|$/m);
  });

  it('is marked INVALID when a rate-matched reference did not hold the offered rate, and flags a target that did not', () => {
    const churn = { id: 'tcp-churn', title: 'churn', mode: 'tcp-churn', metric: 'msgs_per_s', unit: 'conn/s' };
    const paced = (rate: number) => ({ ...run(rate, 0.4), offered_per_s: 5000, rate_held: rate >= 0.97 * 5000 });
    const scenarios = (refRate: number, targetRate: number) => [
      summarize(
        churn,
        new Map([
          ['c-tcp', [paced(refRate)]],
          ['echo-tcp', [paced(targetRate)]],
        ]),
        targets,
      ),
    ];
    expect(saturatedScenarios(scenarios(4000, 5000))).toEqual(['churn']);
    const held = scenarios(5000, 3000);
    expect(saturatedScenarios(held)).toEqual([]);
    const md = renderMarkdown({ ...report(0.5), scenarios: held, invalid: [] });
    expect(md).toMatch(/\| churn, 5,000 conn\/s offered \| echo-tcp \|.*held 3000 of the 5000\/s offered/);
    expect(md).toMatch(/Rate-matched scenarios/);
  });
});

/** The C reference on core 0, in its own process group (killed whole afterwards). */
function startRef(bin: string, port: number) {
  return spawn('taskset', ['-c', '0', bin, String(port)], { detached: true, stdio: 'ignore' });
}

// These pin the harness, not the service: whether the generator notices when it, not the server, sets the pace.
// Short (1 s) runs against the C reference, generator on core 1 and server on core 0 as in the bench.
describe('the generator against the C reference', () => {
  let ref: ReturnType<typeof startRef>;
  beforeAll(async () => {
    const bins = buildAll();
    ref = startRef(bins['echo-tcp-ref'], REF_PORT);
    await waitForPort(REF_PORT);
  });
  afterAll(() => {
    if (ref?.pid) process.kill(-ref.pid, 'SIGKILL');
  });

  const pingpong = (extra: Record<string, unknown>, generators = 1) =>
    runLoadgen({
      mode: 'tcp-pingpong',
      port: REF_PORT,
      options: { conns: 50, size: 64, duration: 1, warmup: 0.2, ...extra },
      cpus: '1',
      serverPid: ref.pid,
      generators,
    });

  it('flags itself as saturated when made slower than the server (a 200 µs spin after every answer)', async () => {
    const slow = await pingpong({ spinNs: 200000 });
    expect(slow.verify_failures).toBe(0);
    expect(slow.total_msgs).toBeGreaterThan(0);
    expect(slow.generator_busy, JSON.stringify(slow)).toBeGreaterThan(0.9);
    expect(slow.generator_saturated).toBe(true);
  });

  it('is not flagged when it waits for the server (one connection per process), with one process or two', async () => {
    // One message in flight per connection: every answer is a loopback round trip the generator waits through, so
    // it is busy well under 90 % (about 40 % in the full run of 2026-12-06). At 50 in flight it is not: against
    // this C server it was 91-100 % busy while the server used its core flat out, which the flag rightly does not
    // count as saturation, but which leaves no margin for a test.
    const one = await pingpong({ conns: 1 });
    const two = await pingpong({ conns: 2 }, 2);
    for (const r of [one, two]) {
      expect(r.failed).toBeUndefined();
      expect(r.verify_failures).toBe(0);
      expect(r.stalled).toBe(0);
    }
    expect(one.conns).toBe(1);
    expect(two.conns).toBe(2);
    expect(two.generators).toBe(2);
    const detail = `one process: ${one.msgs_per_s} /s, busy ${one.generator_busy}, server ${one.server_cpu_share}; two: ${two.msgs_per_s} /s, busy ${two.generator_busy}, server ${two.server_cpu_share}`;
    // Busy is measured over the time the generator had its core, so load from other processes on core 1 does
    // not count against it.
    expect(one.generator_busy, detail).toBeLessThan(0.9);
    expect(two.generator_busy, detail).toBeLessThan(0.9);
    expect(one.generator_saturated, detail).toBe(false);
    expect(two.generator_saturated, detail).toBe(false);
  });

  // Rate-matched churn (the bench's churn, PROXY churn, log-level churn and daytime): the generator paces
  // connections open loop; a run that cannot complete the offered rate must say so.
  const churn = (extra: Record<string, unknown>) =>
    runLoadgen({
      mode: 'tcp-churn',
      port: REF_PORT,
      options: { size: 64, conns: 32, sources: 4, maxNew: 15000, duration: 1, warmup: 0.2, ...extra },
      cpus: '1',
      serverPid: ref.pid,
    });

  it("holds the churn scenarios' offered rate against the C reference, well under saturation", async () => {
    const options = SCENARIOS.find((s) => s.id === 'tcp-churn')?.options;
    expect(options?.rate).toBe(CONNECTION_RATE);
    const r = await churn({ conns: options?.conns, rate: CONNECTION_RATE });
    const detail = JSON.stringify({ ...r, hist: undefined });
    expect(r.failed, detail).toBeUndefined();
    expect(r.verify_failures).toBe(0);
    expect(r.offered_per_s).toBe(CONNECTION_RATE);
    // Held unless other jobs kept the generator off its core for a quarter of the window or more (then neither it
    // nor the server could keep any rate, and the bench flags that run; seen at a load average of 14).
    if (r.generator_runq_share < 0.25) expect(r.rate_held, detail).toBe(true);
    // Paced, not as fast as it can go (closed loop: ~18,000/s here); a catch-up after a moment without the core
    // can only start what the schedule owes.
    expect(r.msgs_per_s, detail).toBeLessThan(1.5 * CONNECTION_RATE);
    expect(r.generator_busy, detail).toBeLessThan(0.9);
    expect(r.generator_saturated, detail).toBe(false);
  });

  it('says it did not hold the offered rate when it cannot (a 200 µs spin after every answer: 5,000/s at most)', async () => {
    const r = await churn({ rate: 8000, spinNs: 200000 });
    const detail = JSON.stringify({ ...r, hist: undefined });
    expect(r.verify_failures).toBe(0);
    expect(r.total_msgs, detail).toBeGreaterThan(0);
    expect(r.rate_held, detail).toBe(false);
    expect(r.msgs_per_s, detail).toBeLessThan(0.97 * 8000);
  });

  // Rate-matched ping-pong (x500): messages paced open loop over the open connections, each on one whose echo is
  // back; the bench's x500 rate against C is held well under saturation, and what is sent is still verified.
  it.each([
    ['tcp-pingpong-64x500', PINGPONG_RATE],
    ['tcp-pingpong-64x50-paced', PINGPONG_X50_RATE],
  ])(
    "holds the %s scenario's offered message rate against the C reference, well under saturation",
    async (id, rate) => {
      const options = SCENARIOS.find((s) => s.id === id)?.options;
      expect(options?.rate).toBe(rate);
      const r = await pingpong({ conns: options?.conns, rate });
      const detail = JSON.stringify({ ...r, hist: undefined });
      expect(r.failed, detail).toBeUndefined();
      expect(r.verify_failures).toBe(0);
      expect(r.stalled).toBe(0);
      expect(r.offered_per_s).toBe(rate);
      if (r.generator_runq_share < 0.25) expect(r.rate_held, detail).toBe(true);
      // Paced: closed loop the same connections go well past it (C: 98-137k/s).
      expect(r.msgs_per_s, detail).toBeLessThan(1.5 * rate);
      expect(r.generator_saturated, detail).toBe(false);
    },
  );

  it('says a paced ping-pong did not hold its rate when it cannot (a 200 µs spin after every answer)', async () => {
    const r = await pingpong({ rate: 8000, spinNs: 200000 });
    const detail = JSON.stringify({ ...r, hist: undefined });
    expect(r.verify_failures).toBe(0);
    expect(r.total_msgs, detail).toBeGreaterThan(0);
    expect(r.rate_held, detail).toBe(false);
  });

  it('merges the histograms of several processes into the percentiles one process reports', async () => {
    const result = await runLoadgenRaw();
    const merged = mergeResults([result, { ...result }]);
    expect(merged.msgs).toBe(2 * result.msgs);
    expect(merged.lat_us.p50).toBe(result.lat_us.p50);
    expect(merged.lat_us.p99).toBe(result.lat_us.p99);
    expect(histPercentiles([], 0)).toBeNull();
  });

  /** One generator's raw JSON (histogram included), as mergeResults receives it. */
  async function runLoadgenRaw() {
    const bins = buildAll();
    const child = spawn(bins.loadgen, ['tcp-pingpong', '-p', String(REF_PORT), '-c', '8', '-d', '0.3', '-w', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await new Promise((resolve) => child.on('exit', resolve));
    clearTimeout(timer);
    const result = JSON.parse(out);
    expect(result.hist.length).toBeGreaterThan(0);
    return result;
  }
});
