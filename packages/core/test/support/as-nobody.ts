/**
 * Runs a snippet of core code as nobody (uid 65534), for the EACCES tests: the suites run as root, which may bind
 * anything. Node 20 cannot load .ts, so the modules the snippet imports are transpiled with the TypeScript
 * compiler into a temporary folder, following their relative imports, so that a new import in core can never
 * leave the child without a module.
 *
 * Everything the child runs lives in a fresh folder of mode 0755 in the system's temporary directory, not in the
 * checkout: a checkout under a directory other users cannot traverse (a clone in root's home, any `mktemp -d`
 * folder, mode 0700) would make the spawn fail with EACCES before the code under test runs. That includes the Node
 * binary when nobody cannot execute the one running the tests (CI's Node 24 lives in the checkout's .cache).
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const RELATIVE_IMPORT = /from '(\.{1,2}\/[\w/.-]+)\.js'/g;

/**
 * Transpiles `entry` (a module's path in src/, without extension: `net/listen`) and every module it imports, into
 * `dir`, keeping src/'s folders.
 */
async function transpileClosure(entry: string, dir: string): Promise<void> {
  const pending = [entry];
  const done = new Set<string>();
  while (pending.length > 0) {
    const name = pending.pop() as string;
    if (done.has(name)) continue;
    done.add(name);
    const source = await fs.readFile(path.join(SRC, `${name}.ts`), 'utf8');
    for (const m of source.matchAll(RELATIVE_IMPORT)) {
      pending.push(path.posix.normalize(path.posix.join(path.posix.dirname(name), m[1] as string)));
    }
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    await fs.mkdir(path.dirname(path.join(dir, `${name}.js`)), { recursive: true });
    await fs.writeFile(path.join(dir, `${name}.js`), outputText);
  }
}

/** Whether uid 65534 can execute `node` where it is (every directory above it traversable, the file executable). */
function nobodyCanRun(node: string): boolean {
  const probe = spawnSync(node, ['-e', ''], { uid: 65534, gid: 65534, cwd: '/', stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/**
 * A Node binary that nobody can execute: the running one when it can, else a hard link to it in `dir` (same file
 * system, and the file itself executable by others), else a copy of mode 0755 in `dir`.
 */
async function nodeForNobody(dir: string): Promise<string> {
  if (nobodyCanRun(process.execPath)) return process.execPath;
  const linked = path.join(dir, 'node');
  try {
    await fs.link(process.execPath, linked);
    if (nobodyCanRun(linked)) return linked;
  } catch {
    // another file system: copy below
  }
  const copy = path.join(dir, 'node-copy');
  await fs.copyFile(process.execPath, copy);
  await fs.chmod(copy, 0o755);
  if (!nobodyCanRun(copy)) throw new Error(`uid 65534 cannot run a copy of ${process.execPath} in ${dir}`);
  return copy;
}

/**
 * Runs `script` (an ES module that imports `./ENTRY.js`, e.g. `./net/listen.js`, and prints one JSON line) as uid 65534 and returns the
 * parsed line. The temporary folder is removed afterwards.
 * @throws {Error} with the child's whole output when it printed no JSON (e.g. a module failed to load).
 */
export async function runAsNobody<T>(entry: string, script: string): Promise<T> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'net-as-nobody-'));
  try {
    await fs.chmod(dir, 0o755);
    await transpileClosure(entry, dir);
    await fs.writeFile(path.join(dir, 'package.json'), '{"type":"module"}');
    await fs.writeFile(path.join(dir, 'main.js'), script);
    const node = await nodeForNobody(dir);
    const child = spawn(node, [path.join(dir, 'main.js')], { uid: 65534, gid: 65534, cwd: dir });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    await once(child, 'exit');
    try {
      return JSON.parse(out) as T;
    } catch {
      throw new Error(`the child running as nobody printed no JSON result:\n${out}`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
