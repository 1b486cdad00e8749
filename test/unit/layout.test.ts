import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/*
 * The folder rules of docs/design.md §1, checked on the source so that they stay true as code lands:
 * the extractor never imports the API, the CLI or a composition root, and code outside one of the
 * extractor's folders imports it through its index.ts.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SRC = join(ROOT, 'src');
const FOLDERS = ['replication', 'decode', 'pipeline', 'backfill', 'governance', 'state'].map((f) =>
  join(SRC, 'extractor', f),
);
/** Imported by path on purpose: loaded lazily, only when its plugin is configured. */
const LAZY = new Set([join(SRC, 'extractor', 'decode', 'pgoutput.ts')]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Relative module specifiers of static imports/exports and dynamic import() calls. */
function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm))
    out.push(m[1]!);
  return out;
}

const rel = (p: string) => relative(ROOT, p);

describe('source layout (docs/design.md §1)', () => {
  const files = sources(SRC);

  it('finds the source', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((f) => f.startsWith(join(SRC, 'extractor') + sep)).length).toBeGreaterThan(30);
  });

  it('the extractor imports neither the API, the CLI nor a composition root', () => {
    const bad: string[] = [];
    for (const file of files.filter((f) => f.startsWith(join(SRC, 'extractor') + sep)))
      for (const spec of imports(file)) {
        const target = resolve(dirname(file), spec);
        if (['api', 'cli', 'app'].some((d) => target.startsWith(join(SRC, d) + sep)))
          bad.push(`${rel(file)} -> ${rel(target)}`);
      }
    expect(bad).toEqual([]);
  });

  it("code outside an extractor folder imports it through the folder's index.ts", () => {
    const bad: string[] = [];
    for (const file of files)
      for (const spec of imports(file)) {
        const target = resolve(dirname(file), spec);
        const folder = FOLDERS.find((f) => dirname(target) === f);
        if (!folder || file.startsWith(folder + sep)) continue;
        if (target !== join(folder, 'index.ts') && !LAZY.has(target))
          bad.push(`${rel(file)} -> ${rel(target)}`);
      }
    expect(bad).toEqual([]);
  });
});
