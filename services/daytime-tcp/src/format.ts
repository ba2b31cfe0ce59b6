/**
 * The daytime line. RFC 867 leaves the syntax open ("there is no specific syntax for the daytime", §"Daytime
 * Syntax") and suggests one ASCII line; the classic C daytime server writes `ctime()`'s output, so that stays the default
 * and two machine-readable formats are offered beside it. Pure: the caller passes the instant, so tests inject a
 * clock instead of waiting for a particular date.
 */

/** The line formats `--format` accepts. */
export const DAYTIME_FORMATS = ['ctime', 'rfc3339', 'rfc2822'] as const;
export type DaytimeFormat = (typeof DAYTIME_FORMATS)[number];

/** Options of {@link formatDaytime}. */
export interface FormatOptions {
  /** Write UTC instead of local time. */
  utc?: boolean;
  /**
   * An IANA time zone (`Europe/Paris`) to use instead of the process's local zone; ignored when `utc` is true.
   * Unset means the process's zone, i.e. what `TZ` said when Node started (like ctime(3)).
   */
  tz?: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** Wall-clock fields of an instant in some zone, and that zone's offset from UTC at that instant. */
interface WallClock {
  year: number;
  /** 1-12 */
  month: number;
  day: number;
  /** 0 = Sunday */
  weekday: number;
  hour: number;
  minute: number;
  second: number;
  /** Minutes east of UTC (positive in Paris, negative in New York). */
  offsetMinutes: number;
}

/**
 * Formats `date` as one daytime line, CR LF included (RFC 867 sends "one line"; CR LF is the Internet line end,
 * RFC 5198 §2, and it is what the classic C server writes after ctime()'s 24 characters).
 *
 * - `ctime`: `Tue Nov 24 16:07:32 2026`, exactly ctime(3)/asctime(3): the day of the month padded with a space
 *   (`Tue Nov  4 09:05:02 2026`), no zone shown.
 * - `rfc3339`: `2026-11-24T16:07:32+01:00` (RFC 3339 §5.6), `Z` for UTC.
 * - `rfc2822`: `Tue, 24 Nov 2026 16:07:32 +0100` (RFC 5322 §3.3, as `date -R` prints it), `+0000` for UTC.
 *
 * Seconds are truncated, never rounded (as time(2) does). Zone offsets with a seconds part (historical local mean
 * time before 1900) are truncated to whole minutes, the only precision both RFCs can carry.
 *
 * @example formatDaytime(new Date(Date.UTC(2026, 10, 4, 9, 5, 2)), 'ctime', { utc: true }) // 'Wed Nov  4 09:05:02 2026\r\n'
 * @throws {RangeError} for an invalid Date, or a `tz` that is not a known IANA time zone.
 */
export function formatDaytime(date: Date, format: DaytimeFormat, options: FormatOptions = {}): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('formatDaytime: invalid Date');
  const w = wallClock(date, options);
  switch (format) {
    case 'ctime':
      // glibc asctime: "%.3s %.3s%3d %.2d:%.2d:%.2d %d\n" (we end with CR LF instead of the newline).
      return `${DAYS[w.weekday]} ${MONTHS[w.month - 1]} ${String(w.day).padStart(2, ' ')} ${time(w)} ${w.year}\r\n`;
    case 'rfc3339':
      return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)}T${time(w)}${options.utc ? 'Z' : offset(w.offsetMinutes, ':')}\r\n`;
    case 'rfc2822':
      return `${DAYS[w.weekday]}, ${pad(w.day)} ${MONTHS[w.month - 1]} ${pad(w.year, 4)} ${time(w)} ${offset(w.offsetMinutes, '')}\r\n`;
  }
}

function wallClock(date: Date, options: FormatOptions): WallClock {
  if (options.utc) {
    return {
      year: date.getUTCFullYear(),
      month: date.getUTCMonth() + 1,
      day: date.getUTCDate(),
      weekday: date.getUTCDay(),
      hour: date.getUTCHours(),
      minute: date.getUTCMinutes(),
      second: date.getUTCSeconds(),
      offsetMinutes: 0,
    };
  }
  if (options.tz !== undefined) return zonedWallClock(date, options.tz);
  return {
    year: date.getFullYear(),
    month: date.getMonth() + 1,
    day: date.getDate(),
    weekday: date.getDay(),
    hour: date.getHours(),
    minute: date.getMinutes(),
    second: date.getSeconds(),
    // getTimezoneOffset() is minutes *west* of UTC; Math.trunc keeps LMT offsets with seconds to whole minutes.
    offsetMinutes: -Math.trunc(date.getTimezoneOffset()),
  };
}

const zoneFormatters = new Map<string, Intl.DateTimeFormat>();

function zonedWallClock(date: Date, tz: string): WallClock {
  let fmt = zoneFormatters.get(tz);
  if (fmt === undefined) {
    // Throws RangeError for an unknown zone, which is what we document.
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      era: 'short',
    });
    zoneFormatters.set(tz, fmt);
  }
  const parts: Record<string, string> = {};
  for (const p of fmt.formatToParts(date)) parts[p.type] = p.value;
  const yearOfEra = Number(parts.year);
  const year = parts.era === 'BC' ? 1 - yearOfEra : yearOfEra;
  const month = Number(parts.month);
  const day = Number(parts.day);
  const hour = Number(parts.hour);
  const minute = Number(parts.minute);
  const second = Number(parts.second);
  // The zone's offset is the difference between its wall clock read as if it were UTC and the real instant.
  const asUtc = new Date(0);
  asUtc.setUTCFullYear(year, month - 1, day);
  asUtc.setUTCHours(hour, minute, second, 0);
  const instant = Math.floor(date.getTime() / 1000) * 1000;
  return {
    year,
    month,
    day,
    weekday: asUtc.getUTCDay(),
    hour,
    minute,
    second,
    offsetMinutes: Math.trunc((asUtc.getTime() - instant) / 60_000),
  };
}

function time(w: WallClock): string {
  return `${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
}

function pad(n: number, width = 2): string {
  return n < 0 ? `-${String(-n).padStart(width, '0')}` : String(n).padStart(width, '0');
}

function offset(minutes: number, separator: string): string {
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}${separator}${pad(abs % 60)}`;
}
