import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { LogicalReplicationService, Wal2JsonPlugin } from 'pg-logical-replication';
import { pino } from 'pino';
import { ensureSlot } from '../../../src/extractor/replication/slot.ts';
import { extractorMigrations } from '../../../src/extractor/state/migrations.ts';
import { advanceSlot, dropSlot, slotStatus } from '../../../src/ops/slot.ts';
import { migrate } from '../../../src/state/migrate.ts';
import { parseLsn } from '../../../src/util/lsn.ts';
import { runCli } from '../../support/daemon.ts';
import { sql, testDatabase } from '../../support/db.ts';

const SCHEMA = 'tagc_state';
const logger = pino({ level: 'silent' });

describe('tag-connector slot status|drop|advance against the harness PostgreSQL', () => {
  let db: { url: string; drop: () => Promise<void> };
  let client: pg.Client;

  beforeAll(async () => {
    db = await testDatabase('ops_slot');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // the harness runs synchronous_commit=off; a slot advances only over flushed WAL
    await client.query(`SET synchronous_commit = on`);
    await migrate(client, SCHEMA, 'extractor', extractorMigrations);
    await client.query(`CREATE TABLE t (id int PRIMARY KEY, v text)`);
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  const ours = (slot: string) =>
    ensureSlot(client, { slot, plugin: 'wal2json', stateSchema: SCHEMA, logger });
  const foreign = (slot: string) =>
    client.query(`SELECT pg_create_logical_replication_slot($1, 'test_decoding')`, [slot]);
  const exists = async (slot: string) =>
    (await client.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows.length > 0;
  const confirmed = async (slot: string) =>
    parseLsn(
      (
        await client.query<{ l: string }>(
          `SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1`,
          [slot],
        )
      ).rows[0]!.l,
    );

  it('status: position, lag, wal_status and our checkpoints', async () => {
    await ours('st_ours');
    await foreign('st_foreign');
    await client.query(`INSERT INTO t SELECT g, 'x' FROM generate_series(1, 100) g`);
    await client.query(
      `INSERT INTO ${SCHEMA}.checkpoints (slot, sink, commit_lsn, seq) VALUES ('st_ours', 'kafka', '0/1234', 7)`,
    );
    const [s] = await slotStatus(client, { stateSchema: SCHEMA, slot: 'st_ours' });
    expect(s).toMatchObject({
      slot: 'st_ours',
      slotType: 'logical',
      plugin: 'wal2json',
      active: false,
      activePid: null,
      walStatus: 'reserved',
      safeWalSize: null, // the harness keeps max_slot_wal_keep_size = -1
      recorded: true,
      checkpoints: [{ sink: 'kafka', commitLsn: '0/1234', seq: 7, updatedAt: expect.any(String) }],
    });
    expect(s!.lagBytes).toBeGreaterThan(0);
    const all = await slotStatus(client, { stateSchema: SCHEMA });
    expect(all.find((x) => x.slot === 'st_foreign')).toMatchObject({
      recorded: false,
      plugin: 'test_decoding',
    });

    const cli = runCli(['slot', 'status', '--pg-url', db.url, '--state-schema', SCHEMA, '--slot', 'st_ours']);
    expect((await cli.exit).code).toBe(0);
    expect(cli.stdout()).toMatch(/confirmed_flush_lsn +\d+\/[0-9A-F]+/);
    expect(cli.stdout()).toMatch(/kafka {2}0\/1234\/7/);
    const json = runCli(['slot', 'status', '--pg-url', db.url, '--state-schema', SCHEMA, '--all', '--json']);
    expect((await json.exit).code).toBe(0);
    expect((JSON.parse(json.stdout()) as { slot: string }[]).map((x) => x.slot)).toEqual(
      expect.arrayContaining(['st_ours', 'st_foreign']),
    );
    const missing = runCli([
      'slot',
      'status',
      '--pg-url',
      db.url,
      '--state-schema',
      SCHEMA,
      '--slot',
      'nope',
    ]);
    expect((await missing.exit).code).toBe(1);
    expect(missing.stderr()).toContain('E_SLOT_NOT_FOUND');
  });

  it('drop: refuses a slot it did not create unless --force, forgets the record', async () => {
    await foreign('dr_foreign');
    await expect(
      dropSlot(client, { stateSchema: SCHEMA, slot: 'dr_foreign', force: false }),
    ).rejects.toMatchObject({
      code: 'E_SLOT_NOT_OURS',
    });
    expect(await exists('dr_foreign')).toBe(true);
    const cli = runCli([
      'slot',
      'drop',
      '--pg-url',
      db.url,
      '--state-schema',
      SCHEMA,
      '--slot',
      'dr_foreign',
    ]);
    expect((await cli.exit).code).toBe(1);
    expect(cli.stderr()).toContain('[E_SLOT_NOT_OURS]');
    const forced = runCli([
      'slot',
      'drop',
      '--pg-url',
      db.url,
      '--state-schema',
      SCHEMA,
      '--slot',
      'dr_foreign',
      '--force',
    ]);
    expect((await forced.exit).code).toBe(0);
    expect(await exists('dr_foreign')).toBe(false);

    await ours('dr_ours');
    const r = await dropSlot(client, { stateSchema: SCHEMA, slot: 'dr_ours', force: false });
    expect(r).toMatchObject({ slot: 'dr_ours', plugin: 'wal2json', forced: false });
    expect(await exists('dr_ours')).toBe(false);
    expect((await client.query(`SELECT 1 FROM ${SCHEMA}.slots WHERE slot_name = 'dr_ours'`)).rows).toEqual(
      [],
    );
    await expect(
      dropSlot(client, { stateSchema: SCHEMA, slot: 'dr_ours', force: true }),
    ).rejects.toMatchObject({
      code: 'E_SLOT_NOT_FOUND',
    });
  });

  it('drop and advance refuse an active slot, even with --force', async () => {
    await ours('ac_ours');
    const service = new LogicalReplicationService(
      { connectionString: db.url },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    service.on('error', () => undefined);
    const plugin = new Wal2JsonPlugin({ formatVersion: '2', includeLsn: true } as never);
    service.subscribe(plugin, 'ac_ours').catch(() => undefined);
    try {
      for (let i = 0; i < 100; i++) {
        const { rows } = await client.query(
          `SELECT 1 FROM pg_replication_slots WHERE slot_name = 'ac_ours' AND active`,
        );
        if (rows.length) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await expect(
        dropSlot(client, { stateSchema: SCHEMA, slot: 'ac_ours', force: true }),
      ).rejects.toMatchObject({
        code: 'E_SLOT_ACTIVE',
        message: expect.stringMatching(/in use by pid \d+/),
      });
      await expect(
        advanceSlot(client, { stateSchema: SCHEMA, slot: 'ac_ours', to: 'current', force: true }),
      ).rejects.toMatchObject({ code: 'E_SLOT_ACTIVE' });
      expect(await exists('ac_ours')).toBe(true);
    } finally {
      await service.destroy();
    }
  });

  it('advance: moves forward to an LSN or the end of WAL, never backwards, refuses foreign slots', async () => {
    await ours('ad_ours');
    const start = await confirmed('ad_ours');
    await client.query(`INSERT INTO t SELECT g, 'y' FROM generate_series(1001, 1100) g`);
    const mid = (await client.query<{ l: string }>(`SELECT pg_current_wal_lsn()::text AS l`)).rows[0]!.l;
    await client.query(`INSERT INTO t SELECT g, 'z' FROM generate_series(2001, 2100) g`);

    const r1 = await advanceSlot(client, { stateSchema: SCHEMA, slot: 'ad_ours', to: mid, force: false });
    expect(parseLsn(r1.to)).toBeGreaterThan(start);
    expect(parseLsn(r1.to)).toBeLessThanOrEqual(parseLsn(mid));
    expect(r1.skippedBytes).toBeGreaterThan(0);

    await expect(
      advanceSlot(client, { stateSchema: SCHEMA, slot: 'ad_ours', to: '0/1', force: false }),
    ).rejects.toMatchObject({ code: 'E_SLOT_BACKWARDS' });
    await expect(
      advanceSlot(client, { stateSchema: SCHEMA, slot: 'ad_ours', to: 'FFFF/0', force: false }),
    ).rejects.toMatchObject({ code: 'E_SLOT_TARGET' });
    await expect(
      advanceSlot(client, { stateSchema: SCHEMA, slot: 'ad_ours', to: 'soon', force: false }),
    ).rejects.toMatchObject({ code: 'E_SLOT_TARGET', exitCode: 2 });

    const cli = runCli([
      'slot',
      'advance',
      '--pg-url',
      db.url,
      '--state-schema',
      SCHEMA,
      '--slot',
      'ad_ours',
      '--to',
      'current',
      '--json',
    ]);
    expect((await cli.exit).code).toBe(0);
    const r2 = JSON.parse(cli.stdout()) as { from: string; to: string };
    expect(parseLsn(r2.to)).toBeGreaterThan(parseLsn(mid));
    expect(await confirmed('ad_ours')).toBe(parseLsn(r2.to));

    await foreign('ad_foreign');
    await expect(
      advanceSlot(client, { stateSchema: SCHEMA, slot: 'ad_foreign', to: 'current', force: false }),
    ).rejects.toMatchObject({ code: 'E_SLOT_NOT_OURS' });
    const forced = await advanceSlot(client, {
      stateSchema: SCHEMA,
      slot: 'ad_foreign',
      to: 'current',
      force: true,
    });
    expect(forced.slot).toBe('ad_foreign');
  });

  it('refuses a slot of another database', async () => {
    const other = await testDatabase('ops_slot_other');
    try {
      await sql(other.url, `SELECT pg_create_logical_replication_slot('od_slot', 'wal2json')`);
      await expect(
        dropSlot(client, { stateSchema: SCHEMA, slot: 'od_slot', force: true }),
      ).rejects.toMatchObject({
        code: 'E_SLOT_DATABASE',
      });
    } finally {
      await other.drop();
    }
  });
});
