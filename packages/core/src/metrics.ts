/**
 * The shared metric contract: every metric a service may expose is declared here, once, with its help text,
 * type and fixed label names (never a peer address as a label: cardinality must stay bounded). Services obtain
 * them through `Metrics`, which registers each on first use, so `/metrics` carries only what the service uses,
 * plus Node's standard process metrics.
 */
import client from 'prom-client';

type Kind = 'counter' | 'gauge' | 'histogram';
interface Declared {
  readonly kind: Kind;
  readonly help: string;
  readonly labels: readonly string[];
  readonly buckets?: readonly number[];
  /**
   * How a `--workers` primary combines the workers' values (prom-client aggregators); default `sum`, right for
   * counters and for gauges such as open connections, wrong for a constant such as `net_build_info`.
   */
  readonly aggregator?: 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';
}

/** Every shared metric name, its type, help and labels. Prometheus conventions: base units, `_total` counters. */
export const METRICS = {
  net_ready: { kind: 'gauge', help: '1 when every listener is up and the service is not draining, else 0', labels: [] },
  net_connections_open: { kind: 'gauge', help: 'Connections currently open', labels: [] },
  net_connections_total: { kind: 'counter', help: 'Connections accepted', labels: [] },
  net_connections_rejected_total: {
    kind: 'counter',
    help: 'Connections closed at once because a limit or a policy refused them',
    labels: ['reason'],
  },
  net_connection_duration_seconds: {
    kind: 'histogram',
    help: 'Lifetime of closed connections',
    labels: [],
    buckets: [0.001, 0.01, 0.1, 1, 10, 60, 600, 3600],
  },
  net_limit_hits_total: {
    kind: 'counter',
    help: 'Times a per-connection limit acted (idle timeout, buffered bytes, ...)',
    labels: ['limit'],
  },
  net_received_bytes_total: { kind: 'counter', help: 'Payload bytes received from clients', labels: [] },
  net_sent_bytes_total: { kind: 'counter', help: 'Payload bytes sent to clients', labels: [] },
  net_datagrams_received_total: { kind: 'counter', help: 'Datagrams received', labels: [] },
  net_datagrams_sent_total: { kind: 'counter', help: 'Datagrams sent', labels: [] },
  net_datagrams_dropped_total: { kind: 'counter', help: 'Datagrams dropped without an answer', labels: ['reason'] },
  net_rate_limit_sources: { kind: 'gauge', help: 'Source addresses tracked by the rate limiter', labels: [] },
  net_errors_total: { kind: 'counter', help: 'Errors on client sockets, by error code', labels: ['code'] },
  net_proxy_header_errors_total: {
    kind: 'counter',
    help: 'Connections closed because of their PROXY protocol header',
    labels: ['reason'],
  },
  net_accept_errors_total: { kind: 'counter', help: 'Failed accepts (e.g. EMFILE), by error code', labels: ['code'] },
  net_requests_total: { kind: 'counter', help: 'Protocol answers served (e.g. daytime lines)', labels: [] },
  net_peers_dead_total: { kind: 'counter', help: 'Peers found dead by TCP keepalive or TCP_USER_TIMEOUT', labels: [] },
  net_watch_target_up: { kind: 'gauge', help: '1 when a watched target holds a live connection', labels: ['target'] },
  net_watch_reconnects_total: { kind: 'counter', help: 'Reconnect attempts to watched targets', labels: ['target'] },
  net_worker_restarts_total: { kind: 'counter', help: 'Worker processes restarted after dying', labels: [] },
  net_build_info: {
    kind: 'gauge',
    help: 'Always 1; labels carry the service, version and Node version',
    labels: ['version', 'node'],
    aggregator: 'first',
  },
} as const satisfies Record<string, Declared>;

export type MetricName = keyof typeof METRICS;
type MetricOf<N extends MetricName> = (typeof METRICS)[N]['kind'] extends 'counter'
  ? client.Counter<string>
  : (typeof METRICS)[N]['kind'] extends 'gauge'
    ? client.Gauge<string>
    : client.Histogram<string>;

/** A service's metrics registry: shared metrics on demand, process metrics, `service`/`instance` labels. */
export class Metrics {
  readonly registry: client.Registry;
  readonly #made = new Map<MetricName, client.Metric<string>>();

  constructor(options: {
    service: string;
    instance: string;
    version: string;
    processMetrics?: boolean;
    buildInfo?: boolean;
  }) {
    this.registry = new client.Registry();
    this.registry.setDefaultLabels({ service: options.service, instance: options.instance });
    if (options.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    if (options.buildInfo !== false)
      this.gauge('net_build_info').set({ version: options.version, node: process.version }, 1);
  }

  /** The named counter, registered on first use. */
  counter<N extends MetricName>(name: N): MetricOf<N> & client.Counter<string> {
    return this.#get(name, 'counter') as MetricOf<N> & client.Counter<string>;
  }

  /** The named gauge, registered on first use. */
  gauge<N extends MetricName>(name: N): client.Gauge<string> {
    return this.#get(name, 'gauge') as client.Gauge<string>;
  }

  /** The named histogram, registered on first use. */
  histogram<N extends MetricName>(name: N): client.Histogram<string> {
    return this.#get(name, 'histogram') as client.Histogram<string>;
  }

  /**
   * Declares a metric whose value is read from plain numbers at scrape time, for hot paths: a service counts
   * bytes in a field (one add per chunk) instead of calling prom-client per chunk. prom-client calls `read`
   * on every scrape, also when a cluster primary aggregates its workers' registries.
   * @throws {TypeError} when the metric was already registered without a reader.
   */
  collect(name: MetricName, read: () => number): void {
    if (this.#made.has(name)) throw new TypeError(`metric ${name} is already registered; declare its reader first`);
    const kind = METRICS[name].kind;
    if (kind === 'histogram') throw new TypeError(`metric ${name} is a histogram and cannot be read from a number`);
    this.#get(name, kind, function (this: client.Counter<string> | client.Gauge<string>) {
      const value = read();
      if (this instanceof client.Gauge) this.set(value);
      else {
        this.reset();
        this.inc(value);
      }
    });
  }

  /** The Prometheus text exposition of every registered metric. */
  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #get(name: MetricName, kind: Kind, collect?: () => void): client.Metric<string> {
    const made = this.#made.get(name);
    if (made) return made;
    const d: Declared = METRICS[name];
    if (d.kind !== kind) throw new TypeError(`metric ${name} is a ${d.kind}, not a ${kind}`);
    const config = {
      name,
      help: d.help,
      labelNames: [...d.labels],
      registers: [this.registry],
      ...(collect ? { collect } : {}),
      ...(d.aggregator ? { aggregator: d.aggregator } : {}),
    };
    const metric =
      kind === 'counter'
        ? new client.Counter(config)
        : kind === 'gauge'
          ? new client.Gauge(config)
          : new client.Histogram({ ...config, ...(d.buckets ? { buckets: [...d.buckets] } : {}) });
    this.#made.set(name, metric);
    return metric;
  }
}
