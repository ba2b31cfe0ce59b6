/**
 * The shared metric contract: every metric a service may expose is declared here, once, with its help text,
 * type and fixed label names (never a peer address as a label: cardinality must stay bounded). Services obtain
 * them through `Metrics`, which registers each on first use, so `/metrics` carries only what the service uses,
 * plus Node's standard process metrics.
 *
 * Samples carry no label naming the service or the instance: the scraper owns those. Prometheus attaches `job`
 * and `instance` to every sample of a target and renames an exporter's own `instance` to `exported_instance`
 * (`honor_labels`, https://prometheus.io/docs/prometheus/latest/configuration/configuration/#scrape_config), and
 * the exporter guide asks for target labels, not static labels on every sample
 * (https://prometheus.io/docs/instrumenting/writing_exporters/#target-labels-not-static-scraped-labels). Which
 * service and `--instance` a target is, is told once, by the info metric `net_service_info`, joined in PromQL.
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
    help: 'Always 1; labels carry the version and the Node version',
    labels: ['version', 'node'],
    aggregator: 'first',
  },
  // OpenTelemetry's resource names (service.name, service.instance.id, service.version) in Prometheus spelling:
  // no scraper sets them as target labels (Prometheus sets job and instance; the Prometheus Operator also sets
  // service, namespace, pod, container, endpoint), so they arrive as the service wrote them.
  net_service_info: {
    kind: 'gauge',
    help: 'Always 1; labels carry the service name, its --instance (the instance field of its logs) and version',
    labels: ['service_name', 'service_instance_id', 'service_version'],
    aggregator: 'first',
  },
} as const satisfies Record<string, Declared>;

/**
 * Node process gauges that prom-client 15 exports twice, with and without `_total`. Only counters may end in
 * `_total` (https://prometheus.io/docs/practices/naming/#metric-names), and `promtool check metrics` rejects these
 * ("non-counter metrics should not have "_total" suffix"); the suffix-less twins stay.
 */
const MISNAMED_PROCESS_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;

export type MetricName = keyof typeof METRICS;
type MetricOf<N extends MetricName> = (typeof METRICS)[N]['kind'] extends 'counter'
  ? client.Counter<string>
  : (typeof METRICS)[N]['kind'] extends 'gauge'
    ? client.Gauge<string>
    : client.Histogram<string>;

/** The names of the declared counters. */
export type CounterName = {
  [N in MetricName]: (typeof METRICS)[N]['kind'] extends 'counter' ? N : never;
}[MetricName];
/** The label names of a declared metric. */
export type LabelName<N extends MetricName> = (typeof METRICS)[N]['labels'][number];

/** A service's metrics registry: shared metrics on demand, process metrics, the service's identity. */
export class Metrics {
  readonly registry: client.Registry;
  readonly #made = new Map<MetricName, client.Metric<string>>();
  /** Histograms observed through {@link plainHistogram}: prom-client's observe() on them would be overwritten. */
  readonly #plain = new Set<MetricName>();

  constructor(options: {
    service: string;
    instance: string;
    version: string;
    processMetrics?: boolean;
    buildInfo?: boolean;
  }) {
    this.registry = new client.Registry();
    if (options.processMetrics !== false) {
      client.collectDefaultMetrics({ register: this.registry });
      for (const name of MISNAMED_PROCESS_METRICS) this.registry.removeSingleMetric(name);
    }
    if (options.buildInfo !== false) {
      this.gauge('net_build_info').set({ version: options.version, node: process.version }, 1);
      this.gauge('net_service_info').set(
        { service_name: options.service, service_instance_id: options.instance, service_version: options.version },
        1,
      );
    }
  }

  /** The named counter, registered on first use. */
  counter<N extends MetricName>(name: N): MetricOf<N> & client.Counter<string> {
    return this.#get(name, 'counter') as MetricOf<N> & client.Counter<string>;
  }

