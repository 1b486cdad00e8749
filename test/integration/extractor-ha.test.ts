import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming } from '../support/daemon.ts';
import { testDatabase } from '../support/db.ts';
import {
  createReferenceSlot,
  currentWalLsn,
  readEvents,
  recvLogical,
  diffAgainstReference,
  waitForEvents,
} from '../support/recvlogical.ts';
import { setupWorkloadTables, startWorkload } from '../support/workload.ts';

describe('high availability: two daemons on one slot', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('ha');
    await setupWorkloadTables(db.url);
  });
  afterAll(async () => {
    await db.drop();
  });

  it('the standby takes over within 10 s of the leader being SIGKILLed, nothing lost or doubled', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tagc-ha-')), 'events.ndjson');
    const args = [
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'ha_slot',
      '--sink',
      'file',
      '--file-path',
      file,
      '--serverPort',
      '0',
    ];
    const leader = runCli(args);
    await waitStreaming(leader);
    const standby = runCli(args);
    const t0 = Date.now();
    while (!/standby/.test(standby.stderr()) && Date.now() - t0 < 20000)
      await new Promise((r) => setTimeout(r, 50));
    expect(standby.stderr()).toMatch(/standby/);
    await createReferenceSlot(db.url, 'ha_ref');
    const load = startWorkload(db.url, { rowsPerTx: 10, pauseMs: 5 });
    await new Promise((r) => setTimeout(r, 1500));
    await leader.kill('SIGKILL');
    const killedAt = Date.now();
    await waitStreaming(standby, 20000);
    const takeoverMs = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, 1000));
    await load.stop();
    const expected = await recvLogical(
      db.url,
      'ha_ref',
      await currentWalLsn(db.url),
      new Set(['public.wl_a', 'public.wl_b']),
    );
    await waitForEvents(file, expected.length);
    expect((await standby.kill('SIGTERM')).code).toBe(0);
    const got = readEvents(file);
    expect(takeoverMs).toBeLessThan(10_000);
    expect(got.duplicates).toEqual([]);
    expect(diffAgainstReference(expected, got.ids).missing).toEqual([]);
  }, 120_000);
});
