import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runCli } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';

/** `tag-connector backfill start|status|cancel` on the state schema (no daemon needed to queue). */
describe('tag-connector backfill (CLI)', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('backfill_cli');
    await sql(db.url, `CREATE TABLE public.cli_items (id int PRIMARY KEY, v text)`);
    await sql(db.url, `CREATE TABLE public.cli_nopk (v text)`);
  });
  afterAll(async () => {
    await db.drop();
  });

  const cli = async (...args: string[]) => {
    const d = runCli(['backfill', ...args, '--pg-url', db.url, '--slot', 'cli_slot']);
    const exit = await d.exit;
    return { code: exit.code, out: d.stdout(), err: d.stderr() };
  };

  it('queues, shows and cancels a backfill; refuses a table without a key with exit 2', async () => {
    const started = await cli('start', '--tables', 'public.cli_items', '--where', 'id > 10', '--json');
    expect(started.code).toBe(0);
    const b = JSON.parse(started.out) as {
      id: string;
      state: string;
      where: string;
      tables: { table: string }[];
    };
    expect(b).toMatchObject({ state: 'queued', where: 'id > 10', tables: [{ table: 'public.cli_items' }] });

    const status = await cli('status', b.id, '--json');
    expect(status.code).toBe(0);
    expect(JSON.parse(status.out)).toMatchObject({ id: b.id, state: 'queued' });
    const text = await cli('status', b.id);
    expect(text.out).toMatch(new RegExp(`${b.id}\\s+queued`));
    expect(text.out).toMatch(/public\.cli_items\s+\[-+\]/);

    const canceled = await cli('cancel', b.id, '--json');
    expect(canceled.code).toBe(0);
    expect(JSON.parse(canceled.out)).toMatchObject({ id: b.id, state: 'canceled' });
    const list = JSON.parse((await cli('status', '--json')).out) as { id: string }[];
    expect(list.map((x) => x.id)).toContain(b.id);

    const refused = await cli('start', '--tables', 'public.cli_nopk');
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/E_BACKFILL_NO_PK.*no primary key/);
    const badWhere = await cli('start', '--tables', 'public.cli_items', '--where', 'nosuchcolumn = 1');
    expect(badWhere.code).toBe(2);
    expect(badWhere.err).toMatch(/E_BACKFILL_WHERE/);
  }, 120_000);
});
