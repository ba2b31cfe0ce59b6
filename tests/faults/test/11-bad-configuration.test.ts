import { runToExit } from '@net/testkit';
import { describe, expect, it } from 'vitest';
import { binOf, SERVICES } from '../src/bins.js';
import { acceptedTokens, commandsOf, invalidValues } from '../src/help-table.js';
import { recordFigures } from '../src/results.js';
import { runPool } from '../src/tcp-load.js';

interface Row {
  service: string;
  command: string;
  setting: string;
  form: 'flag' | 'env';
  value: string;
  accepts: string;
  args: string[];
  env: Record<string, string>;
}

/** The whole table: every option of every command of every service, by flag and by variable, each bad value. */
function table(): { rows: Row[]; noGenerator: string[] } {
  const rows: Row[] = [];
  const noGenerator: string[] = [];
  for (const service of SERVICES) {
    const bin = binOf(service);
    for (const cmd of commandsOf(bin)) {
      for (const opt of cmd.options) {
        const values = invalidValues(opt.accepts);
        if (values.length === 0) noGenerator.push(`${service} ${cmd.command} ${opt.flag}: ${opt.accepts}`);
        // `serve` gets a free port, so that a value wrongly accepted shows as "did not exit", not as a port clash;
        // except for the port's own rows (a flag would override the variable under test).
        const extra = cmd.command === 'serve' && !/port$|PORT$/.test(opt.flag) ? ['--port=0'] : [];
        // Bounded for time (each row is a process start): up to two bad values by flag, the first by variable.
        values.slice(0, 2).forEach((value, n) => {
          const base = { service, command: cmd.command, value, accepts: opt.accepts };
          const args = [cmd.command, ...cmd.positionals, ...extra];
          rows.push({ ...base, setting: opt.flag, form: 'flag', args: [...args, `${opt.flag}=${value}`], env: {} });
          if (n === 0) rows.push({ ...base, setting: opt.env, form: 'env', args, env: { [opt.env]: value } });
        });
      }
    }
  }
  return { rows, noGenerator };
}

/** What is wrong with the outcome of one row, or undefined when it is right. */
function judge(row: Row, code: number | null, stderr: string): string | undefined {
  const problems: string[] = [];
  if (code !== 2) problems.push(`exit ${code} (expected 2)`);
  if (!stderr.includes(row.setting)) problems.push('message does not name the setting');
  // A long value may be shortened in the message: its first 32 characters must be there.
  if (!stderr.includes(row.value.slice(0, 32))) problems.push('message does not name the value');
  if (!/expected|accept/i.test(stderr)) problems.push('message does not say what is accepted');
  for (const token of acceptedTokens(row.accepts)) {
    if (!stderr.includes(token)) problems.push(`message lacks "${token}" of what is accepted`);
  }
  if (problems.length === 0) return undefined;
  return `${row.service} ${row.command} ${row.form === 'flag' ? `${row.setting}=${row.value.slice(0, 40)}` : `${row.setting}=${row.value.slice(0, 40)} (env)`}: ${problems.join('; ')}; stderr: ${JSON.stringify(stderr.trim().slice(0, 200))}`;
}

describe('case 11: bad configuration, every flag and variable of every service', () => {
  it('exits 2 with a message naming the setting, the value and what is accepted, for every invalid value', async () => {
    const { rows, noGenerator } = table();
    const failures: string[] = [];
    const started = performance.now();
    await runPool(rows.length, 6, async (i) => {
      const row = rows[i] as Row;
      // Env of the parent must not leak a valid setting of the same name into the row.
      const r = await runToExit(binOf(row.service as (typeof SERVICES)[number]), row.args, {
        env: { ...row.env },
        timeoutMs: 6_000,
      }).catch((err: Error) => ({ code: null, stderr: `did not exit: ${err.message.slice(0, 200)}` }));
      const bad = judge(row, r.code, r.stderr);
      if (bad) failures.push(bad);
    });
    const perService = Object.fromEntries(
      SERVICES.map((s) => [
        s,
        {
          rows: rows.filter((r) => r.service === s).length,
          settings: new Set(rows.filter((r) => r.service === s).map((r) => `${r.command} ${r.setting}`)).size,
          failed: failures.filter((f) => f.startsWith(`${s} `)).length,
        },
      ]),
    );
    recordFigures('11-bad-configuration', {
      rows: rows.length,
      settingsCovered: new Set(rows.map((r) => `${r.service} ${r.command} ${r.setting}`)).size,
      perService,
      failed: failures.length,
      failures: failures.slice(0, 30),
      optionsWithoutGenerator: noGenerator,
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      pass: failures.length === 0 && noGenerator.length === 0,
    });
    expect(noGenerator).toEqual([]);
    expect(failures).toEqual([]);
  });
});
