import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// core's modules form a tree of parts (sys and net at the bottom, runtime on top): an import circle, even a type-only
// one, is a module that cannot be read without the one that reads it, and it is what kept the runtime's exit codes
// and worker variables duplicated between two files. This walks every import and re-export of packages/core/src
// with the TypeScript compiler's own pre-processor (type-only imports and `import()` included) and fails on any
// circle, naming it.

const srcDir = fileURLToPath(new URL('../src/', import.meta.url));

/** Every `.ts` file under `dir`, as paths relative to it with `/` separators. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

/**
 * The import graph of `files` (path -> source text): each file's relative imports resolved to files of the same
 * set (`./x.js` -> `x.ts`, `./dir` -> `dir/index.ts`); package imports (`node:net`, `pino`) are left out.
 */
function importGraph(files: ReadonlyMap<string, string>): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [file, text] of files) {
    const info = ts.preProcessFile(text, true, true);
    const targets: string[] = [];
    for (const { fileName } of info.importedFiles) {
      if (!fileName.startsWith('.')) continue;
      const joined = path.posix.normalize(path.posix.join(path.posix.dirname(file), fileName));
      const base = joined.replace(/\.(js|ts|mjs)$/, '');
      const target = [`${base}.ts`, `${base}/index.ts`].find((candidate) => files.has(candidate));
      if (target === undefined) throw new Error(`${file}: import "${fileName}" resolves to no file of the set`);
      if (!targets.includes(target)) targets.push(target);
    }
    graph.set(file, targets);
  }
  return graph;
}

/** Every elementary circle found by a depth-first walk, each once, as `a.ts -> b.ts -> a.ts`. */
function importCycles(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const cycles = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') {
        const loop = stack.slice(stack.indexOf(next));
        // The same circle entered elsewhere: start it at its smallest name so that it is reported once.
        const start = loop.indexOf([...loop].sort()[0] as string);
        const rotated = [...loop.slice(start), ...loop.slice(0, start)];
        cycles.add([...rotated, rotated[0]].join(' -> '));
      } else if (state.get(next) === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of [...graph.keys()].sort()) if (state.get(file) === undefined) visit(file);
  return [...cycles].sort();
}

describe('import circles', () => {
  it('finds a circle made only of type imports, and names every module in it', () => {
    const files = new Map([
      ['runtime/service.ts', "import type { Readiness } from './lifecycle.js';\nexport const EXIT = { OK: 0 };"],
      ['runtime/lifecycle.ts', "import type { RunningService } from './service.js';\nexport type Readiness = {};"],
      ['net/listen.ts', "import net from 'node:net';\nimport { parse } from './endpoint.js';"],
      ['net/endpoint.ts', 'export function parse() {}'],
    ]);
    expect(importCycles(importGraph(files))).toEqual([
      'runtime/lifecycle.ts -> runtime/service.ts -> runtime/lifecycle.ts',
    ]);
  });

  it('finds a circle through a re-export and a folder index, across three modules', () => {
    const files = new Map([
      ['a.ts', "export * from './b.js';"],
      ['b.ts', "export { c } from './sub';"],
      ['sub/index.ts', "import { a } from '../a.js';\nexport const c = a;"],
    ]);
    expect(importCycles(importGraph(files))).toEqual(['a.ts -> b.ts -> sub/index.ts -> a.ts']);
  });

  it('reports no circle for a graph where imports only point one way', () => {
    const files = new Map([
      ['runtime/serve.ts', "import { listen } from '../net/listen.js';\nimport type { X } from './definition.js';"],
      ['runtime/definition.ts', "import type { Endpoint } from '../net/endpoint.js';"],
      ['net/listen.ts', "import { parse } from './endpoint.js';"],
      ['net/endpoint.ts', ''],
    ]);
    expect(importCycles(importGraph(files))).toEqual([]);
  });

  it('has no import circle in packages/core/src, type-only imports included', () => {
    const files = new Map(sourceFiles(srcDir).map((file) => [file, readFileSync(path.join(srcDir, file), 'utf8')]));
    expect(files.size).toBeGreaterThan(20);
    expect(importCycles(importGraph(files))).toEqual([]);
  });
});
