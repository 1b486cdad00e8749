import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

/** Debian's chromium (script/bootstrap.d/50-chromium), or TAG_CONNECTOR_CHROMIUM. */
export function chromiumPath(): string {
  const candidates = [process.env.TAG_CONNECTOR_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error(
    "chromium is missing: run script/bootstrap (its step 50-chromium installs Debian's chromium) or " +
      'set TAG_CONNECTOR_CHROMIUM to a Chromium binary',
  );
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    // --no-sandbox: the tests run as root on CI, where Chromium's sandbox refuses to start.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** Builds the console into dist/console (esbuild, well under a second) so the daemons serve the current code. */
export function buildConsole(): void {
  execFileSync(process.execPath, [join(ROOT, 'script', 'build-console.mjs')], {
    cwd: ROOT,
    env: { ...process.env, QUIET: '1' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

/** Where a run keeps its screenshots: $TMPDIR/tag-connector-artifacts/<suite>-<time>/ (never the repo). */
export function artifactDir(suite: string): string {
  const dir = join(
    process.env.TMPDIR ?? tmpdir(),
    'tag-connector-artifacts',
    `${suite}-${new Date().toISOString().replace(/[:.]/g, '-')}`,
  );
  mkdirSync(dir, { recursive: true });
  process.stdout.write(`console screenshots: ${dir}\n`);
  return dir;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * axe-core's WCAG 2 A/AA rules on the page as it is now. Injected through the DevTools protocol
 * (page.evaluate), which the page's CSP does not apply to: the CSP stays as strict as in production.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, o: unknown) => Promise<unknown> } })
      .axe;
    return axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } });
  });
  return (result as { violations: AxeViolation[] }).violations;
}

export function describeViolations(v: AxeViolation[]): string {
  return v
    .map((x) => `${x.id} (${x.impact}): ${x.help} at ${x.nodes.map((n) => n.target.join(' ')).join(', ')}`)
    .join('\n');
}

/** Errors the page reports (script errors, CSP refusals, failed loads): a healthy page has none. */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // A 401 before signing in, a 404 of an API a daemon lacks and a 409 refusal of a job are answers
    // the page shows, not faults.
    if (msg.type() === 'error' && !/status of 40[149]/.test(msg.text()))
      errors.push(`console: ${msg.text()}`);
  });
  return errors;
}
