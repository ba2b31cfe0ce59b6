import { spawnSync } from 'node:child_process';
import { AggregatorRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { METRICS, Metrics } from '../src/index.js';

function metrics(options: { processMetrics?: boolean } = {}) {
  return new Metrics({
    service: 'demo',
    instance: 'i-1',
    version: '1.2.3',
    processMetrics: options.processMetrics ?? false,
  });
}

/** The `name{labels} value` sample lines of one metric. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('METRICS, the shared metric contract', () => {
  it('names follow Prometheus conventions: net_ prefix, counters end in _total, base units', () => {
    for (const [name, d] of Object.entries(METRICS)) {
      expect(name).toMatch(/^net_[a-z_]+$/);
      if (d.kind === 'counter') expect(name, name).toMatch(/_total$/);
      else expect(name, name).not.toMatch(/_total$/);
      expect(name).not.toMatch(/_(ms|milliseconds|kb)(_|$)/);
      expect(d.help.length).toBeGreaterThan(10);
    }
  });

  it('never labels by peer address (bounded cardinality)', () => {
    for (const d of Object.values(METRICS)) {
      for (const label of d.labels) expect(label).not.toMatch(/peer|addr|ip|port/);
    }
  });

  it('declares no label that a scraper sets on its targets (it would arrive renamed exported_<label>)', () => {
    // Prometheus: job, instance; the Prometheus Operator: also service, namespace, pod, container, endpoint.
    const targetLabels = ['job', 'instance', 'service', 'namespace', 'pod', 'container', 'endpoint'];
    for (const [name, d] of Object.entries(METRICS)) {
      for (const label of d.labels) expect(targetLabels, `${name} has the label ${label}`).not.toContain(label);
    }
  });
});

describe('Metrics', () => {
  it('renders each used metric with HELP and TYPE and without labels of its own', async () => {
    const m = metrics();
    m.counter('net_connections_total').inc(3);
    m.counter('net_errors_total').inc({ code: 'ECONNRESET' });
    const text = await m.render();
    expect(text).toContain('# HELP net_connections_total Connections accepted');
    expect(text).toContain('# TYPE net_connections_total counter');
    expect(samples(text, 'net_connections_total')).toEqual(['net_connections_total 3']);
    expect(samples(text, 'net_errors_total')).toEqual(['net_errors_total{code="ECONNRESET"} 1']);
  });

  it('carries net_build_info with the version and Node version', async () => {
    const text = await metrics().render();
    expect(samples(text, 'net_build_info')).toEqual([`net_build_info{version="1.2.3",node="${process.version}"} 1`]);
  });

  it('tells the service name, its instance and version once, in net_service_info', async () => {
    const text = await metrics().render();
    expect(samples(text, 'net_service_info')).toEqual([
      'net_service_info{service_name="demo",service_instance_id="i-1",service_version="1.2.3"} 1',
    ]);
    const others = text.split('\n').filter((l) => !l.startsWith('#') && !l.startsWith('net_service_info'));
    expect(others.filter((l) => /i-1|"demo"/.test(l))).toEqual([]);
  });

  it('presets a labelled counter at 0 for every combination of the given values', async () => {
    const m = metrics();
    const rejected = m.preset('net_connections_rejected_total', { reason: ['max_connections', 'pending_queue_full'] });
    expect(rejected).toBe(m.counter('net_connections_rejected_total'));
    rejected.inc({ reason: 'max_connections' });
    expect(samples(await m.render(), 'net_connections_rejected_total')).toEqual([
      'net_connections_rejected_total{reason="max_connections"} 1',
      'net_connections_rejected_total{reason="pending_queue_full"} 0',
    ]);
  });

  it('refuses a preset that names other labels than the declared ones, or no value', () => {
    const m = metrics();
    expect(() => m.preset('net_limit_hits_total', { reason: ['x'] } as unknown as { limit: string[] })).toThrow(
      'metric net_limit_hits_total has the labels [limit]; preset was given [reason]',
    );
    expect(() => m.preset('net_limit_hits_total', { limit: [] })).toThrow(
      'metric net_limit_hits_total: preset needs at least one value of limit',
    );
  });

  it('exposes only the metrics a service used, plus process metrics when asked', async () => {
    const bare = await metrics().render();
    expect(bare).not.toContain('net_connections_open');
    expect(bare).not.toContain('process_cpu_user_seconds_total');
    const full = await metrics({ processMetrics: true }).render();
    expect(full).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(full).toContain('# TYPE nodejs_eventloop_lag_seconds gauge');
  });

  it('drops the process gauges prom-client also names with _total, keeping their suffix-less twins', async () => {
    const full = await metrics({ processMetrics: true }).render();
    for (const name of ['nodejs_active_handles', 'nodejs_active_requests', 'nodejs_active_resources']) {
      expect(full).toContain(`# TYPE ${name} gauge`);
      expect(full).not.toContain(`${name}_total`);
    }
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v promtool'], { stdio: 'ignore' }).status !== 0)(
    'renders text that promtool check metrics accepts (skipped without promtool)',
    async () => {
      const m = metrics({ processMetrics: true });
      m.preset('net_limit_hits_total', { limit: ['idle_timeout'] });
      m.counter('net_errors_total').inc({ code: 'ECONNRESET' });
      m.histogram('net_connection_duration_seconds').observe(0.2);
      const r = spawnSync('promtool', ['check', 'metrics'], { input: await m.render(), encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );

  it('returns the same metric on every call', () => {
    const m = metrics();
    expect(m.counter('net_requests_total')).toBe(m.counter('net_requests_total'));
  });

  it('refuses a metric used as the wrong kind', () => {
    expect(() => metrics().gauge('net_connections_total')).toThrow(
      'metric net_connections_total is a counter, not a gauge',
    );
  });

  it('reads collected counters and gauges from plain numbers at scrape time', async () => {
    const m = metrics();
    let bytes = 0;
    let open = 0;
    m.collect('net_received_bytes_total', () => bytes);
    m.collect('net_connections_open', () => open);
    bytes = 1500;
    open = 2;
    let text = await m.render();
    expect(samples(text, 'net_received_bytes_total')).toEqual(['net_received_bytes_total 1500']);
    expect(samples(text, 'net_connections_open')).toEqual(['net_connections_open 2']);
    bytes = 4000;
    text = await m.render();
    expect(samples(text, 'net_received_bytes_total')).toEqual(['net_received_bytes_total 4000']);
  });

  it('refuses a reader declared after the metric was used, and a histogram reader', () => {
    const m = metrics();
    m.counter('net_sent_bytes_total');
    expect(() => m.collect('net_sent_bytes_total', () => 1)).toThrow(/already registered; declare its reader first/);
    expect(() => m.collect('net_connection_duration_seconds', () => 1)).toThrow(/is a histogram/);
  });

  it('observes histograms with the declared buckets', async () => {
    const m = metrics();
    m.histogram('net_connection_duration_seconds').observe(0.5);
    const text = await m.render();
    expect(text).toContain('net_connection_duration_seconds_bucket{le="1"} 1');
    expect(text).toContain('net_connection_duration_seconds_bucket{le="0.1"} 0');
  });

  it('a plain histogram renders exactly what prom-client renders for the same observations, bounds and beyond', async () => {
    const values = [0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 1, 9.99, 10, 59, 60, 600, 3599, 3600, 3601, 1e6];
    const plain = metrics();
    const reference = metrics();
    const fast = plain.plainHistogram('net_connection_duration_seconds');
    const slow = reference.histogram('net_connection_duration_seconds');
    expect(samples(await plain.render(), 'net_connection_duration_seconds_count')).toEqual([
      'net_connection_duration_seconds_count 0',
    ]);
    for (const v of values) {
      fast.observe(v);
      slow.observe(v);
    }
    const lines = (text: string) => text.split('\n').filter((l) => l.startsWith('net_connection_duration_seconds'));
    expect(lines(await plain.render())).toEqual(lines(await reference.render()));
    expect(lines(await plain.render())).toContain(`net_connection_duration_seconds_count ${values.length}`);
    // Workers' registries aggregate as prom-client's own histograms do.
    const json = await Promise.all([plain, reference].map((w) => w.registry.getMetricsAsJSON()));
    expect(await AggregatorRegistry.aggregate(json).metrics()).toContain(
      `net_connection_duration_seconds_count ${2 * values.length}`,
    );
  });

  it('refuses a plain histogram for a metric that is not an unlabelled histogram, or is registered already', () => {
    const m = metrics();
    expect(() => m.plainHistogram('net_connections_total')).toThrow(/not an unlabelled histogram/);
    m.histogram('net_connection_duration_seconds');
    expect(() => m.plainHistogram('net_connection_duration_seconds')).toThrow(/already registered/);
    const other = metrics();
    other.plainHistogram('net_connection_duration_seconds');
    expect(() => other.histogram('net_connection_duration_seconds')).toThrow(/observed through plainHistogram/);
  });

  it('aggregates across workers: counters sum, net_build_info stays 1', async () => {
    const workers = [metrics(), metrics()];
    workers[0]?.counter('net_connections_total').inc(2);
    workers[1]?.counter('net_connections_total').inc(5);
    const json = await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON()));
    const text = await AggregatorRegistry.aggregate(json).metrics();
    expect(samples(text, 'net_connections_total')).toEqual(['net_connections_total 7']);
    expect(samples(text, 'net_build_info')[0]).toMatch(/ 1$/);
    expect(samples(text, 'net_service_info')).toEqual([
      'net_service_info{service_name="demo",service_instance_id="i-1",service_version="1.2.3"} 1',
    ]);
  });
});
