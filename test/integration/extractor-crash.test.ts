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

const TABLES = new Set(['public.wl_a', 'public.wl_b']);

describe.each(['wal2json', 'pgoutput'])(
  'extract-tasks --plugin %s survives SIGKILL: nothing lost, nothing doubled (file sink)',
  (plugin) => {
    let db: { url: string; drop: () => Promise<void> };
    const dir = mkdtempSync(join(tmpdir(), 'tagc-crash-'));
    beforeAll(async () => {
      db = await testDatabase(`crash_${plugin}`);
      await setupWorkloadTables(db.url);
    });
    afterAll(async () => {
      await db.drop();
    });

    it('matches a pg_recvlogical reading after 4 SIGKILLs mid-stream', async () => {
      const file = join(dir, 'events.ndjson');
      const args = [
        'extract-tasks',
        '--plugin',
        plugin,
        '--pg-url',
        db.url,
        '--slot',
        'crash_slot',
        '--sink',
        'file',
        '--file-path',
        file,
        '--serverPort',
        '0',
        '--batch-size',
        '50',
      ];
      // The daemon creates its slot on first start; the reference slot is created right after, and
      // the comparison starts at the first change both can see.
      let d = runCli(args);
      await waitStreaming(d);
      await createReferenceSlot(db.url, 'crash_ref');
      const load = startWorkload(db.url, { rowsPerTx: 20, pauseMs: 2 });
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 700 + Math.random() * 800));
        await d.kill('SIGKILL');
        d = runCli(args);
        await waitStreaming(d);
      }
      const txs = await load.stop();
      const end = await currentWalLsn(db.url);
      const expected = await recvLogical(db.url, 'crash_ref', end, TABLES);
      // Let the daemon catch up to the end, then stop it cleanly.
      await waitForEvents(file, expected.length);
      const exit = await d.kill('SIGTERM');
      if (exit.code !== 0) console.log(d.stderr().slice(-3000));
      expect(exit.code).toBe(0);
      const got = readEvents(file);
      expect(got.duplicates).toEqual([]);
      const { missing, extra } = diffAgainstReference(expected, got.ids);
      expect(txs).toBeGreaterThan(50);
      expect(missing).toEqual([]);
      // Nothing extra either: every event we wrote is a change pg_recvlogical saw.
      if (extra.length)
        console.log({
          end,
          extra: extra.length,
          first: extra[0],
          last: extra[extra.length - 1],
          expectedFirst: expected[0]?.id,
          expectedLast: expected[expected.length - 1]?.id,
        });
      expect(extra).toEqual([]);
    }, 180_000);
  },
);