  /**
   * The named counter, with a sample at 0 for every combination of the given label values. A labelled counter
   * otherwise appears only at its first increment, and `rate()` or `increase()` cannot see that first event (the
   * series has no earlier sample to rise from); dashboards show "no data" instead of 0. Prometheus asks for known
   * series to be exported at 0 in advance (https://prometheus.io/docs/practices/instrumentation/#avoid-missing-metrics).
   * Labels whose values cannot be listed in advance (`code`, an errno name) cannot be preset: such counters stay
   * empty until their first error.
   * @throws {TypeError} when `values` does not name exactly the declared labels, or a label has no value.
   */
  preset<N extends CounterName>(
    name: N,
    values: { readonly [L in LabelName<N>]: readonly string[] },
  ): client.Counter<string> {
    const counter = this.counter(name);
    const declared: readonly string[] = METRICS[name].labels;
    const given = Object.keys(values);
    if (given.length !== declared.length || !declared.every((l) => given.includes(l)))
      throw new TypeError(
        `metric ${name} has the labels [${declared.join(', ')}]; preset was given [${given.join(', ')}]`,
      );
    let combinations: Record<string, string>[] = [{}];
    for (const label of declared) {
      const options = (values as Record<string, readonly string[]>)[label] ?? [];
      if (options.length === 0) throw new TypeError(`metric ${name}: preset needs at least one value of ${label}`);
      combinations = combinations.flatMap((c) => options.map((v) => ({ ...c, [label]: v })));
    }
    for (const labels of combinations) counter.inc(labels, 0);
    return counter;
  }

  /** The named gauge, registered on first use. */
  gauge<N extends MetricName>(name: N): client.Gauge<string> {
    return this.#get(name, 'gauge') as client.Gauge<string>;
  }

  /** The named histogram, registered on first use. */
  histogram<N extends MetricName>(name: N): client.Histogram<string> {
    if (this.#plain.has(name)) throw new TypeError(`metric ${name} is observed through plainHistogram()`);
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

  /**
   * The named histogram (unlabelled), observed in plain numbers on the hot path and handed to prom-client at scrape
   * time: prom-client's `observe()` builds a closure and a label object, validates and hashes the labels, per call
   * (2-4 % of the server's samples in connection churn and daytime, once per connection, `bench:profile`). The
   * exposition is prom-client's own, byte for byte (test/metrics.test.ts compares the two).
   * @throws {TypeError} when the metric was already registered, is not a histogram, or has labels.
   */
  plainHistogram(name: MetricName): PlainHistogram {
    if (this.#made.has(name)) throw new TypeError(`metric ${name} is already registered`);
    const d: Declared = METRICS[name];
    if (d.kind !== 'histogram' || d.labels.length > 0)
      throw new TypeError(`metric ${name} is not an unlabelled histogram`);
    const plain = new PlainHistogram(d.buckets ?? []);
    this.#plain.add(name);
    this.#get(name, 'histogram', function (this: client.Histogram<string>) {
      plain.writeInto(this);
    });
    return plain;
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

/** prom-client 15's per-label-set state of a histogram (lib/histogram.js createBaseValues), keyed by label hash. */
interface HistogramValues {
  labels: Record<string, never>;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}

/** See {@link Metrics.plainHistogram}: counts per bucket, sum and count as plain numbers. */
export class PlainHistogram {
  readonly #bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last one is +Inf. */
  readonly #counts: Float64Array;
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = [...bounds].sort((a, b) => a - b);
    this.#counts = new Float64Array(this.#bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#sum += value;
    this.#count++;
  }

  /**
   * @internal Sets prom-client's state of the unlabelled series to these counts, as its observe() would have left
   * it (the `''` entry of `hashMap`: label hash of no labels; bucket values per upper bound, not cumulative).
   */
  writeInto(histogram: client.Histogram<string>): void {
    const bucketValues: Record<string, number> = {};
    for (let i = 0; i < this.#bounds.length; i++) bucketValues[String(this.#bounds[i])] = this.#counts[i] as number;
    const values: HistogramValues = { labels: {}, bucketValues, sum: this.#sum, count: this.#count };
    (histogram as unknown as { hashMap: Record<string, HistogramValues> }).hashMap = { '': values };
  }
}
