import { describe, expect, it } from 'vitest';
import { RateLimiter, type RateLimits, VERDICT, type Verdict } from '../src/rate-limiter.js';

const limits: RateLimits = { packetsPerSecond: 10, packetBurst: 5, bytesPerSecond: 1000, byteBurst: 2000 };

/** 127.x.y.z, a distinct synthetic source per index (16,777,216 of them). */
function source(i: number): string {
  return `127.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${i & 0xff}`;
}

describe('RateLimiter', () => {
  it('passes a burst of packetBurst datagrams, then drops for rate_limit_packets', () => {
    const limiter = new RateLimiter(limits, 16);
    const verdicts = Array.from({ length: 8 }, () => limiter.check('10.0.0.1', 1, 0));
    expect(verdicts).toEqual([...Array(5).fill(VERDICT.PASS), ...Array(3).fill(VERDICT.RATE_LIMIT_PACKETS)]);
  });

  it('refills the packet bucket at the configured rate and never beyond the burst', () => {
    const limiter = new RateLimiter(limits, 16);
    for (let i = 0; i < 5; i++) limiter.check('a', 1, 0);
    expect(limiter.check('a', 1, 0)).toBe(VERDICT.RATE_LIMIT_PACKETS);
    // 10/s: one token per 100 ms.
    expect(limiter.check('a', 1, 100)).toBe(VERDICT.PASS);
    expect(limiter.check('a', 1, 100)).toBe(VERDICT.RATE_LIMIT_PACKETS);
    // A long pause refills to the burst (5), not to 10 x the pause.
    let passed = 0;
    for (let i = 0; i < 20; i++) if (limiter.check('a', 1, 60_000) === VERDICT.PASS) passed++;
    expect(passed).toBe(5);
  });

  it('drops for rate_limit_bytes when the datagram is larger than the byte bucket holds', () => {
    const limiter = new RateLimiter(limits, 16);
    expect(limiter.check('b', 1500, 0)).toBe(VERDICT.PASS);
    expect(limiter.check('b', 1500, 0)).toBe(VERDICT.RATE_LIMIT_BYTES);
    // Small datagrams still fit in the 500 bytes left: the byte limit charges bytes, not datagrams.
    expect(limiter.check('b', 400, 0)).toBe(VERDICT.PASS);
    // 1000 B/s: after 1 s the bucket holds 1100 bytes.
    expect(limiter.check('b', 1100, 1000)).toBe(VERDICT.PASS);
  });

  it('charges nothing for a dropped datagram, so a source under its average rate recovers', () => {
    const limiter = new RateLimiter(limits, 16);
    for (let i = 0; i < 100; i++) limiter.check('c', 1, 0);
    expect(limiter.check('c', 1, 100)).toBe(VERDICT.PASS);
  });

  it('keeps each source in its own buckets', () => {
    const limiter = new RateLimiter(limits, 16);
    for (let i = 0; i < 10; i++) limiter.check('noisy', 1, 0);
    expect(limiter.check('quiet', 1, 0)).toBe(VERDICT.PASS);
  });

  it('with a rate of 0 the corresponding limit is off', () => {
    const limiter = new RateLimiter({ ...limits, packetsPerSecond: 0 }, 4);
    for (let i = 0; i < 1000; i++) expect(limiter.check('d', 1, 0)).toBe(VERDICT.PASS);
  });

  it('stays within its capacity under 100,000 distinct sources and refuses new ones while all tracked are active', () => {
    const capacity = 1000;
    const limiter = new RateLimiter(limits, capacity);
    const counts = new Map<Verdict, number>();
    let maxSize = 0;
    // Every source arrives within the same millisecond: nobody is idle, so nobody may be forgotten.
    for (let i = 0; i < 100_000; i++) {
      const verdict = limiter.check(source(i), 64, 0);
      counts.set(verdict, (counts.get(verdict) ?? 0) + 1);
      maxSize = Math.max(maxSize, limiter.size);
    }
    expect(maxSize).toBe(capacity);
    expect(counts.get(VERDICT.PASS)).toBe(capacity);
    expect(counts.get(VERDICT.TABLE_FULL)).toBe(100_000 - capacity);
    // The sources already tracked keep their buckets (and are still answered).
    expect(limiter.check(source(0), 64, 0)).toBe(VERDICT.PASS);
  });

  it('forgets the least recently seen source once its buckets are full again, so a steady client keeps its slot', () => {
    const capacity = 1000;
    const limiter = new RateLimiter(limits, capacity);
    // Refill time: max(5 / 10, 2000 / 1000) = 2 s. Sources arrive at 100 per ms of simulated time; a steady client
    // sends one datagram every 100 ms.
    let now = 0;
    let steadyAnswered = 0;
    let steadySent = 0;
    let tableFull = 0;
    let maxSize = 0;
    for (let i = 0; i < 100_000; i++) {
      if (i % 100 === 0) now += 1;
      if (i % 10_000 === 0) {
        steadySent++;
        if (limiter.check('192.0.2.1', 64, now) === VERDICT.PASS) steadyAnswered++;
      }
      if (limiter.check(source(i), 64, now) === VERDICT.TABLE_FULL) tableFull++;
      maxSize = Math.max(maxSize, limiter.size);
    }
    expect(maxSize).toBeLessThanOrEqual(capacity);
    expect(steadyAnswered).toBe(steadySent);
    // 100,000 sources in 1 s of simulated time, refill 2 s: after the first 1000, no slot is ever idle.
    expect(tableFull).toBeGreaterThan(90_000);

    // Time passes: every tracked source is idle, and new sources take all their slots, then the table is full again.
    now += 2001;
    for (let i = 0; i < capacity; i++) expect(limiter.check(`10.1.${i >> 8}.${i & 0xff}`, 64, now)).toBe(VERDICT.PASS);
    expect(limiter.check('10.2.0.0', 64, now)).toBe(VERDICT.TABLE_FULL);
    expect(limiter.size).toBe(capacity);
  });

  it('evicts in least-recently-seen order', () => {
    const limiter = new RateLimiter(limits, 3);
    limiter.check('a', 1, 0);
    limiter.check('b', 1, 0);
    limiter.check('c', 1, 0);
    limiter.check('a', 1, 1); // a is now the most recent; b the least
    // At 2001 ms b and c are idle (seen at 0), a is not (seen at 1): the new source takes b's slot.
    expect(limiter.check('d', 1, 2000.5)).toBe(VERDICT.PASS);
    expect(limiter.check('e', 1, 2000.5)).toBe(VERDICT.PASS); // c's slot
    expect(limiter.check('f', 1, 2000.5)).toBe(VERDICT.TABLE_FULL); // a seen 1999.5 ms ago: still active
    // a kept its buckets: 5 - 2 = 3 tokens, plus 20 refilled, capped at 5.
    expect(limiter.check('a', 1, 2000.5)).toBe(VERDICT.PASS);
  });

  it('rejects a capacity that is not a positive integer', () => {
    expect(() => new RateLimiter(limits, 0)).toThrow(RangeError);
  });
});
