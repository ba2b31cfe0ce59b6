import { fileURLToPath } from 'node:url';
import { runToExit } from '@net/testkit';
import { describe, expect, it } from 'vitest';
import { batchEngineSupport } from '../src/batch-echo.js';
import { DROP } from '../src/drop-reasons.js';
import { DropReport } from '../src/drop-report.js';

describe('DropReport', () => {
  it('lists drops up to its limit and counts the rest by reason until taken', () => {
    const report = new DropReport(2);
    expect(report.take()).toBeUndefined();
    report.add(DROP.reflection_guard, '192.0.2.1', 19, 5);
    report.add(DROP.table_full, '::1', 4000, 0);
    report.add(DROP.table_full, '::1', 4001, 1);
    report.add(DROP.send_queue_full, '192.0.2.2', 5000, 64);
    const first = report.take();
    expect(first?.drops).toEqual([
      [DROP.reflection_guard, '192.0.2.1', 19, 5],
      [DROP.table_full, '::1', 4000, 0],
    ]);
    expect(first?.notListed[DROP.table_full]).toBe(1);
    expect(first?.notListed[DROP.send_queue_full]).toBe(1);
    expect(first?.notListed.reduce((a, b) => a + b, 0)).toBe(2);
    expect(report.take()).toBeUndefined();
    report.add(DROP.rate_limit_bytes, '192.0.2.3', 6000, 1400);
    expect(report.take()).toEqual({
      drops: [[DROP.rate_limit_bytes, '192.0.2.3', 6000, 1400]],
      notListed: [0, 0, 0, 0, 0],
    });
  });

  it('with a limit of 0 lists nothing and counts every drop', () => {
    const report = new DropReport(0);
    report.add(DROP.rate_limit_packets, '192.0.2.1', 1000, 1);
    expect(report.take()).toEqual({ drops: [], notListed: [0, 1, 0, 0, 0] });
  });
});

const fixture = fileURLToPath(new URL('./fixtures/batch-drop-report.mjs', import.meta.url));

describe.skipIf(batchEngineSupport() !== undefined)('the batch engine at debug level', () => {
  it('hands each dropped datagram to onDrop with its reason, source and size, and counts those past the limit', async () => {
    const r = await runToExit(fixture, ['1', '10']);
    expect(r.code, r.stderr).toBe(0);
    const { guardedPort, listed, notListed, dropped } = r.lines[0] as unknown as {
      guardedPort: number;
      listed: [string, string, number, number][];
      notListed: Record<string, number>[];
      dropped: number[];
    };
    expect(dropped[DROP.reflection_guard]).toBe(10);
    expect(listed.length + notListed.reduce((sum, d) => sum + (d.reflection_guard ?? 0), 0)).toBe(10);
    // Ten datagrams and one listed per report: unless they spread over ten reports (a second), some are counted.
    expect(notListed.length).toBeGreaterThan(0);
    for (const [reason, address, port, size] of listed) {
      expect([reason, address, port]).toEqual(['reflection_guard', '127.0.0.1', guardedPort]);
      expect(size).toBeLessThan(10);
    }
    expect(notListed.flatMap((d) => Object.keys(d))).toEqual(notListed.map(() => 'reflection_guard'));
  });
});
