/**
 * Declared configuration: one schema gives the flags, the environment variables, the defaults and `--help`.
 * Precedence is flag > environment variable > default (12-factor). Every invalid value becomes a ConfigError
 * that names the setting as the user wrote it (`--port` or `ECHO_TCP_PORT`), the value and what is accepted.
 */

import { ConfigError } from '../errors.js';
import type { ValueType } from './config-types.js';

/** One declared setting. */
export interface OptionDef<T> {
  readonly type: ValueType<T>;
  readonly description: string;
  readonly default?: T;
  /** The flag may be repeated; each occurrence adds items (the type must be a list type). */
  readonly repeatable?: boolean;
  /** Single-letter alias, e.g. 'p' for -p. */
  readonly short?: string;
  /** Redacted in the start-up log and in `--help` defaults. */
  readonly secret?: boolean;
  /** Environment variable name; by default PREFIX_FLAG_NAME. `false` for flags with no variable. */
  readonly env?: string | false;
}

/** A named set of settings; keys are camelCase, flags their kebab-case form. */
export type Schema = Record<string, OptionDef<unknown>>;

/** The typed values a schema yields: settings with a default are always present. */
export type ConfigOf<S extends Schema> = {
  -readonly [K in keyof S]: S[K] extends OptionDef<infer T>
    ? S[K] extends { default: unknown }
      ? T
      : T | undefined
    : never;
};

/** Declares a setting; with a `default` its value is never undefined. */
export function option<T>(def: Omit<OptionDef<T>, 'default'> & { default: NoInfer<T> }): OptionDef<T> & { default: T };
export function option<T>(def: Omit<OptionDef<T>, 'default'>): OptionDef<T>;
export function option<T>(def: OptionDef<T>): OptionDef<T> {
  return def;
}

/** `adminPort` -> `admin-port`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Environment variable of a setting: `ECHO_TCP` + `adminPort` -> `ECHO_TCP_ADMIN_PORT`. */
export function envName(prefix: string, key: string, def: OptionDef<unknown>): string | undefined {
  if (def.env === false) return undefined;
  return def.env ?? `${prefix}_${flagName(key).replace(/-/g, '_').toUpperCase()}`;
}

/** Where each value came from, for the start-up log. */
export type Source = 'flag' | 'env' | 'default';

export interface ParsedConfig<S extends Schema> {
  values: ConfigOf<S>;
  sources: Record<keyof S, Source>;
  positionals: string[];
  /** Environment variables with the service's prefix that match no setting (probably typos). */
  unknownEnv: string[];
}

export interface ParseOptions {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  /** Service prefix for environment variables, e.g. `ECHO_TCP`. */
  prefix: string;
  /** Flags that are handled before parsing (e.g. --help) and must not count as unknown. */
  reserved?: readonly string[];
  /** Maximum number of positional arguments accepted (default 0). */
  maxPositionals?: number;
  /** Describes the positionals in the unknown-argument error, e.g. "HOST:PORT". */
  positionalsUsage?: string;
}

/**
 * Parses argv and env against a schema.
 * @throws {ConfigError} an unknown flag, a missing value or an invalid value; the message names the setting.
 */
