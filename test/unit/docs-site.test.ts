import { describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The docs as a site in the repo (issue 23): README.md is a short front door, docs/README.md indexes
 * every page, no link between them is dead, and code comments cite the design contracts in
 * docs/design.md (by sections that exist), never the out-of-repo design document they once cited.
 */
const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const docs = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'));
const pages = ['README.md', ...docs.map((f) => `docs/${f}`)];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
function anchors(markdown: string): Set<string> {
  const out = new Set<string>();
  for (const m of markdown.replace(/```[\s\S]*?```/g, '').matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const slug = m[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    let s = slug;
    for (let i = 1; out.has(s); i++) s = `${slug}-${i}`;
    out.add(s);
  }
  return out;
}

function sourceFiles(dir: string): string[] {
  const abs = join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { recursive: true })
    .map((f) => join(dir, String(f)))
    .filter((f) => /\.(ts|mts|mjs|js|sh|go|yaml|tpl|json)$/.test(f) || !/\.\w+$/.test(f))
    .filter((f) => !f.includes('node_modules') && statSync(join(ROOT, f)).isFile());
}

describe('docs as a site', () => {
  it('README.md is a front door of at most 250 lines', () => {
    expect(read('README.md').split('\n').length).toBeLessThanOrEqual(250);
  });

  it('docs/README.md lists every page of docs/', () => {
    const index = read('docs/README.md');
    for (const f of docs.filter((d) => d !== 'README.md')) expect(index).toContain(`](${f})`);
  });

  it('every relative link in README.md and docs/ reaches a file (and its heading)', () => {
    const dead: string[] = [];
    for (const page of pages) {
      const text = read(page).replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/i.test(target)) continue; // http(s):, mailto:
        const [file, anchor] = target.split('#') as [string, string | undefined];
        const path = file ? join(dirname(page), file) : page;
        if (!existsSync(join(ROOT, path))) dead.push(`${page}: ${target}`);
        else if (anchor && path.endsWith('.md') && !anchors(read(path)).has(anchor))
          dead.push(`${page}: ${target} (no such heading)`);
      }
    }
    expect(dead).toEqual([]);
  });

  it('code cites docs/design.md by sections it has, never the design document outside the repo', () => {
    const sections = new Set([...read('docs/design.md').matchAll(/^## (\d+)\./gm)].map((m) => m[1]));
    const outside = new RegExp(['DESIGN', '(§|\\.md)'].join(' ?'));
    const self = relative(ROOT, fileURLToPath(import.meta.url));
    const wrong: string[] = [];
    for (const f of ['src', 'test', 'script', 'console', 'bench', 'soak', 'deploy'].flatMap(sourceFiles)) {
      if (f === self) continue;
      const text = read(f);
      if (outside.test(text)) wrong.push(`${f}: cites ${outside.exec(text)![0]}`);
      for (const m of text.matchAll(/docs\/design\.md §(\d+)/g))
        if (!sections.has(m[1])) wrong.push(`${f}: docs/design.md §${m[1]} does not exist`);
    }
    expect(wrong).toEqual([]);
  });
});
