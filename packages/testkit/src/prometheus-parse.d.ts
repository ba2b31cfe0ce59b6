/** Types for parse-prometheus-text-format 1.1.1, which ships none. */
declare module 'parse-prometheus-text-format' {
  /** One sample; histograms and summaries carry `buckets`/`quantiles`, `sum` and `count` instead of `value`. */
  export interface PrometheusSample {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    quantiles?: Record<string, string>;
    sum?: string;
    count?: string;
  }
  /** One metric family; `type` is `UNTYPED` and `help` empty when the text had no `# TYPE` / `# HELP` line. */
  export interface PrometheusFamily {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: PrometheusSample[];
  }
  /** Parses the Prometheus text exposition format (version 0.0.4); throws on malformed input. */
  export default function parsePrometheusTextFormat(text: string): PrometheusFamily[];
}
