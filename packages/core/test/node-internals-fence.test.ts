import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The fence's promise (README, Node internals): no module outside src/sys/node-internals.ts touches Node's internals.
// This reads every source file of every package and service, as the README error table's test reads errors.ts.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const FENCE = 'packages/core/src/sys/node-internals.ts';

/** How each internal is reached in code (comments are stripped first: naming an internal in prose is fine). */
const INTERNALS: [string, RegExp][] = [
  ['process.binding / internalBinding', /\b(?:process\.binding|internalBinding)\s*\(/],
  ['a handle (_handle)', /\._handle\b|\b_handle\s*[?:]/],
  // A handle's `onread` property; the `onread` socket option (net.Socket's documented one) is public API.
  ["a handle's onread", /\.onread\b/],
  ['onconnection', /\.onconnection\b|\bonconnection\s*:/],
  [
    'the stream state (streamBaseState, kReadBytesOrError, kLastWriteWasAsync)',
    /streamBaseState|kReadBytesOrError|kLastWriteWasAsync/,
  ],
  ['WriteWrap', /\bWriteWrap\b/],
  ['a state symbol (getOwnPropertySymbols)', /getOwnPropertySymbols/],
  ['_readableState, _writableState', /\._(?:readable|writable)State\b/],
  ['_server, _connections, _parent', /\._(?:server|connections|parent)\b/],
];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(?:ts|mts|js|mjs|cjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

/** `file: internal` for each use of an internal in `files` outside the fence. */
function usesOutsideFence(files: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of files) {
    const name = relative(root, file);
    if (name === FENCE) continue;
    const code = withoutComments(readFileSync(file, 'utf8'));
    for (const [what, pattern] of INTERNALS) if (pattern.test(code)) found.push(`${name}: ${what}`);
  }
  return found;
}

describe('the Node internals fence', () => {
  const groups = ['packages', 'services'].flatMap((group) =>
    readdirSync(join(root, group)).map((name) => join(root, group, name, 'src')),
  );
  const files = groups.flatMap((dir) => {
    try {
      return sourceFiles(dir);
    } catch {
      return [];
    }
  });

  it('holds every use of Node internals in packages/*/src and services/*/src', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(usesOutsideFence(files)).toEqual([]);
  });

  it('recognises every kind of use it looks for: each is found in the fence itself', () => {
    const code = withoutComments(readFileSync(join(root, FENCE), 'utf8'));
    const missed = INTERNALS.filter(([, pattern]) => !pattern.test(code)).map(([what]) => what);
    expect(missed).toEqual([]);
  });
});
