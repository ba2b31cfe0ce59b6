import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/runtime/logger.js';
import { DESCRIPTOR_RESERVE, descriptorLimit, effectiveMaxConnections } from '../src/sys/rlimit.js';

/** A JSON logger whose lines land in an array. */
function capture() {
  const lines: { level: number; msg: string; [key: string]: unknown }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString('utf8').split('\n')) if (text) lines.push(JSON.parse(text));
      done();
    },
  });
  const log = createLogger({ service: 'demo', instance: 'i-1', level: 'debug', format: 'json', destination });
  return { log, lines };
}

/** "Max open files  <soft>  <hard>  files" from /proc/self/limits. */
function procLimits(): { soft: number; hard: number } {
  const row = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  if (!row) throw new Error('no "Max open files" row in /proc/self/limits');
  const value = (s: string | undefined) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s));
  return { soft: value(row[1]), hard: value(row[2]) };
}

describe.skipIf(process.platform !== 'linux')('descriptorLimit', () => {
  it('reads the same RLIMIT_NOFILE as /proc/self/limits', () => {
    expect(descriptorLimit()).toEqual(procLimits());
  });
});

describe('effectiveMaxConnections', () => {
  it('keeps a setting that fits under the soft limit minus the reserve, saying nothing', () => {
    const { log, lines } = capture();
    expect(effectiveMaxConnections(192, log, { limit: { soft: 256, hard: 4096 } })).toBe(192);
    expect(effectiveMaxConnections(5, log, { limit: { soft: Number.POSITIVE_INFINITY, hard: 1 } })).toBe(5);
    expect(lines).toEqual([]);
  });

  it('lowers a setting above the soft limit minus the reserve and warns with both numbers', () => {
    const { log, lines } = capture();
    expect(DESCRIPTOR_RESERVE).toBe(64);
    expect(effectiveMaxConnections(10_000, log, { limit: { soft: 256, hard: 256 } })).toBe(192);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      maxConnections: 10_000,
      effective: 192,
      reserve: 64,
      descriptorLimit: { soft: 256, hard: 256 },
    });
    expect(lines[0]?.msg).toMatch(/^--max-connections 10000 exceeds the descriptor limit \(RLIMIT_NOFILE soft 256\)/);
  });

  it('never goes below one connection, even under a tiny limit', () => {
    const { log } = capture();
    expect(effectiveMaxConnections(100, log, { limit: { soft: 20, hard: 20 } })).toBe(1);
  });

  it.skipIf(process.platform !== 'linux')(
    'reads this process limit itself, warns once per setting, and answers later calls silently',
    () => {
      const { log, lines } = capture();
      const { soft } = descriptorLimit();
      const configured = Number.isFinite(soft) ? soft + 1 : 1_000_000;
      const expected = Number.isFinite(soft) ? Math.max(1, soft - 64) : configured;
      expect(effectiveMaxConnections(configured, log)).toBe(expected);
      expect(effectiveMaxConnections(configured, log)).toBe(expected);
      expect(lines.filter((l) => l.level === 40)).toHaveLength(Number.isFinite(soft) ? 1 : 0);
    },
  );
});
