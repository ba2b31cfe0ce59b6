import type { Logger } from '@net/core';
import { describe, expect, it } from 'vitest';
import { RateLimitedWarning } from '../src/rate-limited-log.js';

function fakeLog(): { log: Logger; lines: { fields: Record<string, unknown>; msg: string }[] } {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  const log = {
    warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }),
  } as unknown as Logger;
  return { log, lines };
}

describe('RateLimitedWarning', () => {
  it('logs the first of a thousand hits within the interval, once', () => {
    const { log, lines } = fakeLog();
    const w = new RateLimitedWarning(log, 'limit reached', 60_000);
    for (let i = 0; i < 1000; i++) w.hit({ open: i });
    expect(lines).toEqual([{ fields: { open: 0, hits: 1, intervalSeconds: 60 }, msg: 'limit reached' }]);
  });

  it('builds fields given as a function only for the hit it logs', () => {
    const { log, lines } = fakeLog();
    const w = new RateLimitedWarning(log, 'limit reached', 60_000);
    let built = 0;
    for (let i = 0; i < 1000; i++) w.hit(() => ({ open: i, built: ++built }));
    expect(built).toBe(1);
    expect(lines).toEqual([{ fields: { open: 0, built: 1, hits: 1, intervalSeconds: 60 }, msg: 'limit reached' }]);
  });

  it('logs again after the interval, with the number of hits it stands for', () => {
    const { log, lines } = fakeLog();
    const w = new RateLimitedWarning(log, 'limit reached', 0);
    w.hit();
    w.hit();
    expect(lines.map((l) => l.fields.hits)).toEqual([1, 1]);
  });
});
