import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadConfig } from '../../../src/config/index.ts';
import { doctor } from '../../../src/ops/doctor-facts.ts';
import type { Finding } from '../../../src/ops/doctor.ts';
import { runCli } from '../../support/daemon.ts';
import { sql, testDatabase } from '../../support/db.ts';

const find = (fs: Finding[], check: string) => fs.find((x) => x.check === check);

describe('tag-connector doctor against the harness PostgreSQL', () => {
  let db: { url: string; drop: () => Promise<void> };
  let roleUrl: string;
  const role = `tagc_doc_${Math.random().toString(36).slice(2, 8)}`;
  const dbName = () => new URL(db.url).pathname.slice(1);

  const configFor = (url: string, extra: Record<string, unknown> = {}) =>
    loadConfig({
      env: {},
      flags: {
        pgUrl: url,
        slot: 'doctor_slot',
        preset: 'none',
        roles: { task: { table: 'public.tasks', statusColumn: 'status' } },
        ...extra,
      },
    });

  beforeAll(async () => {
    db = await testDatabase('ops_doctor');
    await sql(db.url, `CREATE ROLE ${role} LOGIN`);
    await sql(
      db.url,
      `CREATE TABLE public.tasks (id int PRIMARY KEY, status text);
       CREATE TABLE public.items (id int PRIMARY KEY, v text);
       CREATE TABLE public.log (at timestamptz, line text);`,
    );
    const u = new URL(db.url);
    u.username = role;
    roleUrl = u.toString();
  });
  afterAll(async () => {
    await db.drop();
    await sql(db.url.replace(/\/[^/]*$/, '/postgres'), `DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  });

  it('fails a role without REPLICATION and CREATE, naming the grants', async () => {
    const { findings, exitCode } = await doctor(configFor(roleUrl));
    expect(exitCode).toBe(1);
    expect(find(findings, 'privilege:replication')).toMatchObject({
      level: 'fail',
      fix: `ALTER ROLE "${role}" WITH REPLICATION;`,
    });
    expect(find(findings, 'privilege:create')).toMatchObject({
      level: 'fail',
      fix: `GRANT CREATE ON DATABASE "${dbName()}" TO "${role}";`,
    });
    expect(find(findings, 'plugin')).toMatchObject({
      level: 'warn',
      message: expect.stringContaining('not probed'),
    });
    expect(find(findings, 'privilege:select')?.level).toBe('warn');
    expect(find(findings, 'replica_identity:public.tasks')).toMatchObject({
      level: 'warn',
      fix: 'ALTER TABLE "public"."tasks" REPLICA IDENTITY FULL;',
    });
    expect(find(findings, 'replica_identity')).toMatchObject({
      level: 'warn',
      message: expect.stringContaining('public.log'),
    });
  });

  it('passes once the changes it named are made, probing wal2json as a non-superuser', async () => {
    await sql(
      db.url,
      `ALTER ROLE ${role} WITH REPLICATION;
       GRANT CREATE ON DATABASE ${dbName()} TO ${role};
       GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role};
       ALTER TABLE public.tasks REPLICA IDENTITY FULL;
       ALTER TABLE public.log ADD PRIMARY KEY (at);`,
    );
    const { findings, exitCode } = await doctor(configFor(roleUrl));
    expect(findings.filter((f) => f.level === 'fail')).toEqual([]);
    expect(exitCode).toBe(0);
    expect(find(findings, 'plugin')?.level).toBe('ok');
    expect(find(findings, 'replication_connection')?.level).toBe('ok');
    expect(find(findings, 'wal_level')?.level).toBe('ok');
    expect(find(findings, 'replica_identity:public.tasks')?.level).toBe('ok');
    expect(find(findings, 'clock')?.level).toBe('ok');
    const leaked = await sql(
      db.url,
      `SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'tag_connector_doctor_%'`,
    );
    expect(leaked).toEqual([]);
  });

  it('pgoutput: a non-superuser cannot create the publication, doctor gives the SQL', async () => {
    const { findings, exitCode } = await doctor(
      configFor(roleUrl, { plugin: 'pgoutput', publication: 'doc_pub' }),
    );
    expect(exitCode).toBe(1);
    expect(find(findings, 'publication')).toMatchObject({
      level: 'fail',
      fix: expect.stringContaining('CREATE PUBLICATION "doc_pub" FOR TABLES IN SCHEMA "public"'),
    });
    await sql(db.url, `CREATE PUBLICATION doc_pub FOR TABLE public.tasks`);
    const again = await doctor(configFor(roleUrl, { plugin: 'pgoutput', publication: 'doc_pub' }));
    expect(find(again.findings, 'publication')).toMatchObject({
      level: 'warn',
      fix: 'ALTER PUBLICATION "doc_pub" ADD TABLE "public"."items", "public"."log";',
    });
    expect(find(again.findings, 'plugin')?.level).toBe('ok');
  });

  it('judges an existing slot of another plugin', async () => {
    await sql(db.url, `SELECT pg_create_logical_replication_slot('doctor_slot', 'pgoutput')`);
    try {
      const { findings } = await doctor(configFor(roleUrl));
      expect(find(findings, 'slot')).toMatchObject({
        level: 'fail',
        message: expect.stringContaining('E_SLOT_PLUGIN'),
      });
      expect(find(findings, 'max_replication_slots')?.level).toBe('ok');
    } finally {
      await sql(db.url, `SELECT pg_drop_replication_slot('doctor_slot')`);
    }
  });

  it('the CLI prints JSON and exits 1 on a failure, 0 otherwise', async () => {
    const bad = runCli([
      'doctor',
      '--pg-url',
      roleUrl,
      '--plugin',
      'pgoutput',
      '--publication',
      'nopub',
      '--json',
    ]);
    const r1 = await bad.exit;
    expect(r1.code).toBe(1);
    const doc = JSON.parse(bad.stdout()) as { ok: boolean; findings: Finding[] };
    expect(doc.ok).toBe(false);
    expect(find(doc.findings, 'publication')?.level).toBe('fail');

    const good = runCli([
      'doctor',
      '--pg-url',
      roleUrl,
      '--preset',
      'none',
      '--exclude-tables',
      'public.log',
    ]);
    const r2 = await good.exit;
    expect(good.stdout()).toMatch(/\[ok\] +wal_level: wal_level = logical/);
    expect(good.stdout()).toMatch(/0 failed, \d+ warnings, \d+ ok/);
    expect(r2.code).toBe(0);

    const down = runCli(['doctor', '--pg-url', 'postgres://nobody@127.0.0.1:1/x', '--json']);
    expect((await down.exit).code).toBe(1);
    expect(JSON.parse(down.stdout()).findings[0]).toMatchObject({ check: 'connection', level: 'fail' });
  });
});
