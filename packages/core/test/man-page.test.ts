import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type CommandDef,
  defineCommand,
  defineService,
  formatManPage as formatWith,
  integer,
  option,
  type Schema,
  SERVE_EXIT_CODES,
  string,
} from '../src/index.js';

/** As the runtime calls it for plain commands: their own options and exit codes. */
const formatManPage = (def: Parameters<typeof formatWith>[0]) =>
  formatWith(def, {
    schemaOf: (_name, c: CommandDef<Schema>) => c.options,
    exitCodesOf: (c: CommandDef<Schema>) => ('exitCodes' in c && c.exitCodes ? c.exitCodes : SERVE_EXIT_CODES),
  });

const service = defineService({
  name: 'tiny-man',
  version: '1.2.3',
  description: 'A service for the manual page tests: it serves nothing. More text after the first sentence.',
  envPrefix: 'TINY_MAN',
  defaultPort: 17009,
  options: {
    limit: option({ type: integer(1, 9), default: 3, description: 'A limit with a default' }),
    // Roff traps: a backslash, and a value that would start a line with a dot.
    template: option({ type: string(), description: 'Text where \\n means a newline' }),
  },
  async serve() {
    throw new Error('not for running');
  },
  commands: {
    probe: defineCommand({
      description: '.dotted: starts with a dot, which roff would read as a request',
      args: 'HOST:PORT',
      options: { timeout: option({ type: integer(1, 60), default: 5, description: 'Seconds to wait' }) },
      exitCodes: { 0: 'answered', 3: 'refused', 2: 'bad usage' },
      async run() {
        return 0;
      },
    }),
  },
});

/** `man -l` of the page, with groff's warnings on: what a reader sees, and what groff complained about. */
function render(page: string): { shown: string; warnings: string } {
  const dir = mkdtempSync(join(tmpdir(), 'net-man-'));
  try {
    writeFileSync(join(dir, 'tiny-man.1'), page);
    const r = spawnSync('man', ['--warnings', '-l', join(dir, 'tiny-man.1')], {
      encoding: 'utf8',
      // MAN_KEEP_FORMATTING, set to anything, would keep the overstrike bold in a pipe.
      env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: undefined, PAGER: 'cat' },
      timeout: 30_000,
    });
    return { shown: r.stdout, warnings: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const hasMan = spawnSync('man', ['--version'], { stdio: 'ignore' }).status === 0;

describe('formatManPage', () => {
  it('starts with a section-1 title naming the version, and no date (the same page on every build)', () => {
    expect(formatManPage(service).split('\n')[0]).toBe('.TH "TINY-MAN" 1 "" "tiny-man 1.2.3" "User Commands"');
  });

  it('escapes backslashes and a leading dot, so that no text becomes a roff request', () => {
    const page = formatManPage(service);
    expect(page).toContain('Text where \\en means a newline');
    expect(page).toContain('\\&.dotted: starts with a dot');
    expect(page.split('\n').filter((l) => l.startsWith('.dotted'))).toEqual([]);
  });

  describe.skipIf(!hasMan)('rendered by man -l [needs man-db]', () => {
    it('renders without a groff warning, listing every option with its variable and default', () => {
      const { shown, warnings } = render(formatManPage(service));
      expect(warnings).toBe('');
      expect(shown).toContain('tiny-man - A service for the manual page tests');
      for (const expected of [
        'Env: TINY_MAN_LIMIT. Default: 3.',
        'Text where \\n means a newline',
        'Env: TINY_MAN_PORT. Default: 17009.',
        'Env: TINY_MAN_TIMEOUT. Default: 5.',
        '.dotted: starts with a dot',
      ]) {
        expect(shown).toContain(expected);
      }
    });

    it("lists serve's exit codes under EXIT STATUS and each command's in its own section, in numeric order", () => {
      const { shown } = render(formatManPage(service));
      const lines = shown.split('\n').map((l) => l.trim());
      const codesAfter = (heading: string) => {
        const start = lines.indexOf(heading);
        expect(start, `no "${heading}" in the page`).toBeGreaterThan(-1);
        const codes: string[] = [];
        for (const line of lines.slice(start + 1)) {
          if (/^[A-Z][A-Z -]+$/.test(line) && codes.length > 0) break;
          const m = /^(\d+)\s+(.+)$/.exec(line);
          if (m) codes.push(`${m[1]} ${m[2]}`);
        }
        return codes;
      };
      expect(codesAfter('EXIT STATUS')).toEqual(Object.entries(SERVE_EXIT_CODES).map(([c, w]) => `${c} ${w}`));
      expect(codesAfter('TINY-MAN PROBE')).toEqual(['0 answered', '2 bad usage', '3 refused']);
    });
  });
});
