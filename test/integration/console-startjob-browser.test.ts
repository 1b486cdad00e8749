/** @services pg mongo graphql */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { MemoryPublisher } from '../../src/startjob/events.ts';
import { buildStartJob, type StartJob } from '../../src/startjob/index.ts';
import { testDatabase } from '../support/db.ts';
import {
  artifactDir,
  axeViolations,
  buildConsole,
  collectPageErrors,
  describeViolations,
  launchBrowser,
} from '../support/browser.ts';
import { logger, testConfig, TestWorkspace } from './startjob/helpers.ts';

/**
 * start-job's console page in Debian's Chromium: a start-job over the GraphQL and Mongo test servers,
 * its runs recorded as ETL contexts in PostgreSQL, auth on. The operator signs in, triggers an initial
 * sync from the page, sees the run finish with its counts, and opens the run's ETL context timeline.
 */
describe('console in a real browser (start-job)', () => {
  const ws = new TestWorkspace();
  let db: { url: string; drop: () => Promise<void> };
  let sj: StartJob;
  let browser: Browser;
  let shots: string;

  beforeAll(async () => {
    buildConsole();
    shots = artifactDir('console-start-job');
    await ws.reset(120);
    db = await testDatabase('sjconsole');
    const dir = mkdtempSync(join(tmpdir(), 'tagc-sjconsole-'));
    writeFileSync(join(dir, 'tokens'), 'sj-console-token\n');
    sj = await buildStartJob(
      testConfig(ws, { pgUrl: db.url, stateSchema: 'sj_state', authTokensFile: join(dir, 'tokens') }),
      { publisher: new MemoryPublisher(), logger },
    );
    await sj.start();
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await sj?.store.drop();
    await sj?.stop();
    await db?.drop();
  });

  it('signs in, triggers an initial sync, shows the run and its ETL context timeline', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = collectPageErrors(page);
    await page.goto(`${sj.address}/console`);
    await page.getByLabel('API token').fill('sj-console-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const row = page.locator('tr[data-kind="initial-sync"]');
    await row.waitFor();
    // The next scheduled run: healing's cron (testConfig: 1 January); dump is disabled, so none.
    const healing = page.locator('tr[data-kind="healing"]');
    await healing
      .locator('td')
      .nth(1)
      .filter({ hasText: /^\d{4}-01-01 \d{2}:00:00Z$/ })
      .waitFor();
    await expect(page.locator('tr[data-kind="dump"] td').nth(1).textContent()).resolves.toBe('–');
    // A refusal: healing before any initial sync succeeded; the page says why, and the row keeps it.
    await page.getByRole('button', { name: 'Run healing' }).click();
    await page
      .locator('[role="alert"], .error', { hasText: /initial sync/i })
      .first()
      .waitFor();
    await healing
      .locator('td')
      .nth(2)
      .filter({ hasText: /initial sync/i })
      .waitFor();
    await page.getByRole('button', { name: 'Run initial-sync' }).click();
    await page.getByText('scheduled initial-sync').waitFor();
    const run = page.locator('tbody tr', { hasText: 'initial-sync-' }).first();
    await run.locator('.badge', { hasText: /^success$/ }).waitFor();
    await expect(run.textContent()).resolves.toMatch(/items 120/);
    await page.screenshot({ path: join(shots, 'jobs.png'), fullPage: true });
    const violations = await axeViolations(page);
    expect(describeViolations(violations)).toBe('');

    await page.goto(`${sj.address}/console#tasks`);
    await page.getByLabel('Queue').selectOption('startjob.initial-sync');
    const first = page.locator('tbody tr th button').first();
    await first.click();
    await page.locator('.timeline li', { hasText: 'startjob.initial-sync:INITIAL' }).waitFor();
    await page.locator('.timeline li', { hasText: 'startjob.initial-sync:FINAL' }).waitFor();
    await page.screenshot({ path: join(shots, 'start-job-tasks.png'), fullPage: true });
    expect(describeViolations(await axeViolations(page))).toBe('');
    expect(errors).toEqual([]);
    await page.close();
  });
});
