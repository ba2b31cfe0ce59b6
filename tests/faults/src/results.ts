/**
 * Every case writes the figures it measured to results/latest.json, merged per case, so that docs/reliability.md
 * can quote the last run and a reader can re-run one case and see only its entry change.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const RESULTS_FILE = join(dirname(fileURLToPath(import.meta.url)), '..', 'results', 'latest.json');

/** Figures of one case: plain numbers, strings and booleans (and small objects of them). */
export type Figures = Record<string, unknown>;

/** Merges `figures` as the entry of `caseId` (with the time, Node version and pass state) into results/latest.json. */
export function recordFigures(caseId: string, figures: Figures): void {
  mkdirSync(dirname(RESULTS_FILE), { recursive: true });
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Record<string, unknown>;
  } catch {
    // First run, or a file cut short by a killed run: start again.
  }
  all[caseId] = { ...figures, node: process.version, at: new Date().toISOString() };
  const sorted = Object.fromEntries(Object.entries(all).sort(([a], [b]) => a.localeCompare(b)));
  // Written aside and renamed: a run killed mid-write never leaves half a file.
  const tmp = `${RESULTS_FILE}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(sorted, null, 2)}\n`);
  renameSync(tmp, RESULTS_FILE);
}
