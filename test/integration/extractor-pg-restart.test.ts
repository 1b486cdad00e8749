import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming } from '../support/daemon.ts';
import { createDatabase, PgCluster } from '../support/pg.ts';
import {
  createReferenceSlot,
  currentWalLsn,
  readEvents,
  recvLogical,
  diffAgainstReference,
  waitForEvents,
} from '../support/recvlogical.ts';
import { setupWorkloadTables, startWorkload } from '../support/workload.ts';

const TABLES = new Set(['public.wl_a', 'public.wl_b']);

describe('extract-tasks survives PostgreSQL restarts', () => {
  // A private cluster: restarting the shared one would disturb the other test files.
  const cluster = new PgCluster();
  let url: string;
  beforeAll(async () => {
    await cluster.start();
    url = await createDatabase(cluster.url(), 'restart');
    await setupWorkloadTables(url);
  });
  afterAll(async () => {
    await cluster.destroy();
  });

  it('reconnects and resumes with nothing lost or doubled (fast and immediate restarts)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tagc-restart-')), 'events.ndjson');
    const d = runCli([
      'extract-tasks',
      '--pg-url',
      url,
      '--slot',
      'restart_slot',
      '--sink',
      'file',
      '--file-path',
      file,
      '--serverPort',
      '0',
    ]);
    await waitStreaming(d);
    await createReferenceSlot(url, 'restart_ref');
    const load = startWorkload(url, { rowsPerTx: 10, pauseMs: 5 });
    await new Promise((r) => setTimeout(r, 1500));
    await cluster.restart('fast');
    await new Promise((r) => setTimeout(r, 1500));
    await cluster.restart('immediate');
    await new Promise((r) => setTimeout(r, 1500));
    const txs = await load.stop();
    const end = await currentWalLsn(url);
    const expected = await recvLogical(url, 'restart_ref', end, TABLES);
    await waitForEvents(file, expected.length);
    const exit = await d.kill('SIGTERM');
    if (exit.code !== 0) console.log(d.stderr().slice(-3000));
    expect(exit.code).toBe(0);
    expect(d.stderr()).toMatch(/reconnecting/);
    const got = readEvents(file);
    expect(txs).toBeGreaterThan(20);
    expect(got.duplicates).toEqual([]);
    const { missing, extra } = diffAgainstReference(expected, got.ids);
    expect(missing).toEqual([]);
    expect(extra).toEqual([]);
  }, 180_000);
});
