// Bundles the operator console (console/) into dist/console: one ES module and one stylesheet under
// assets/, and a page per daemon (extract-tasks.html, start-job.html) that loads them. No CDN, no
// inline code (the server's CSP forbids it). Prints the gzipped sizes; the budget is checked by
// test/unit/console-bundle.test.ts.
import { build } from 'esbuild';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('../', import.meta.url));
const out = process.argv[2] ?? join(root, 'dist', 'console');
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, 'assets'), { recursive: true });
await build({
  entryPoints: { app: join(root, 'console', 'src', 'main.ts') },
  outdir: join(out, 'assets'),
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome110', 'firefox110', 'safari16'],
  legalComments: 'none',
  logLevel: 'warning',
});
const template = readFileSync(join(root, 'console', 'page.html'), 'utf8');
for (const daemon of ['extract-tasks', 'start-job'])
  writeFileSync(join(out, `${daemon}.html`), template.replaceAll('{{daemon}}', daemon));
let total = 0;
for (const f of readdirSync(join(out, 'assets')))
  total += gzipSync(readFileSync(join(out, 'assets', f))).length;
if (!process.env.QUIET) console.error(`console: ${out} (${(total / 1024).toFixed(1)} KB gzipped)`);
