/// <reference path="./prometheus-parse.d.ts" />
/** Scraping `/metrics` and reading it with a real Prometheus text parser (never with a grep). */
import parsePrometheusTextFormat, { type PrometheusFamily } from 'parse-prometheus-text-format';
import { httpGet } from './http-get.js';

export type { PrometheusFamily, PrometheusSample } from 'parse-prometheus-text-format';

/** A scrape: the raw text, the parsed families, and the families by name. */
export interface Scrape {
  text: string;
  contentType: string | undefined;
  families: PrometheusFamily[];
  byName: Map<string, PrometheusFamily>;
}

/** Parses Prometheus text exposition; throws on text the parser rejects. */
export function parseMetrics(text: string): Pick<Scrape, 'families' | 'byName'> {
  const families = parsePrometheusTextFormat(text);
  return { families, byName: new Map(families.map((f) => [f.name, f])) };
}

/**
 * GETs a `/metrics` URL and parses it.
 * @throws when the status is not 200 or the body is not valid Prometheus text.
 */
export async function scrapeMetrics(url: string): Promise<Scrape> {
  const res = await httpGet(url);
  if (res.status !== 200) throw new Error(`GET ${url}: status ${res.status}: ${res.body.slice(0, 200)}`);
  const contentType = res.headers['content-type'];
  return { text: res.body, contentType, ...parseMetrics(res.body) };
}

/** The value of an unlabelled (or first) sample of a counter or gauge family, or undefined. */
export function sampleValue(
  scrape: Pick<Scrape, 'byName'>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const family = scrape.byName.get(name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample?.value === undefined ? undefined : Number(sample.value);
}
