/**
 * The monitoring the stack ships, checked with Prometheus's own promtool and against the services themselves:
 * - the Prometheus scrape configuration the compose stack mounts (`--profile monitoring`), cross-checked against the
 *   compose file (every scraped host is a compose service or hostname);
 * - the alert rules (infra/prometheus/alerts.yml): `promtool check rules`, and `promtool test rules` with the fixture
 *   series of alerts.test.yml;
 * - the Grafana dashboard (infra/grafana/dashboards/net.json): every query parses as PromQL;
 * - a real Prometheus (Debian's prometheus) scraping the four services on loopback with these rules: the samples
 *   arrive with the scraper's job and instance and nothing renamed exported_*, every rule evaluates, every
 *   dashboard query runs;
 * - the Kubernetes pods carry the prometheus.io annotations on their admin port;
 * - both use only metric and label names that exist: declared in @net/core's METRICS or served on a service's live
 *   /metrics (the services are started from their dist/ on loopback).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateDirectory } from '../scripts/validate-k8s.mjs';
import { exposedLabels, exposedNames, labelNames, metricNames, withGrafanaVariables } from './promql.js';
import {
  freePort,
  hasCommand,
  infraDir,
  type Managed,
  repoRoot,
  type ServiceProcess,
  startProcess,
  startService,
} from './support.js';

const config = join(infraDir, 'prometheus', 'prometheus.yml');
const havePromtool = hasCommand('promtool');

describe('Prometheus scrape configuration', () => {
  it.skipIf(!havePromtool)('is accepted by promtool check config', () => {
    const r = spawnSync('promtool', ['check', 'config', config], { encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it.skipIf(!havePromtool)('fails promtool when broken, so the check above can fail', () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-prom-'));
    try {
      copyFileSync(config, join(dir, 'ok.yml'));
      writeFileSync(
        join(dir, 'bad.yml'),
        readFileSync(config, 'utf8').replace('scrape_interval: 15s', 'scrape_interval: 15 s'),
      );
      const r = spawnSync('promtool', ['check', 'config', join(dir, 'bad.yml')], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('scrapes port 8080 of hosts that the compose file defines', () => {
    const text = readFileSync(config, 'utf8');
    const compose = readFileSync(join(infraDir, 'compose', 'compose.yaml'), 'utf8');
    const hosts = [...text.matchAll(/["']([a-z0-9-]+):(\d+)["']/g)].map((m) => [m[1], m[2]]);
    for (const m of text.matchAll(/names: \[([a-z0-9-]+)\]/g)) hosts.push([m[1], '8080']);
    expect(hosts.length).toBeGreaterThanOrEqual(4);
    for (const [host, port] of hosts) {
      expect(port, host).toBe('8080');
      expect(compose, `${host} is not a compose service or hostname`).toMatch(
        new RegExp(`^  ${host}:$|hostname: ${host}$`, 'm'),
      );
    }
  });
});

const alerts = join(infraDir, 'prometheus', 'alerts.yml');
const alertTests = join(infraDir, 'prometheus', 'alerts.test.yml');
const dashboardFile = join(infraDir, 'grafana', 'dashboards', 'net.json');

function promtool(args: string[], cwd?: string) {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000, ...(cwd ? { cwd } : {}) });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** The `expr` of every rule in a rule file (each on one line, or a folded `>-` block). */
function ruleExpressions(yaml: string): string[] {
  const exprs: string[] = [];
  const lines = yaml.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)expr: (.*)$/.exec(lines[i] as string);
    if (!m) continue;
    if (m[2] !== '>-' && m[2] !== '|') {
      exprs.push(m[2] as string);
      continue;
    }
    const block: string[] = [];
    while (i + 1 < lines.length && /^\s*$|^\s{10,}\S/.test(lines[i + 1] as string))
      block.push((lines[++i] as string).trim());
    exprs.push(block.join(' ').trim());
  }
  return exprs;
}

