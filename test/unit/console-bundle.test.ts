import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

describe('the console bundle (script/build-console.mjs)', () => {
  const out = join(mkdtempSync(join(tmpdir(), 'tagc-console-build-')), 'console');
  execFileSync(process.execPath, [join(ROOT, 'script', 'build-console.mjs'), out], {
    env: { ...process.env, QUIET: '1' },
  });
  const assets = readdirSync(join(out, 'assets'));

  it('stays within 150 KB gzipped', () => {
    const total = assets.reduce((n, f) => n + gzipSync(readFileSync(join(out, 'assets', f))).length, 0);
    process.stdout.write(`console bundle: ${(total / 1024).toFixed(1)} KB gzipped (${assets.join(', ')})\n`);
    expect(total).toBeLessThanOrEqual(150 * 1024);
  });

  it('loads nothing from elsewhere and has no inline code (the CSP forbids both)', () => {
    expect(assets.sort()).toEqual(['app.css', 'app.js']);
    for (const page of ['extract-tasks.html', 'start-job.html']) {
      const html = readFileSync(join(out, page), 'utf8');
      expect(html).not.toMatch(/https?:\/\//);
      expect(html).not.toMatch(/<script>|<style|\son\w+=/);
      expect(html).toContain('<script type="module" src="/console/assets/app.js">');
    }
    const js = readFileSync(join(out, 'assets', 'app.js'), 'utf8');
    expect(js).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)\./);
  });
});
