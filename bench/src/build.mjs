// Compiles the C reference servers and the load generator into bench/build/ with the system compiler.
// Rebuilds only what is older than its source; each binary is written under a temporary name and renamed, so a
// test and a bench run building at the same moment never execute a half-written file.
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = join(BENCH_DIR, 'build');
const SOURCES = ['echo-tcp-ref', 'echo-udp-ref', 'daytime-ref', 'loadgen'];

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** Returns the absolute path of each binary by name (`loadgen`, `echo-tcp-ref`, ...). */
export function buildAll({ cc = process.env.CC || 'cc', log = () => {} } = {}) {
  mkdirSync(BUILD_DIR, { recursive: true });
  const bins = {};
  for (const name of SOURCES) {
    const src = join(BENCH_DIR, 'c', `${name}.c`);
    const out = join(BUILD_DIR, name);
    bins[name] = out;
    if (mtime(out) >= mtime(src) && mtime(out) >= mtime(fileURLToPath(import.meta.url))) continue;
    const tmp = `${out}.${process.pid}.tmp`;
    log(`compiling ${name}.c`);
    execFileSync(cc, ['-O2', '-Wall', '-Wextra', '-pthread', '-o', tmp, src], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    renameSync(tmp, out);
  }
  return bins;
}