interface Dashboard {
  uid: string;
  title: string;
  panels: {
    id: number;
    type: string;
    title: string;
    datasource?: { type: string; uid: string };
    targets?: { refId: string; expr: string; datasource?: { uid: string } }[];
  }[];
  templating: { list: { name: string; type: string; query?: string | { query: string } }[] };
}

function loadDashboard(text = readFileSync(dashboardFile, 'utf8')): Dashboard {
  return JSON.parse(text) as Dashboard;
}

/** Every PromQL expression of a dashboard: its panels' targets and its query variables (`label_values(expr, label)`). */
function dashboardExpressions(d: Dashboard): { where: string; expr: string; labels: string[] }[] {
  const out: { where: string; expr: string; labels: string[] }[] = [];
  for (const p of d.panels) {
    for (const t of p.targets ?? []) out.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr, labels: [] });
  }
  for (const v of d.templating.list) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
    const m = /^label_values\((.*),\s*(\w+)\)$/.exec(q);
    expect(m, `variable ${v.name}: expected label_values(expr, label), got ${q}`).not.toBeNull();
    out.push({ where: `variable ${v.name}`, expr: m?.[1] as string, labels: [m?.[2] as string] });
  }
  return out;
}

describe('Prometheus alert rules', () => {
  it.skipIf(!havePromtool)('are accepted by promtool check rules', () => {
    const r = promtool(['check', 'rules', alerts]);
    expect(r.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(r.status).toBe(0);
  });

  it.skipIf(!havePromtool)('fire and stay quiet as their fixture series expect (promtool test rules)', () => {
    const r = promtool(['test', 'rules', alertTests], join(infraDir, 'prometheus'));
    expect(r.output).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it.skipIf(!havePromtool)('fail their unit tests when a threshold is changed, so the check above can fail', () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-alerts-'));
    try {
      copyFileSync(alertTests, join(dir, 'alerts.test.yml'));
      const text = readFileSync(alerts, 'utf8');
      expect(text).toContain('> 0.05');
      writeFileSync(join(dir, 'alerts.yml'), text.replace('> 0.05', '> 0.5'));
      const r = promtool(['test', 'rules', 'alerts.test.yml'], dir);
      expect(r.status).not.toBe(0);
      expect(r.output).toMatch(/FAILED[\s\S]*NetDatagramsDropped/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('are loaded by prometheus.yml and mounted next to it by the compose monitoring profile', () => {
    expect(readFileSync(config, 'utf8')).toMatch(/^rule_files:\n\s+- alerts\.yml$/m);
    const compose = readFileSync(join(infraDir, 'compose', 'compose.yaml'), 'utf8');
    expect(compose).toContain('- ../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
  });
});

describe('Grafana dashboard', () => {
  it('is one dashboard Grafana can import: a uid, unique panel ids, every query on the datasource variable', () => {
    const d = loadDashboard();
    expect(d.uid).toBe('net-services');
    const ids = d.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(d.templating.list.find((v) => v.name === 'datasource')?.type).toBe('datasource');
    const graphs = d.panels.filter((p) => p.type !== 'row');
    // Grafana's variable syntax, not a template literal: the datasource is chosen at import.
    const datasourceVariable = ['$', '{datasource}'].join('');
    expect(graphs.length).toBeGreaterThan(15);
    for (const p of graphs) {
      expect(p.datasource?.uid, p.title).toBe(datasourceVariable);
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('shows connections, bytes, errors by code, UDP drops by reason, drain, worker restarts and dead peers', () => {
    const exprs = dashboardExpressions(loadDashboard()).map((e) => e.expr);
    const uses = (pattern: RegExp) => exprs.some((e) => pattern.test(e));
    expect(uses(/net_connections_open/)).toBe(true);
    expect(uses(/net_received_bytes_total/) && uses(/net_sent_bytes_total/)).toBe(true);
    expect(uses(/by \(job, code\) \(rate\(net_errors_total/)).toBe(true);
    expect(uses(/by \(job, reason\) \(rate\(net_datagrams_dropped_total/)).toBe(true);
    expect(uses(/^net_ready\{/)).toBe(true);
    expect(uses(/net_worker_restarts_total/)).toBe(true);
    expect(uses(/net_peers_dead_total/)).toBe(true);
  });

  it.skipIf(!havePromtool)('has only queries that parse as PromQL (promtool check rules on them)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'net-dashboard-'));
    try {
      const exprs = dashboardExpressions(loadDashboard());
      // Each query becomes a recording rule, which promtool parses; Grafana's variables get values first.
      const rules = exprs
        .map(
          (e, i) =>
            `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(withGrafanaVariables(e.expr))}\n`,
        )
        .join('');
      writeFileSync(join(dir, 'dashboard-rules.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules}`);
      const r = promtool(['check', 'rules', join(dir, 'dashboard-rules.yml')]);
      expect(r.output).toContain(`SUCCESS: ${exprs.length} rules found`);
      expect(r.status).toBe(0);
      writeFileSync(
        join(dir, 'broken.yml'),
        `groups:\n  - name: d\n    rules:\n      - record: d:q\n        expr: "sum by (job (up)"\n`,
      );
      expect(promtool(['check', 'rules', join(dir, 'broken.yml')]).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('metric and label names in the dashboard and the alert rules', () => {
  let known: { metrics: Set<string>; labels: Set<string> };
  const started: Array<Managed | ServiceProcess> = [];

  beforeAll(async () => {
    // The table every net_* metric is declared in, from core's build (infra does not depend on @net/core).
    const core = (await import(pathToFileURL(join(repoRoot, 'packages', 'core', 'dist', 'index.js')).href)) as {
      METRICS: Record<string, { kind: string; labels: readonly string[] }>;
    };
    const metrics = new Set<string>(['up']); // Prometheus's own, per target
    const labels = new Set<string>(['job', 'instance', 'le']); // the scraper's target labels; histogram buckets
    for (const [name, d] of Object.entries(core.METRICS)) {
      metrics.add(name);
      if (d.kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) metrics.add(`${name}${s}`);
      for (const l of d.labels) labels.add(l);
    }
    // The process metrics come from prom-client: read them where a service serves them.
    const runs: [string, string[]][] = [
      ['echo-tcp', []],
      ['daytime-tcp', ['--udp']],
      ['udp-echo', []],
      ['keepalive-probe', []],
    ];
    for (const [name, args] of runs) {
      const s = await startService(name, ['--host', '127.0.0.1', '--port', '0', '--admin-port', '0', ...args]);
      started.push(s);
      const admin = s.adminUrl as string;
      const res = await fetch(`${admin}/metrics`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      const text = await res.text();
      for (const n of exposedNames(text)) metrics.add(n);
      for (const l of exposedLabels(text)) labels.add(l);
    }
    known = { metrics, labels };
  }, 60_000);

  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });

  /** The metric and label names `sources` use that exist nowhere, as `where: name`. */
  function unknownNames(sources: { where: string; expr: string; labels: string[] }[]): string[] {
    const unknown: string[] = [];
    for (const { where, expr, labels } of sources) {
      for (const n of metricNames(expr)) if (!known.metrics.has(n)) unknown.push(`${where}: metric ${n}`);
      for (const l of [...labelNames(expr), ...labels]) if (!known.labels.has(l)) unknown.push(`${where}: label ${l}`);
    }
    return unknown;
  }

  const ruleSources = () =>
    ruleExpressions(readFileSync(alerts, 'utf8')).map((expr, i) => ({
      where: `alerts.yml rule ${i + 1}`,
      expr,
      labels: [],
    }));

  it('reads metric and label names out of PromQL', () => {
    expect(
      metricNames(
        'sum by (job, reason) (rate(net_datagrams_dropped_total{job=~"$job", reason!="x"}[$__rate_interval])) / on (job, instance) group_left sum by (job, instance) (rate(net_datagrams_received_total[5m])) > 0.05',
      ),
    ).toEqual(['net_datagrams_dropped_total', 'net_datagrams_received_total']);
    expect(metricNames('up == 0 and on (job, instance) max_over_time(net_service_info[1h])')).toEqual([
      'up',
      'net_service_info',
    ]);
    expect(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket[1m]))) > 1e3')).toEqual(['a_bucket']);
    expect(labelNames('sum by (job, code) (rate(x{instance=~"$instance", le="1"}[5m]))')).toEqual([
      'instance',
      'le',
      'job',
      'code',
    ]);
  });

  it('finds every expression: each alert rule and each dashboard query', () => {
    expect(ruleSources().length).toBe((readFileSync(alerts, 'utf8').match(/^\s+- alert: /gm) ?? []).length);
    for (const { expr } of ruleSources()) expect(metricNames(expr).length, expr).toBeGreaterThan(0);
    for (const { where, expr } of dashboardExpressions(loadDashboard()))
      expect(metricNames(expr).length, where).toBeGreaterThan(0);
  });

  it('uses only metrics declared in METRICS or served by a service, and labels they carry', () => {
    expect(unknownNames([...ruleSources(), ...dashboardExpressions(loadDashboard())])).toEqual([]);
  });

  it('reports a misspelled metric or label, so the check above can fail', () => {
    const text = readFileSync(dashboardFile, 'utf8');
    const broken = loadDashboard(
      text.replace('rate(net_errors_total', 'rate(net_error_total').replace('by (job, limit)', 'by (job, limits)'),
    );
    expect(unknownNames(dashboardExpressions(broken))).toEqual([
      'panel "Limits hit" A: label limits',
      'panel "Socket errors by code" A: metric net_error_total',
    ]);
    const rules = readFileSync(alerts, 'utf8').replace('net_peers_dead_total', 'net_peer_dead_total');
    expect(
      unknownNames(ruleExpressions(rules).map((expr, i) => ({ where: `rule ${i + 1}`, expr, labels: [] }))),
    ).toEqual(['rule 8: metric net_peer_dead_total']);
  });
});

describe('Kubernetes scraping', () => {
  // No PodMonitor: it is a Prometheus Operator CRD (monitoring.coreos.com/v1) that kubectl apply -k rejects on a
  // cluster without the operator, and validate-k8s.mjs (kubernetes-models, built-in API groups only) cannot check it.
  it('annotates every pod template for scraping on its admin port, /metrics', async () => {
    const { objects } = await validateDirectory(join(infraDir, 'k8s'));
    const deployments = objects.filter((o) => o.doc.kind === 'Deployment');
    expect(deployments.length).toBe(4);
    for (const { doc } of deployments) {
      const template = doc.spec.template;
      const admin = (template.spec.containers[0].ports as { name: string; containerPort: number }[]).find(
        (p) => p.name === 'admin',
      );
      expect(template.metadata.annotations, doc.metadata.name).toEqual({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(admin?.containerPort),
        'prometheus.io/path': '/metrics',
      });
    }
  });
});

describe('a real Prometheus scraping the services with these rules', () => {
  const haveProm = hasCommand('prometheus');
  const started: Array<Managed | ServiceProcess> = [];
  let dir = '';
  let api = '';
  /** Job name -> the admin address Prometheus scrapes. */
  const targets = new Map<string, string>();

  async function query(
    expr: string,
  ): Promise<{ status: string; data: { result: { metric: Record<string, string> }[] } }> {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`, {
      signal: AbortSignal.timeout(10_000),
    });
    return (await res.json()) as { status: string; data: { result: { metric: Record<string, string> }[] } };
  }

  beforeAll(async () => {
    if (!haveProm) return;
    dir = mkdtempSync(join(tmpdir(), 'net-prometheus-'));
    for (const [name, args] of [
      ['echo-tcp', []],
      ['daytime-tcp', ['--udp']],
      ['udp-echo', []],
      ['keepalive-probe', []],
    ] as [string, string[]][]) {
      const s = await startService(name, ['--host', '127.0.0.1', '--port', '0', '--admin-port', '0', ...args]);
      started.push(s);
      targets.set(name, new URL(s.adminUrl as string).host);
    }
    copyFileSync(alerts, join(dir, 'alerts.yml'));
    const jobs = [...targets].map(
      ([job, host]) => `  - job_name: ${job}\n    static_configs:\n      - targets: ["${host}"]\n`,
    );
    writeFileSync(
      join(dir, 'prometheus.yml'),
      `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [alerts.yml]\nscrape_configs:\n${jobs.join('')}`,
    );
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    const prom = startProcess('prometheus', [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
    started.push(prom);
    await prom.waitForLine((l) => l.includes('Server is ready to receive web requests'), 30_000);
    // Every target scraped at least twice (1 s interval): at most 30 s.
    for (let i = 0; i < 60; i++) {
      const up = await query('count(count_over_time(up[1m]) >= 2 and up == 1)');
      if (Number((up.data.result[0] as unknown as { value?: [number, string] })?.value?.[1]) === targets.size) break;
      await sleep(500);
    }
  }, 90_000);

  afterAll(async () => {
    await Promise.all(started.map((s) => s.stop()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(!haveProm)(
    "stores each service under the scraper's job and instance, with nothing renamed exported_*",
    async () => {
      const info = await query('net_service_info');
      expect(info.status).toBe('success');
      const seen = info.data.result.map((r) => r.metric).sort((a, b) => String(a.job).localeCompare(String(b.job)));
      expect(seen.map((m) => [m.job, m.instance, m.service_name])).toEqual(
        [...targets].sort(([a], [b]) => a.localeCompare(b)).map(([job, host]) => [job, host, job]),
      );
      for (const m of seen)
        expect(
          Object.keys(m).filter((k) => k.startsWith('exported_')),
          m.job,
        ).toEqual([]);
      const renamed = await query('{__name__=~".+", exported_instance=~".+"} or {__name__=~".+", exported_job=~".+"}');
      expect(renamed.data.result).toEqual([]);
    },
  );

  it.skipIf(!haveProm)('evaluates every alert rule without an error, and none fires on healthy services', async () => {
    let rules: { name: string; health: string; lastError?: string; state: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${api}/api/v1/rules`, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json()) as { data: { groups: { rules: typeof rules }[] } };
      rules = body.data.groups.flatMap((g) => g.rules);
      if (rules.length > 0 && rules.every((r) => r.health !== 'unknown')) break;
      await sleep(500);
    }
    expect(rules.length).toBe((readFileSync(alerts, 'utf8').match(/^\s+- alert: /gm) ?? []).length);
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`)).toEqual(
      [],
    );
    expect(rules.filter((r) => r.state !== 'inactive').map((r) => r.name)).toEqual([]);
  });

  it.skipIf(!haveProm)(
    'runs every dashboard query; the instance, readiness and connection panels show the services',
    async () => {
      for (const { where, expr } of dashboardExpressions(loadDashboard())) {
        const r = await query(withGrafanaVariables(expr));
        expect(r.status, where).toBe('success');
      }
      expect(
        (await query(withGrafanaVariables('net_service_info{job=~"$job", instance=~"$instance"}'))).data.result,
      ).toHaveLength(4);
      expect((await query('net_ready == 1')).data.result).toHaveLength(4);
      // TCP services only: udp-echo has no connections.
      expect((await query('sum by (job) (net_connections_open)')).data.result.map((r) => r.metric.job).sort()).toEqual([
        'daytime-tcp',
        'echo-tcp',
        'keepalive-probe',
      ]);
    },
  );
});
