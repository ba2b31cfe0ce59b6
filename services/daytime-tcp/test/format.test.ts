import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { formatDaytime } from '../src/format.js';

/** Expected lines, produced once with GNU date (`date '+%a %b %e %H:%M:%S %Y'`, `--rfc-3339=seconds`, `-R`). */
const GOLDEN: [zone: string, instant: string, ctime: string, rfc3339: string, rfc2822: string][] = [
  [
    'UTC',
    '2026-11-24T16:07:32Z',
    'Tue Nov 24 16:07:32 2026',
    '2026-11-24T16:07:32+00:00',
    'Tue, 24 Nov 2026 16:07:32 +0000',
  ],
  [
    'UTC',
    '2026-11-04T09:05:02Z',
    'Wed Nov  4 09:05:02 2026',
    '2026-11-04T09:05:02+00:00',
    'Wed, 04 Nov 2026 09:05:02 +0000',
  ],
  [
    'Europe/Paris',
    '2026-11-24T16:07:32Z',
    'Tue Nov 24 17:07:32 2026',
    '2026-11-24T17:07:32+01:00',
    'Tue, 24 Nov 2026 17:07:32 +0100',
  ],
  [
    'Europe/Paris',
    '2026-11-04T09:05:02Z',
    'Wed Nov  4 10:05:02 2026',
    '2026-11-04T10:05:02+01:00',
    'Wed, 04 Nov 2026 10:05:02 +0100',
  ],
  [
    'Europe/Paris',
    '2026-07-01T23:59:59Z',
    'Thu Jul  2 01:59:59 2026',
    '2026-07-02T01:59:59+02:00',
    'Thu, 02 Jul 2026 01:59:59 +0200',
  ],
  [
    'America/New_York',
    '2026-11-24T16:07:32Z',
    'Tue Nov 24 11:07:32 2026',
    '2026-11-24T11:07:32-05:00',
    'Tue, 24 Nov 2026 11:07:32 -0500',
  ],
  [
    'America/New_York',
    '2026-07-01T23:59:59Z',
    'Wed Jul  1 19:59:59 2026',
    '2026-07-01T19:59:59-04:00',
    'Wed, 01 Jul 2026 19:59:59 -0400',
  ],
  [
    'Asia/Kolkata',
    '2026-11-04T09:05:02Z',
    'Wed Nov  4 14:35:02 2026',
    '2026-11-04T14:35:02+05:30',
    'Wed, 04 Nov 2026 14:35:02 +0530',
  ],
  [
    'Pacific/Chatham',
    '2026-11-24T16:07:32Z',
    'Wed Nov 25 05:52:32 2026',
    '2026-11-25T05:52:32+13:45',
    'Wed, 25 Nov 2026 05:52:32 +1345',
  ],
  [
    'America/St_Johns',
    '2026-07-01T23:59:59Z',
    'Wed Jul  1 21:29:59 2026',
    '2026-07-01T21:29:59-02:30',
    'Wed, 01 Jul 2026 21:29:59 -0230',
  ],
];

describe('formatDaytime with an injected clock', () => {
  it.each(GOLDEN)('writes %s at %s in every format, as GNU date does', (zone, instant, ctime, rfc3339, rfc2822) => {
    const date = new Date(instant);
    expect(formatDaytime(date, 'ctime', { tz: zone })).toBe(`${ctime}\r\n`);
    expect(formatDaytime(date, 'rfc3339', { tz: zone })).toBe(`${rfc3339}\r\n`);
    expect(formatDaytime(date, 'rfc2822', { tz: zone })).toBe(`${rfc2822}\r\n`);
  });

  it('gives ctime exactly 24 characters plus CR LF, padding a single-digit day with a space', () => {
    const line = formatDaytime(new Date('2026-11-04T09:05:02Z'), 'ctime', { utc: true });
    expect(line).toBe('Wed Nov  4 09:05:02 2026\r\n');
    expect(line.length).toBe(26);
  });

  it('writes Z for UTC in RFC 3339 and +0000 in RFC 2822 when --utc is set, whatever the zone', () => {
    const date = new Date('2026-11-04T09:05:02Z');
    expect(formatDaytime(date, 'rfc3339', { utc: true, tz: 'Asia/Kolkata' })).toBe('2026-11-04T09:05:02Z\r\n');
    expect(formatDaytime(date, 'rfc2822', { utc: true })).toBe('Wed, 04 Nov 2026 09:05:02 +0000\r\n');
  });

  it('truncates milliseconds instead of rounding them up to the next second', () => {
    expect(formatDaytime(new Date('2026-12-31T23:59:59.999Z'), 'ctime', { utc: true })).toBe(
      'Thu Dec 31 23:59:59 2026\r\n',
    );
    expect(formatDaytime(new Date('2026-12-31T23:59:59.999Z'), 'rfc3339', { tz: 'Europe/Paris' })).toBe(
      '2027-01-01T00:59:59+01:00\r\n',
    );
  });

  it('rejects an invalid Date and an unknown time zone with a RangeError', () => {
    expect(() => formatDaytime(new Date(Number.NaN), 'ctime')).toThrow(RangeError);
    expect(() => formatDaytime(new Date(), 'ctime', { tz: 'Mars/Olympus_Mons' })).toThrow(RangeError);
  });
});

describe('formatDaytime in the local time of the process', () => {
  // The local zone is what TZ said when Node started, so each zone gets its own process (one per zone, all its
  // instants and formats at once, to keep the test fast).
  const inZone = (tz: string, instants: string[]): string[][] =>
    JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { formatDaytime } from ${JSON.stringify(new URL('../dist/format.js', import.meta.url).href)};
           const instants = ${JSON.stringify(instants)};
           process.stdout.write(JSON.stringify(instants.map((i) =>
             ['ctime', 'rfc3339', 'rfc2822'].map((f) => formatDaytime(new Date(i), f)))));`,
        ],
        { env: { ...process.env, TZ: tz }, encoding: 'utf8' },
      ),
    ) as string[][];

  const zones = [...new Set(GOLDEN.map(([zone]) => zone))];
  it.each(zones)('honours TZ=%s in every format', (zone) => {
    const rows = GOLDEN.filter(([z]) => z === zone);
    const got = inZone(
      zone,
      rows.map(([, instant]) => instant),
    );
    expect(got).toEqual(rows.map(([, , ...lines]) => lines.map((l) => `${l}\r\n`)));
  });
});
