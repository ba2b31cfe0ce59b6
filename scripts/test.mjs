#!/usr/bin/env node
// The README's test command (`npm test`): installs what is missing, builds, lints, typechecks (sources and tests),
// runs every vitest project in one process, and ends with the plain line `N passed, N failed` that CI reads.
// Options: --no-install (skip pnpm install, build, lint and typecheck), --node <path> (run the suites on another
//          Node binary), --report <file> (where vitest writes its JSON report), and anything after `--` goes to
//          vitest.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
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

// Lint and typecheck findings do not stop the tests (a formatting slip or a wrong type in a test should not hide a
// broken service), but each counts as one failure in the closing line, so CI stays red until they are fixed. The
// build compiles src/ only; the typecheck is what compiles test/ (vitest strips types without checking them).
const failedChecks = [];
function check(name, args) {
  if (pnpm(args, { allowFailure: true }).status === 0) return;
  failedChecks.push(name);
  console.error(`${name}: pnpm ${args.join(' ')} failed (counted as 1 failed test below)`);
}
if (!flag('--no-install')) {
  pnpm(['install', '--frozen-lockfile']);
  pnpm(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
  check('lint', ['exec', 'biome', 'check', '.']);
  check('typecheck', ['exec', 'turbo', 'run', 'typecheck', '--continue', '--output-logs=errors-only']);
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
  console.log(`0 passed, ${1 + failedChecks.length} failed`);
  process.exit(1);
}
const r = JSON.parse(readFileSync(report, 'utf8'));
// A file whose set-up fails (a beforeAll that throws, an import error) fails without a failed test: vitest reports
// its tests as skipped. Count each such file as one failure, so the closing line never says 0 failed on a red run.
for (const file of r.testResults ?? []) {
  if (file.status === 'failed' && !file.assertionResults?.some((t) => t.status === 'failed')) {
    failedChecks.push(`suite ${relative(root, file.name)}`);
    console.error(`suite ${relative(root, file.name)} failed outside its tests: ${file.message ?? ''}`.trim());
  }
}
if (failedChecks.length > 0) {
  // Recorded in the report too, so that a reader of the report alone (.ci/run) counts them.
  r.failedChecks = failedChecks;
  writeFileSync(report, JSON.stringify(r));
}
const skipped = r.numPendingTests + r.numTodoTests;
const failed = r.numFailedTests + failedChecks.length;
console.log(`${r.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(run.status === 0 && failed === 0 && r.success !== false ? 0 : 1);
