/**
 * Value types for declared settings. Each type turns the raw text of a flag or an environment variable into a
 * typed value, or throws a sentence saying what is accepted; `config.ts` wraps that sentence into a ConfigError
 * that also names the setting and the value, so every bad-config message has the same shape.
 */

/** A setting's value type: how to parse it and how to describe what it accepts. */
export interface ValueType<T> {
  /** What is accepted, for `--help` and error messages, e.g. "an integer from 0 to 65535". */
  readonly accepts: string;
  /** Parses one raw value; throws an `Error` whose message is what is accepted. */
  parse(raw: string): T;
  /** Formats a value back for `--help` and the start-up log. */
  format?(value: T): string;
}

class Invalid extends Error {}

/** An integer within [min, max]. */
export function integer(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): ValueType<number> {
  const accepts = `an integer from ${min} to ${max}`;
  return {
    accepts,
    parse(raw) {
      if (!/^[+-]?\d+$/.test(raw.trim())) throw new Invalid(`expected ${accepts}`);
      const n = Number(raw.trim());
      if (!Number.isSafeInteger(n) || n < min || n > max) throw new Invalid(`expected ${accepts}`);
      return n;
    },
  };
}

/** A TCP or UDP port number, 0 meaning "any free port". */
export function port(): ValueType<number> {
  const t = integer(0, 65535);
  const accepts = 'a port number from 0 to 65535 (0 picks a free port)';
  return {
    accepts,
    parse(raw) {
      // Reuse the integer check but say "port" in the message, not "an integer".
      try {
        return t.parse(raw);
      } catch {
        throw new Invalid(`expected ${accepts}`);
      }
    },
  };
}

/** A non-negative decimal number within [min, max], e.g. seconds or milliseconds. */
export function decimal(min: number, max: number, unit = ''): ValueType<number> {
  const accepts = `a number from ${min} to ${max}${unit ? ` ${unit}` : ''}`;
  return {
    accepts,
    parse(raw) {
      if (!/^[+-]?(\d+(\.\d*)?|\.\d+)$/.test(raw.trim())) throw new Invalid(`expected ${accepts}`);
      const n = Number(raw.trim());
      if (!Number.isFinite(n) || n < min || n > max) throw new Invalid(`expected ${accepts}`);
      return n;
    },
  };
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** A boolean: true/false, 1/0, yes/no, on/off. A bare flag means true. */
export function boolean(): ValueType<boolean> {
  return {
    accepts: 'true or false (also 1/0, yes/no, on/off)',
    parse(raw) {
      const v = raw.trim().toLowerCase();
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw new Invalid('expected true or false (also 1/0, yes/no, on/off)');
    },
  };
}

/** Any string, optionally matching a pattern described by `accepts`. */
export function string(options: { pattern?: RegExp; accepts?: string; maxLength?: number } = {}): ValueType<string> {
  const maxLength = options.maxLength ?? 4096;
  const accepts = options.accepts ?? `a string of at most ${maxLength} characters`;
  return {
    accepts,
    parse(raw) {
      if (raw.length > maxLength || (options.pattern && !options.pattern.test(raw)))
        throw new Invalid(`expected ${accepts}`);
      return raw;
    },
  };
}

/** One of a fixed set of words. */
export function oneOf<const T extends string>(choices: readonly T[]): ValueType<T> {
  const accepts = `one of ${choices.join(', ')}`;
  return {
    accepts,
    parse(raw) {
      const v = raw.trim();
      if (!(choices as readonly string[]).includes(v)) throw new Invalid(`expected ${accepts}`);
      return v as T;
    },
  };
}

/** A value checked by a custom parser, e.g. an endpoint or a CIDR; `parse` throws with a message. */
export function custom<T>(accepts: string, parse: (raw: string) => T, format?: (value: T) => string): ValueType<T> {
  return format ? { accepts, parse, format } : { accepts, parse };
}

/**
 * A comma-separated list of another type (environment variables carry lists this way; a repeated flag gives one
 * item per occurrence). Empty items are rejected so that a stray comma is not silently ignored.
 */
export function list<T>(item: ValueType<T>, options: { maxItems?: number } = {}): ValueType<T[]> {
  const maxItems = options.maxItems ?? 64;
  const accepts = `a comma-separated list of ${item.accepts} (at most ${maxItems})`;
  return {
    accepts,
    parse(raw) {
      const parts = raw.split(',').map((s) => s.trim());
      if (raw.trim() === '') return [];
      if (parts.length > maxItems) throw new Invalid(`expected ${accepts}`);
      return parts.map((p) => {
        if (p === '') throw new Invalid(`expected ${accepts}; found an empty item`);
        return item.parse(p);
      });
    },
    format: (v) => v.map((x) => (item.format ? item.format(x) : String(x))).join(','),
  };
}
