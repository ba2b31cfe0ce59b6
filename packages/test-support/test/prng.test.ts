import { describe, expect, it } from 'vitest';
import { prng } from '../src/index.js';

describe('prng', () => {
  it('gives the same sequence for the same seed, so a generated case can be replayed', () => {
    const a = prng(0x5eed1234);
    const b = prng(0x5eed1234);
    const first = Array.from({ length: 100 }, () => a());
    expect(Array.from({ length: 100 }, () => b())).toEqual(first);
  });

  it('is mulberry32: seed 1 gives the reference implementation’s first values', () => {
    const r = prng(1);
    expect([r(), r(), r()]).toEqual([0.6270739405881613, 0.002735721180215478, 0.5274470399599522]);
  });

  it('gives values in [0, 1) that spread over the range, and other sequences for other seeds', () => {
    const r = prng(42);
    const values = Array.from({ length: 10_000 }, () => r());
    expect(values.every((v) => v >= 0 && v < 1)).toBe(true);
    const buckets = new Array<number>(10).fill(0);
    for (const v of values) buckets[Math.floor(v * 10)] = (buckets[Math.floor(v * 10)] ?? 0) + 1;
    for (const n of buckets) expect(n).toBeGreaterThan(900);
    const other = prng(43);
    expect(other()).not.toBe(prng(42)());
  });
});
