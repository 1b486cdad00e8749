import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import {
  artifactDir,
  axeViolations,
  buildConsole,
  collectPageErrors,
  describeViolations,
  launchBrowser,
} from '../support/browser.ts';

/**
 * The operator console in Debian's Chromium (playwright-core): an extract-tasks with a file sink over
 * a fresh database, the job runner's chaos demo run once so there are ETL contexts, and a second
 * daemon with auth on for the sign-in flow. Screenshots of every page go to $TMPDIR/tag-connector-artifacts.
 */
describe('console in a real browser (extract-tasks)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let authed: Daemon | undefined;
  let base: string;
  let browser: Browser;
  let shots: string;
  const dir = mkdtempSync(join(tmpdir(), 'tagc-console-'));

  beforeAll(async () => {
    buildConsole();
    shots = artifactDir('console');
    db = await testDatabase('console');
    await sql(db.url, `CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)`);
    // One demo task (a parent and two subtasks, no failures) so the timeline has events to show.
    const demo = runCli([
      'tasks',
      'demo',
      '--pg-url',
      db.url,
      '--subtasks',
      '2',
      '--failure-rate',
      '0',
      '--detached-ratio',
      '0',
      '--timeout',
      '60',
    ]);
    const demoExit = await demo.exit;
    if (demoExit.code !== 0) throw new Error(`tasks demo failed: ${demo.stderr().slice(-2000)}`);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'console_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'events.ndjson'),
      '--serverPort',
      String(port),
      '--stream-retention-dir',
      join(dir, 'stream'),
    ]);
    await waitStreaming(d);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await d?.kill('SIGTERM');
    await authed?.kill('SIGTERM');
    await db?.drop();
  });

  /** Every call the pages make besides their own assets: "METHOD /path". */
  const calls = new Set<string>();
  async function open(hash: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = collectPageErrors(page);
    page.on('request', (r) => {
      const { pathname } = new URL(r.url());
      if (!pathname.startsWith('/console')) calls.add(`${r.method()} ${pathname}`);
    });
    await page.goto(`${base}/console${hash ? `#${hash}` : ''}`);
    return { page, errors };
  }

  async function checkA11y(page: Page): Promise<void> {
    const violations = await axeViolations(page);
    expect(describeViolations(violations)).toBe('');
  }

  it('serves the page publicly with a CSP, from dist/ only', async () => {
    const res = await fetch(`${base}/console`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const page = await res.text();
    expect(page).not.toMatch(/<script>|https?:\/\//);
    const js = await fetch(`${base}/console/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
  });

  it('/console shows the slot, the state, the sinks, the lag and its chart, and live row.insert events', async () => {
    const { page, errors } = await open('');
    await page.locator('[data-field="slot"] dd', { hasText: 'console_slot' }).waitFor();
    await page.locator('[data-field="state"] dd', { hasText: 'streaming' }).waitFor();
    await page.locator('[data-field="role"] dd', { hasText: 'leader' }).waitFor();
    await page.locator('[data-field="lag"] dd', { hasText: /\d+(\.\d)? (B|KiB|MiB)/ }).waitFor();
    await page.locator('[data-field="plugin"] dd', { hasText: 'wal2json' }).waitFor();
    await page.locator('[data-field="confirmed"] dd', { hasText: /^[0-9A-F]+\/[0-9A-F]+$/ }).waitFor();
    await page.locator('[data-field="received"] dd', { hasText: /^[0-9A-F]+\/[0-9A-F]+$/ }).waitFor();
    await page
      .locator('[data-field="wal-status"] dd', { hasText: /^(reserved|extended|unreserved)$/ })
      .waitFor();
    await page
      .locator('[data-field="safe-wal-size"] dd', { hasText: /^(unlimited|\d+(\.\d)? \w+)$/ })
      .waitFor();
    await page.locator('figure.chart canvas').waitFor();
    await page.locator('figure.chart figcaption', { hasText: 'of the last hour; latest' }).waitFor();
    await page.locator('.sink-summary li[data-sink="file"]', { hasText: 'ok' }).waitFor();
    await page.locator('[data-tail-status="live"]').waitFor();
    await sql(db.url, `INSERT INTO items VALUES (100, 'seen on the overview')`);
    await page
      .locator('tr[data-type="row.insert"]', { hasText: 'seen on the overview' })
      .waitFor({ timeout: 2000 });
    await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });
    await checkA11y(page);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('Sinks shows each sink with its state and checkpoint', async () => {
    const { page, errors } = await open('sinks');
    const row = page.locator('tr[data-sink="file"]');
    await row.waitFor();
    await expect(row.locator('td').first().textContent()).resolves.toBe('ok');
    await page.locator('tr[data-sink="stream-log"]').waitFor();
    const headers = await page.locator('thead th').allTextContents();
    expect(headers).toEqual([
      'Sink',
      'State',
      'Checkpoint',
      'Events/s',
      'Delivered',
      'Queued',
      'Retries',
      'Last error',
    ]);
    // The overview's row is delivered: a checkpoint (<commit LSN>/<seq>), no retries, no error.
    await row
      .locator('td')
      .nth(1)
      .filter({ hasText: /^[0-9A-F]+\/[0-9A-F]+\/\d+$/ })
      .waitFor();
    await expect(row.locator('td').nth(5).textContent()).resolves.toBe('0');
    await expect(row.locator('td').nth(6).textContent()).resolves.toBe('');
    await page.screenshot({ path: join(shots, 'sinks.png'), fullPage: true });
    await checkA11y(page);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('Live tail shows a committed row within 2 s, filters by table, pauses and resumes', async () => {
    const { page, errors } = await open('tail');
    await page.locator('[data-tail-status="live"]').waitFor();
    await page.getByLabel('Tables').fill('items');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('[data-tail-status="live"]').waitFor();
    await sql(db.url, `INSERT INTO items VALUES (1, 'first row for the console')`);
    // The acceptance bound of the console issue: a committed row is on screen within 2 s.
    await page
      .locator('tr[data-type="row.insert"]', { hasText: 'first row for the console' })
      .waitFor({ timeout: 2000 });
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('[data-tail-status="paused"]').waitFor();
    await sql(db.url, `INSERT INTO items VALUES (2, 'written while paused')`);
    await page.getByRole('button', { name: 'Resume' }).click();
    // Resumed with Last-Event-ID: the row committed while paused is not lost.
    await page.locator('tr[data-type="row.insert"]', { hasText: 'written while paused' }).waitFor();
    await expect(page.locator('tbody tr').count()).resolves.toBe(2);
    // The type filter: only updates from now on.
    await page.getByLabel('Types').fill('row.update');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('[data-tail-status="live"]').waitFor();
    await sql(db.url, `INSERT INTO items VALUES (3, 'an insert the filter hides')`);
    await sql(db.url, `UPDATE items SET label = 'an update the filter shows' WHERE id = 1`);
    await page.locator('tr[data-type="row.update"]', { hasText: 'an update the filter shows' }).waitFor();
    await expect(page.locator('tbody tr[data-type="row.insert"]').count()).resolves.toBe(0);
    await page.screenshot({ path: join(shots, 'live-tail.png'), fullPage: true });
    await checkA11y(page);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('Tasks lists the demo contexts and shows a task timeline', async () => {
    const { page, errors } = await open('tasks');
    const parents = await sql<{ id: number }>(
      db.url,
      `SELECT etl_context_id AS id FROM tag_connector.etl_context WHERE queue = 'demo-parent' ORDER BY 1 LIMIT 1`,
    );
    const id = parents[0]!.id;
    await page.getByRole('button', { name: `#${id}`, exact: true }).click();
    const timeline = page.locator(`[data-timeline="${id}"]`);
    await timeline.locator('li', { hasText: 'demo-parent:INITIAL' }).waitFor();
    await timeline.locator('li', { hasText: 'demo-parent:FINAL' }).waitFor();
    await page.locator('.subtasks li').first().waitFor();
    await page.getByLabel('Status').selectOption('DONE');
    await page.getByLabel('Queue').selectOption('demo-child');
    // The filtered list replaces the first one when its answer arrives.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('main table tbody tr')];
      return rows.length > 0 && rows.every((r) => r.textContent!.includes('demo-child'));
    });
    await page.screenshot({ path: join(shots, 'tasks.png'), fullPage: true });
    await checkA11y(page);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('Backfills starts one from the page and shows its progress until done', async () => {
    const { page, errors } = await open('backfills');
    await page.getByLabel('Tables to backfill').fill('public.items');
    await page.getByRole('button', { name: 'Start backfill' }).click();
    const card = page.locator('article.card', { hasText: 'public.items' });
    await card.locator('.badge', { hasText: /^done$/ }).waitFor();
    await card.locator('progress').waitFor();
    const { n } = (await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM items`))[0]!;
    await expect(card.locator('progress').getAttribute('value')).resolves.toBe(n);
    await page.screenshot({ path: join(shots, 'backfills.png'), fullPage: true });
    await checkA11y(page);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the pages call only routes of the public OpenAPI document (no private endpoints)', async () => {
    const doc = (await (await fetch(`${base}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => ({
        method: method.toUpperCase(),
        path: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`),
      })),
    );
    // The pages above read /info, the lag history, the Stream, backfills and ETL contexts.
    expect(calls.size).toBeGreaterThanOrEqual(5);
    const unlisted = [...calls].filter((call) => {
      const [method, path] = call.split(' ') as [string, string];
      return !routes.some((r) => r.method === method && r.path.test(path));
    });
    expect(unlisted).toEqual([]);
  });

  it('with auth on: the page asks for a token, refuses a wrong one, keeps it out of URLs', async () => {
    const tokens = join(dir, 'tokens');
    writeFileSync(tokens, 'console-secret-token\n');
    const port = await freePort();
    const authedBase = `http://127.0.0.1:${port}`;
    authed = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'console_auth_slot',
      '--sink',
      'file',
      '--file-path',
      join(dir, 'events-auth.ndjson'),
      '--serverPort',
      String(port),
      '--auth-tokens-file',
      tokens,
      '--stream-retention-dir',
      join(dir, 'stream-auth'),
    ]);
    await waitStreaming(authed);
    expect((await fetch(`${authedBase}/console`)).status).toBe(200);
    expect((await fetch(`${authedBase}/info`)).status).toBe(401);

    const page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
    const errors = collectPageErrors(page);
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto(`${authedBase}/console`);
    const box = page.getByLabel('API token');
    await box.waitFor();
    await page.screenshot({ path: join(shots, 'login.png'), fullPage: true });
    await checkA11y(page);
    await box.fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('The token was refused.').waitFor();
    await page.getByLabel('API token').fill('console-secret-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('[data-field="slot"] dd', { hasText: 'console_auth_slot' }).waitFor();
    await expect(page.evaluate(() => sessionStorage.getItem('tag-connector.token'))).resolves.toBe(
      'console-secret-token',
    );
    await expect(page.evaluate(() => localStorage.length)).resolves.toBe(0);
    expect(urls.filter((u) => u.includes('secret-token') || u.includes('wrong-token'))).toEqual([]);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });
});
