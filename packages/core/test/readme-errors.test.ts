import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as core from '../src/index.js';

// The README's "Error codes" table is what callers branch on; this keeps it in step with errors.ts (every class, its
// code, nothing retired left in, nothing new left out), as Node's own lint rule does for its doc/api/errors.md.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** `code -> class` from the rows of the README section headed exactly `## Error codes`. */
function documentedCodes(): Map<string, string> {
  const section = readme.split(/^## Error codes$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows = new Map<string, string>();
  for (const [, code = '', name = ''] of section.matchAll(/^\| `(NET_ERR_\w+)` \| `(\w+)`/gm)) rows.set(code, name);
  return rows;
}

/**
 * `code -> class` of every NetError subclass declared in errors.ts. Read from the source, since the constructors
 * need real arguments; the exports are checked against the same list below.
 */
function thrownCodes(): Map<string, string> {
  const source = readFileSync(new URL('../src/errors.ts', import.meta.url), 'utf8');
  const codes = new Map<string, string>();
  for (const [, name = '', code = ''] of source.matchAll(
    /^export class (\w+) extends NetError \{\n(?:.*\n)*?\s+override code = '(NET_ERR_\w+)'/gm,
  )) {
    expect(codes.has(code), `${code} is declared twice`).toBe(false);
    codes.set(code, name);
  }
  return codes;
}

describe('core README error table', () => {
  it('lists every coded error class core exports, with its code, and nothing else', () => {
    const documented = documentedCodes();
    expect(documented.size).toBeGreaterThan(10);
    expect(Object.fromEntries(documented)).toEqual(Object.fromEntries(thrownCodes()));
  });

  it('names classes that @net/core exports and that carry the documented code', () => {
    for (const [code, name] of thrownCodes()) {
      const exported = (core as Record<string, unknown>)[name];
      expect(typeof exported, `${name} is not exported from @net/core`).toBe('function');
      expect((exported as { prototype: unknown }).prototype).toBeInstanceOf(core.NetError);
      expect(code).toMatch(/^NET_ERR_[A-Z0-9_]+$/);
    }
  });

  // The README's sections and every other document also name codes in prose; a code renamed or retired in
  // errors.ts must not live on there, so every `NET_ERR_` name anywhere in the repository's docs is a declared one.
  it('names, in every README and doc of the repository, only codes that errors.ts declares', () => {
    const repo = new URL('../../../', import.meta.url);
    const docs = [
      new URL('README.md', repo),
      ...['packages', 'services'].flatMap((dir) =>
        readdirSync(new URL(`${dir}/`, repo)).map((name) => new URL(`${dir}/${name}/README.md`, repo)),
      ),
      ...readdirSync(new URL('docs/', repo))
        .filter((name) => name.endsWith('.md'))
        .map((name) => new URL(`docs/${name}`, repo)),
    ];
    const declared = thrownCodes();
    let named = 0;
    for (const doc of docs) {
      let text: string;
      try {
        text = readFileSync(doc, 'utf8');
      } catch {
        continue; // a package without a README
      }
      for (const [code] of text.matchAll(/\bNET_ERR_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        named += 1;
        expect(declared.has(code), `${doc.pathname} names ${code}, which errors.ts does not declare`).toBe(true);
      }
    }
    expect(named).toBeGreaterThan(declared.size);
  });
});
