/** @services pg pubsub */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { Collector } from '../support/pubsub-read.ts';
import { requireService } from '../support/require-service.ts';

/**
 * Pub/Sub's 10 MB message limit against the real emulator (pstest): an event over it goes to the dead
 * letters and the stream goes on; without a dead-letter route the daemon stops naming the event,
 * never publishing it, never dropping it silently (docs/governance.md "Dead letters").
 */

const PROJECT = 'tagc-test';
const dir = mkdtempSync(join(tmpdir(), 'tagc-pslimit-'));
/** Incompressible text whose event is over 10 MB. */
const big = () => randomBytes(7_700_000).toString('base64');

async function startDaemon(db: string, tag: string, topic: string, extra: string[]): Promise<Daemon> {
  const d = runCli(
    [
      'extract-tasks',
      '--pg-url',
      db,
      '--slot',
      `pslimit_${tag}`,
      '--preset',
      'none',
      '--sink',
      'pubsub',
      '--project-id',
      PROJECT,
      '--topic',
      topic,
      '--serverPort',
      String(await freePort()),
      '--stream-retention-bytes',
      '0',
      '--sink-retry-limit',
      '3',
      ...extra,
    ],
    { PUBSUB_EMULATOR_HOST: requireService('pubsub') },
  );
  await waitStreaming(d);
  return d;
}

describe('Pub/Sub: an event over 10 MB, pstest', () => {
  let db: { url: string; drop: () => Promise<void> };
  const daemons: Daemon[] = [];

  beforeAll(async () => {
    requireService('pubsub');
    db = await testDatabase('pslimit');
    await sql(db.url, `CREATE TABLE docs (id int PRIMARY KEY, body text)`);
  });

  afterAll(async () => {
    for (const d of daemons) await d.kill();
    await db?.drop();
  });

  it('goes to the dead letters, and the events around it are published', async () => {
    const tag = `dl_${process.pid}`;
    const topic = `pslimit-dl-${process.pid}`;
    const letters = join(dir, 'dead-letters.ndjson');
    const d = await startDaemon(db.url, tag, topic, ['--dead-letter', `file:${letters}`]);
    daemons.push(d);
    const collector = await new Collector(PROJECT).subscribe(topic);
    try {
      const body = big();
      await sql(db.url, `INSERT INTO docs VALUES (1, 'small one')`);
      await sql(db.url, `INSERT INTO docs VALUES (2, $1)`, [body]);
      await sql(db.url, `INSERT INTO docs VALUES (3, 'small three')`);

      const got = await collector.waitFor(2, { quietMs: 5000 });
      const ids = got.map((m) => (JSON.parse(m.data) as { data: { after: { id: number } } }).data.after.id);
      expect(ids.sort()).toEqual([1, 3]);

      const deadline = Date.now() + 30_000;
      while (!existsSync(letters) || !readFileSync(letters, 'utf8').includes('\n')) {
        if (Date.now() > deadline) throw new Error(`no dead letter: ${d.stderr().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const lines = readFileSync(letters, 'utf8').trim().split('\n');
      expect(lines).toHaveLength(1);
      const letter = JSON.parse(lines[0]!) as { reason: string; event: { data: { after: unknown } } };
      expect(letter).toMatchObject({ sink: 'pubsub', topic, table: 'public.docs', type: 'row.insert' });
      expect(letter.reason).toMatch(/larger than pubsub's limit of \d+ bytes/);
      expect(letter.event.data.after).toEqual({ id: 2, body });
      expect(d.stderr()).not.toContain(body.slice(0, 40));
      expect(d.proc.exitCode).toBeNull();
    } finally {
      await collector.close();
      await d.kill();
    }
  });

  it('without a dead-letter route stops the daemon naming the event, and publishes nothing of it', async () => {
    const tag = `stop_${process.pid}`;
    const topic = `pslimit-stop-${process.pid}`;
    const d = await startDaemon(db.url, tag, topic, []);
    daemons.push(d);
    const collector = await new Collector(PROJECT).subscribe(topic);
    try {
      const body = big();
      await sql(db.url, `INSERT INTO docs VALUES (10, $1)`, [body]);
      const exit = await Promise.race([
        d.exit,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(d.stderr().slice(-3000))), 60000),
        ),
      ]);
      expect(exit.code).not.toBe(0);
      expect(d.stderr()).toMatch(/public\.docs.*larger than pubsub's limit of \d+ bytes/);
      expect(d.stderr()).not.toContain(body.slice(0, 40));
      expect(await collector.waitFor(1, { quietMs: 3000, timeoutMs: 5000 })).toHaveLength(0);
    } finally {
      await collector.close();
    }
  });
});
