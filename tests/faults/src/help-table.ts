/**
 * The bad-configuration table, built from each command's own `--help` (so a flag added tomorrow is covered
 * tomorrow): every option line gives its flag, its environment variable and what it accepts; from the last, values
 * that must be refused.
 */
import { execFileSync } from 'node:child_process';

/** One option of one command, as `--help` describes it. */
export interface HelpOption {
  flag: string;
  env: string;
  accepts: string;
}

/** One command of a service: its name, a valid positional (when it needs one), and its options. */
export interface HelpCommand {
  command: string;
  positionals: string[];
  options: HelpOption[];
}

function help(bin: string, args: string[]): string {
  return execFileSync(process.execPath, [bin, ...args, '--help'], { encoding: 'utf8', timeout: 10_000 });
}

/** Parses the options of one `--help` text (lines `  --flag[, -f]  Text. Accepts X. Env: NAME. Default: Y.`). */
export function parseOptions(text: string): HelpOption[] {
  const out: HelpOption[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s+(--[a-z0-9-]+)(?:, -\w)?\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, flag, rest] = m as unknown as [string, string, string];
    const env = /Env: ([A-Z0-9_]+)\./.exec(rest)?.[1];
    const accepts = /Accepts (.*?)\. Env:/.exec(rest)?.[1];
    if (env === undefined || accepts === undefined) continue; // --help, --version
    out.push({ flag, env, accepts });
  }
  return out;
}

/** Every command of a service (from the `Commands:` line) with its options. */
export function commandsOf(bin: string): HelpCommand[] {
  const top = help(bin, []);
  const names = /^Commands: ([^(]+)\(/m
    .exec(top)?.[1]
    ?.split(',')
    .map((s) => s.trim()) ?? ['serve'];
  return names.map((command) => {
    const text = help(bin, [command]);
    const usage = /^Usage: \S+ \S+ (.*?)\s*\[options\]/m.exec(text)?.[1] ?? '';
    // A target is a closed loopback port below 32768 (9, discard): a value wrongly accepted fails fast there.
    const positionals = /HOST/.test(usage) ? ['127.0.0.1:9'] : [];
    return { command, positionals, options: parseOptions(text) };
  });
}

/** Values `accepts` must refuse; an empty list means no generator knows this kind of value (a test failure). */
export function invalidValues(accepts: string): string[] {
  const range = /(?:integer|number|port number|number of processes) from (-?[\d.]+) to (-?[\d.]+)/.exec(accepts);
  if (/^one of /.test(accepts)) return ['bogus-choice'];
  if (/^true or false/.test(accepts)) return ['maybe'];
  if (/letters, digits/.test(accepts)) return ['bad id!', 'a'.repeat(129)];
  if (/template of at most (\d+)/.test(accepts)) {
    return ['x'.repeat(Number(/at most (\d+)/.exec(accepts)?.[1]) + 1)];
  }
  if (/path to a PEM/.test(accepts)) return ['/nonexistent/fault-suite.pem'];
  if (/networks in CIDR/.test(accepts)) return ['10.0.0.0/33', 'not-a-network'];
  if (/endpoint such as/.test(accepts)) return ['127.0.0.1:70000', '[::1'];
  if (/a port 0-65535 or a range/.test(accepts)) return ['70000', '9-3'];
  if (/host name or IP address/.test(accepts)) return ['bad host!'];
  if (/comma-separated list of an integer from/.test(accepts) && range) return [`1,${Number(range[2]) + 1}`, '1,x'];
  if (range) {
    const min = Number(range[1]);
    const max = Number(range[2]);
    const values = [
      String(max + (Number.isInteger(max) ? 1 : max)),
      min > 0 ? String(min / 2 < 1 ? 0 : min - 1) : '-1',
      'ten',
    ];
    if (/integer|port number/.test(accepts)) values.push('1.5');
    if (/or auto/.test(accepts)) values.push('automatic');
    return values;
  }
  return [];
}

/** What a message must contain to say what is accepted: the range's bounds, or each choice. */
export function acceptedTokens(accepts: string): string[] {
  const choices = /^one of (.*)$/.exec(accepts)?.[1];
  if (choices !== undefined) return choices.split(',').map((s) => s.trim());
  const range = /from (-?[\d.]+) to (-?[\d.]+)/.exec(accepts);
  if (range) return [range[1] as string, range[2] as string];
  return [];
}
