import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COUNTER, COUNTER_SLOTS } from '../src/batch-protocol.js';
import { DROP, DROP_REASONS } from '../src/drop-reasons.js';
import { VERDICT } from '../src/rate-limiter.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** The backquoted words of the README table row (or rows) whose first cell matches `first`. */
function rowWords(first: RegExp): string[][] {
  const rows = readme.split('\n').filter((line) => line.startsWith('| ') && first.test(line.split('|')[1] ?? ''));
  return rows.map((row) => [...row.matchAll(/`(\w+)`/g)].map((m) => m[1]!));
}

describe('drop reasons', () => {
  it('give each reason the slot of its position in the list', () => {
    expect(Object.keys(DROP)).toEqual([...DROP_REASONS]);
    DROP_REASONS.forEach((reason, slot) => {
      expect(DROP[reason]).toBe(slot);
    });
  });

  it("make each of the rate limiter's refusals the slot of the reason it is counted as, and a pass no slot", () => {
    expect(DROP_REASONS[VERDICT.RATE_LIMIT_PACKETS]).toBe('rate_limit_packets');
    expect(DROP_REASONS[VERDICT.RATE_LIMIT_BYTES]).toBe('rate_limit_bytes');
    expect(DROP_REASONS[VERDICT.TABLE_FULL]).toBe('table_full');
    expect(Object.values(DROP)).not.toContain(VERDICT.PASS);
  });

  it("give the batch engine's shared counters one slot per reason after the other counters", () => {
    expect(COUNTER_SLOTS - COUNTER.DROPPED).toBe(DROP_REASONS.length);
    expect(Math.max(...Object.values(COUNTER))).toBe(COUNTER.DROPPED);
  });

  it('are the label values the README lists for net_datagrams_dropped_total, in order, and each has a limit row', () => {
    const [metricRow, ...more] = rowWords(/`net_datagrams_dropped_total`/);
    expect(more).toEqual([]);
    expect(metricRow?.slice(metricRow.indexOf('reason') + 1)).toEqual([...DROP_REASONS]);
    const limitRows = readme.split(/^## Limits and their defaults$/m)[1]?.split(/^## /m)[0] ?? '';
    // The last cell of a limit's row names the reason its drops are counted as.
    const limited = new Set([...limitRows.matchAll(/, `(\w+)` \|$/gm)].map((m) => m[1]));
    expect([...limited].sort()).toEqual([...DROP_REASONS].sort());
  });
});
