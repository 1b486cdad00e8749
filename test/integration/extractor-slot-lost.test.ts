import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';

describe('a lost slot stops the daemon with the recovery steps (never silently recreated)', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('slotlost');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('exits 3 naming the recovery when its slot is dropped under it', async () => {
    const d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      'lost_slot',
      '--sink',
      'file',
      '--file-path',
      join(mkdtempSync(join(tmpdir(), 'tagc-lost-')), 'e.ndjson'),
      '--serverPort',
      '0',
    ]);
    await waitStreaming(d);
    // Someone drops the slot: kill its walsender, then drop it before the daemon reconnects.
    const deadline = Date.now() + 20000;
    for (;;) {
      await sql(
        db.url,
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'lost_slot' AND active_pid IS NOT NULL`,
      );
      try {
        await sql(db.url, `SELECT pg_drop_replication_slot('lost_slot')`);
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
    }
    const exit = await Promise.race([d.exit, new Promise<null>((r) => setTimeout(() => r(null), 30000))]);
    expect(exit?.code).toBe(3);
    expect(d.stderr()).toMatch(/E_SLOT_LOST/);
    expect(d.stderr()).toMatch(/Not recreating it/);
    const slots = await sql(db.url, `SELECT 1 FROM pg_replication_slots WHERE slot_name = 'lost_slot'`);
    expect(slots).toHaveLength(0);
  }, 60_000);
});
