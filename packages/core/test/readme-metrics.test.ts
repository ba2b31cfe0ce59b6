import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { METRICS } from '../src/index.js';

// The README's metric table is what dashboards and alert rules are written against; this keeps it in step with
// METRICS: every declared metric with its type, labels and help, nothing retired left in.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** `name -> "type | labels | help"` from the rows of the table under `### Metrics`. */
function documentedMetrics(): Record<string, string> {
  const section = readme.split(/^### Metrics$/m)[1]?.split(/^#{2,3} /m)[0] ?? '';
  const rows: Record<string, string> = {};
  for (const m of section.matchAll(/^\| `(net_\w+)` \| (\w+) \| ([^|]*) \| ([^|]*) \|$/gm)) {
    const [, name, kind, labels, help] = m as unknown as [string, string, string, string, string];
    rows[name] = `${kind} | ${labels.trim()} | ${help.trim()}`;
  }
  return rows;
}

describe('core README metric table', () => {
  it('lists every metric of METRICS with its type, labels and help, and nothing else', () => {
    const declared = Object.fromEntries(
      Object.entries(METRICS).map(([name, d]) => [
        name,
        `${d.kind} | ${d.labels.map((l) => `\`${l}\``).join(', ')} | ${d.help}`,
      ]),
    );
    expect(Object.keys(declared).length).toBeGreaterThan(15);
    expect(documentedMetrics()).toEqual(declared);
  });
});
