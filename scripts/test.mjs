#!/usr/bin/env node
// The README's test command (`npm test`): installs what is missing, builds, lints, runs every vitest project in
// one process, and ends with the plain line `N passed, N failed` that CI reads.
// Options: --no-install (skip pnpm install), --node <path> (run the suites on another Node binary),
//          --report <file> (where vitest writes its JSON report), and anything after `--` goes to vitest.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pnpm } from './pnpm.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const own = sep === -1 ? argv : argv.slice(0, sep);
const passThrough = sep === -1 ? [] : argv.slice(sep + 1);
const flag = (name) => own.includes(name);
const value = (name, fallback) => {
  const i = own.indexOf(name);
  return i === -1 ? fallback : own[i + 1];
};

const node = value('--node', process.execPath);
const report = value('--report', join(root, '.vitest-report.json'));

// Lint findings do not stop the tests (a formatting slip should not hide a broken service), but they count as a
// failure in the closing line, so CI stays red until they are fixed.
let lintFailed = false;
if (!flag('--no-install')) {
  pnpm(['install', '--frozen-lockfile']);
  pnpm(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
  lintFailed = pnpm(['exec', 'biome', 'check', '.'], { allowFailure: true }).status !== 0;
  if (lintFailed) console.error('lint: biome check failed (counted as 1 failed test below)');
}

rmSync(report, { force: true });
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const run = spawnSync(
  node,
  [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...passThrough],
  { stdio: 'inherit', env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH}` } },
);

if (!existsSync(report)) {
  console.error(`vitest wrote no report (exit ${run.status ?? run.signal})`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const r = JSON.parse(readFileSync(report, 'utf8'));
const skipped = r.numPendingTests + r.numTodoTests;
const failed = r.numFailedTests + (lintFailed ? 1 : 0);
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(run.status === 0 && failed === 0 && r.success !== false ? 0 : 1);
