import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { LogicalReplicationService, Wal2JsonPlugin } from 'pg-logical-replication';
import { sql, testDatabase } from '../support/db.ts';

describe('test harness PostgreSQL', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await testDatabase('harness');
  });
  afterAll(async () => {
    await db.drop();
  });

  it('runs with wal_level=logical and wal2json', async () => {
    const [row] = await sql<{ wal_level: string }>(db.url, 'SHOW wal_level');
    expect(row!.wal_level).toBe('logical');
  });

  it('reads one change from a wal2json slot with pg-logical-replication', async () => {
    await sql(db.url, 'CREATE TABLE t (id int primary key, v text)');
    await sql(db.url, `SELECT pg_create_logical_replication_slot('harness_slot', 'wal2json')`);
    const service = new LogicalReplicationService(
      { connectionString: db.url },
      { acknowledge: { auto: false, timeoutSeconds: 0 } },
    );
    const plugin = new Wal2JsonPlugin({ formatVersion: '2', includeLsn: true } as never);
    const got = new Promise<Record<string, unknown>>((resolve) => {
      service.on('data', (_lsn: string, msg: Record<string, unknown>) => {
        if (msg.action === 'I') resolve(msg);
      });
    });
    service.subscribe(plugin, 'harness_slot').catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    await sql(db.url, `INSERT INTO t VALUES (1, 'hello')`);
    const msg = await got;
    await service.destroy();
    expect(msg).toMatchObject({ action: 'I', schema: 'public', table: 't' });
    expect(msg.columns).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'v', value: 'hello' })]),
    );
  });
});