export function parseConfig<S extends Schema>(schema: S, options: ParseOptions): ParsedConfig<S> {
  const { argv, env, prefix } = options;
  const byFlag = new Map<string, string>();
  const byShort = new Map<string, string>();
  for (const [key, def] of Object.entries(schema)) {
    byFlag.set(flagName(key), key);
    if (def.short) byShort.set(def.short, key);
  }
  const reserved = new Set(options.reserved ?? []);
  const accepted = () => [...byFlag.keys()].map((f) => `--${f}`).join(', ');

  const fromFlags = new Map<string, unknown>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const name = eq === -1 ? token : token.slice(0, eq);
    if (reserved.has(name)) continue;
    let key: string | undefined;
    let negated = false;
    if (name.startsWith('--')) {
      key = byFlag.get(name.slice(2));
      if (key === undefined && name.startsWith('--no-')) {
        key = byFlag.get(name.slice(5));
        negated = key !== undefined;
      }
    } else if (name.length === 2) {
      key = byShort.get(name.slice(1));
    }
    if (key === undefined) {
      throw new ConfigError(
        `option ${name}`,
        undefined,
        `unknown option; accepted options are ${accepted()} (see --help)`,
      );
    }
    const def = schema[key] as OptionDef<unknown>;
    const isBoolean = typeof def.default === 'boolean' || def.type.accepts.startsWith('true or false');
    let raw: string;
    if (negated) {
      if (!isBoolean || eq !== -1)
        throw new ConfigError(name, undefined, `only a boolean flag can be negated with --no-`);
      raw = 'false';
    } else if (eq !== -1) {
      raw = token.slice(eq + 1);
    } else if (isBoolean) {
      raw = 'true';
    } else {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('--') && next.length > 2)) {
        throw new ConfigError(name, undefined, `a value is required: ${def.type.accepts}`);
      }
      raw = next;
      i++;
    }
    const value = parseValue(def, name, raw);
    if (def.repeatable && fromFlags.has(key)) {
      fromFlags.set(key, [...(fromFlags.get(key) as unknown[]), ...(value as unknown[])]);
    } else {
      fromFlags.set(key, value);
    }
  }
  const maxPositionals = options.maxPositionals ?? 0;
  if (positionals.length > maxPositionals) {
    const extra = positionals[maxPositionals] as string;
    const usage =
      maxPositionals === 0 ? 'no positional arguments are accepted' : `expected ${options.positionalsUsage}`;
    throw new ConfigError('argument', extra, `unexpected argument; ${usage} (see --help)`);
  }

  const values: Record<string, unknown> = {};
  const sources: Record<string, Source> = {};
  const knownEnv = new Set<string>();
  for (const [key, def] of Object.entries(schema)) {
    const variable = envName(prefix, key, def);
    if (variable) knownEnv.add(variable);
    if (fromFlags.has(key)) {
      values[key] = fromFlags.get(key);
      sources[key] = 'flag';
    } else if (variable !== undefined && env[variable] !== undefined && env[variable] !== '') {
      values[key] = parseValue(def, variable, env[variable] as string);
      sources[key] = 'env';
    } else {
      values[key] = def.default;
      sources[key] = 'default';
    }
  }
  const unknownEnv = Object.keys(env).filter((k) => k.startsWith(`${prefix}_`) && !knownEnv.has(k));
  return { values: values as ConfigOf<S>, sources: sources as Record<keyof S, Source>, positionals, unknownEnv };
}

function parseValue(def: OptionDef<unknown>, setting: string, raw: string): unknown {
  try {
    return def.type.parse(raw);
  } catch (err) {
    const why = (err as Error).message;
    throw new ConfigError(setting, raw, why.startsWith('expected') ? why : `${why}; expected ${def.type.accepts}`);
  }
}

/** The effective configuration for the start-up log, secrets redacted. */
export function describeConfig<S extends Schema>(schema: S, values: ConfigOf<S>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(schema)) {
    const v = (values as Record<string, unknown>)[key];
    // Values with a formatter (endpoints, CIDR lists) are logged as the user would write them, not as objects.
    out[key] = v === undefined ? v : def.secret ? '[redacted]' : def.type.format ? def.type.format(v) : v;
  }
  return out;
}

/** `--help` text for one command: usage line, then every flag with its variable and default. */
export function formatHelp(
  schema: Schema,
  info: { usage: string; description: string; prefix: string; extra?: string },
): string {
  const rows: [string, string][] = describeOptions(schema, info.prefix).map((o) => [o.flag, o.details]);
  rows.push(['--help, -h', 'Print this help and exit.']);
  rows.push(['--version', 'Print the version and exit.']);
  rows.push(['--man', 'Print the manual page (roff; read it with `man -l -`) and exit.']);
  const width = Math.min(28, Math.max(...rows.map(([f]) => f.length)) + 2);
  const body = rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`).join('\n');
  return `Usage: ${info.usage}\n\n${info.description}\n\nOptions:\n${body}\n${info.extra ? `\n${info.extra}\n` : ''}`;
}

/** One setting as `--help` and the manual page describe it: the flag (with its short form) and its sentence. */
export interface OptionDescription {
  flag: string;
  details: string;
}

/** The settings of `schema` in order, each with its description, what it accepts, its variable and default. */
export function describeOptions(schema: Schema, prefix: string): OptionDescription[] {
  return Object.entries(schema).map(([key, def]) => {
    const flag = `--${flagName(key)}${def.short ? `, -${def.short}` : ''}`;
    const variable = envName(prefix, key, def);
    const dflt =
      def.default === undefined
        ? 'unset'
        : def.secret
          ? '[redacted]'
          : def.type.format
            ? def.type.format(def.default) || '(empty)'
            : String(def.default) || '(empty)';
    const details = [`${def.description}.`, `Accepts ${def.type.accepts}.`];
    details.push(`Env: ${variable ?? '(none)'}. Default: ${dflt}.`);
    if (def.repeatable) details.push('May be repeated.');
    return { flag, details: details.join(' ') };
  });
}
