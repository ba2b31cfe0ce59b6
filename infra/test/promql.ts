/**
 * What the monitoring tests read from PromQL and Grafana: the metric names and label names an expression uses,
 * and the metric families a `/metrics` text declares. Enough PromQL for the dashboard's and the rules' expressions
 * (selectors, functions, aggregations with by/without, vector matching with on/ignoring/group_left), not a parser:
 * promtool parses every expression too (monitoring.test.ts).
 */

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'inf',
  'nan',
]);
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** The expression with Grafana's variables replaced by values PromQL accepts (`$__rate_interval` by `5m`). */
export function withGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval\b/g, '5m').replace(/\$\{?(job|instance)\}?/g, '.*');
}

/** The metric names an expression selects, in order of appearance, each once. */
export function metricNames(expr: string): string[] {
  const bare = withGrafanaVariables(expr)
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""') // string literals (label values)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(GROUPING, ' '); // label lists of by, without, on, ignoring, group_left, group_right
  const names: string[] = [];
  for (const m of bare.matchAll(/(?<![\w.:$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    const name = m[1] as string;
    if (!KEYWORDS.has(name.toLowerCase()) && !names.includes(name)) names.push(name);
  }
  return names;
}

/** The label names an expression matches on or groups by, each once. */
export function labelNames(expr: string): string[] {
  const text = withGrafanaVariables(expr).replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  const names = new Set<string>();
  for (const block of text.matchAll(/\{([^}]*)\}/g)) {
    for (const m of (block[1] as string).matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) names.add(m[1] as string);
  }
  for (const list of text.matchAll(GROUPING)) {
    for (const label of (list[1] as string).split(',')) if (label.trim() !== '') names.add(label.trim());
  }
  return [...names];
}

/**
 * The sample names a `/metrics` text can produce, from its `# TYPE` lines: each family, and for a histogram or
 * summary its `_bucket`, `_sum` and `_count` series.
 */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\w+)$/gm)) {
    const [, name, kind] = m as unknown as [string, string, string];
    names.add(name);
    if (kind === 'histogram' || kind === 'summary') {
      for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
    }
  }
  return names;
}

/** The label names on the samples of a `/metrics` text. */
export function exposedLabels(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const braces = /^[^{\s]+\{(.*)\}\s/.exec(line);
    for (const m of (braces?.[1] ?? '').matchAll(/([a-zA-Z_]\w*)="(?:[^"\\]|\\.)*"/g)) names.add(m[1] as string);
  }
  return names;
}
