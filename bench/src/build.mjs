// Compiles the C reference servers and the load generator into bench/build/ with the system compiler, and the Go
// baseline with the system's go (Debian's golang-go) when there is one.
// Rebuilds only what is older than its source; each binary is written under a temporary name and renamed, so a
// test and a bench run building at the same moment never execute a half-written file.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, statSync } from 'node:fs';
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

/** Why the Go baseline cannot be built here, or undefined when `go` is on PATH. */
export function goMissing() {
  try {
    execFileSync('go', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'go not installed (Debian: golang-go)';
  }
}

export const GO_ECHO = join(BUILD_DIR, 'go-echo');

/** Builds baselines/go-echo into build/go-echo when go is present and the binary is older than a source. */
function buildGo(log) {
  if (goMissing()) return;
  const dir = join(BENCH_DIR, 'baselines', 'go-echo');
  const newest = Math.max(...readdirSync(dir).map((f) => mtime(join(dir, f))));
  if (mtime(GO_ECHO) >= newest) return;
  const tmp = `${GO_ECHO}.${process.pid}.tmp`;
  log('building go-echo');
  // A cache of its own under build/: a CI user's HOME may be read-only, and nothing is fetched (no dependencies).
  execFileSync('go', ['build', '-o', tmp, '.'], {
    cwd: dir,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, GOCACHE: join(BUILD_DIR, 'go-cache'), GOFLAGS: '-mod=mod', GOPROXY: 'off' },
  });
  renameSync(tmp, GO_ECHO);
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
  buildGo(log);
  return bins;
}
