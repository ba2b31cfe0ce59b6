import { spawnSync } from 'node:child_process';
import { CLIENT_EXIT_MEANINGS } from '@net/core';
import { describe, expect, it } from 'vitest';
import { BIN } from './helpers.js';

const hasMan = spawnSync('man', ['--version'], { stdio: 'ignore' }).status === 0;

function run(args: string[], input?: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 30_000, input });
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** `0 ok, 1 failure, ...` from the `Exit codes:` line of a `--help`, as `code meaning` strings. */
function helpExitCodes(args: string[]): string[] {
  const line =
    run([...args, '--help'])
      .stdout.split('\n')
      .find((l) => l.startsWith('Exit codes: ')) ?? '';
  return line
    .slice('Exit codes: '.length, -1)
    .split(/, (?=\d+ )/)
    .filter((c) => c !== '');
}

describe.skipIf(!hasMan)('echo-tcp --man [needs man-db]', () => {
  it('prints a manual page that man -l renders without a warning, and exits 0', () => {
    const page = run(['--man']);
    expect(page.status).toBe(0);
    const shown = spawnSync('man', ['--warnings', '-l', '-'], {
      encoding: 'utf8',
      input: page.stdout,
      env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: undefined },
      timeout: 30_000,
    });
    expect(shown.stderr).toBe('');
    // Filled and justified text: compare with the spacing folded.
    const text = shown.stdout.replace(/\s+/g, ' ');
    expect(text).toContain('echo-tcp - RFC 862 echo over TCP');
    expect(text).toContain('Env: ECHO_TCP_MAX_PER_SOURCE. Default: 0.');
  });

  it('lists the exit codes --help lists: serve its own, client and check the table every client shares', () => {
    const page = run(['--man']).stdout;
    const shown = spawnSync('man', ['-l', '-'], {
      encoding: 'utf8',
      input: page,
      env: { ...process.env, MANWIDTH: '250', MAN_KEEP_FORMATTING: undefined },
      timeout: 30_000,
    }).stdout;
    const lines = shown.split('\n').map((l) => l.trim());
    const codesAfter = (heading: string) => {
      const start = lines.indexOf(heading);
      const codes: string[] = [];
      for (const line of lines.slice(start + 1)) {
        if (/^[A-Z][A-Z -]+$/.test(line) && codes.length > 0) break;
        const m = /^(\d+)\s+(.+)$/.exec(line);
        if (m) codes.push(`${m[1]} ${m[2]}`);
      }
      return codes;
    };
    expect(codesAfter('EXIT STATUS')).toEqual(helpExitCodes(['serve']));
    const clientCodes = Object.entries(CLIENT_EXIT_MEANINGS).map(([code, what]) => `${code} ${what}`);
    expect(codesAfter('ECHO-TCP CLIENT')).toEqual(clientCodes);
    expect(codesAfter('ECHO-TCP CHECK')).toEqual(clientCodes);
    // --help of the client prints the same table, one code a line.
    const help = run(['client', '--help']).stdout;
    for (const [code, what] of Object.entries(CLIENT_EXIT_MEANINGS)) expect(help).toContain(`${code.padEnd(4)}${what}`);
  });
});
