import { describe, expect, it } from '@jest/globals';
import { evaluate, exitCode, formatFindings, type DoctorFacts, type Finding } from '../../src/ops/doctor.ts';

const healthy = (): DoctorFacts => ({
  serverVersion: '15.18',
  database: 'tasks',
  role: { name: 'tag_connector', superuser: false, replication: true, createOnDb: true },
  settings: {
    walLevel: 'logical',
    maxWalSenders: 10,
    maxReplicationSlots: 10,
    maxSlotWalKeepSizeMb: 51200,
    walSenderTimeoutMs: 60000,
    outputPluginLibraries: null,
  },
  walSendersUsed: 1,
  slotsUsed: 1,
  slot: null,
  pluginProbe: { status: 'ok' },
  replicationConnection: { status: 'ok' },
  stateSchema: { name: 'tag_connector', exists: true, usage: true, create: true },
  trackedSchemas: [{ name: 'public', exists: true, usage: true }],
  tables: [
    { table: 'pgboss.job', root: 'pgboss.job', replicaIdentity: 'f', hasPrimaryKey: true, canSelect: true },
    {
      table: 'public.items',
      root: 'public.items',
      replicaIdentity: 'd',
      hasPrimaryKey: true,
      canSelect: true,
    },
  ],
  roleTables: [{ role: 'task', table: 'pgboss.job' }],
  publication: null,
  clock: { serverMs: 1_000_000, localBeforeMs: 999_990, localAfterMs: 1_000_010 },
});

const opts = { plugin: 'wal2json' as const, slot: 'tag_connector', publication: 'tag_connector' };
const find = (fs: Finding[], check: string) => {
  const f = fs.find((x) => x.check === check);
  if (!f) throw new Error(`no finding ${check} in ${fs.map((x) => x.check).join(', ')}`);
  return f;
};

describe('doctor evaluation', () => {
  it('passes a healthy server', () => {
    const fs = evaluate(healthy(), opts);
    expect(fs.filter((f) => f.level !== 'ok')).toEqual([]);
    expect(exitCode(fs)).toBe(0);
    expect(formatFindings(fs)).toMatch(/0 failed, 0 warnings/);
  });

  it('fails wal_level replica with the conf line to change', () => {
    const f = healthy();
    f.settings.walLevel = 'replica';
    const fs = evaluate(f, opts);
    expect(find(fs, 'wal_level')).toMatchObject({
      level: 'fail',
      fix: expect.stringMatching(/^wal_level = logical/),
    });
    expect(exitCode(fs)).toBe(1);
  });

  it('checks output_plugin_libraries only when the server knows it, keeping its current list', () => {
    const f = healthy();
    f.settings.outputPluginLibraries = 'pgoutput, test_decoding';
    const fail = find(evaluate(f, opts), 'output_plugin_libraries');
    expect(fail.level).toBe('fail');
    expect(fail.fix).toMatch(/^output_plugin_libraries = 'pgoutput, test_decoding, wal2json'/);
    expect(find(evaluate(f, { ...opts, plugin: 'pgoutput' }), 'output_plugin_libraries').level).toBe('ok');
    f.settings.outputPluginLibraries = 'pgoutput,wal2json';
    expect(find(evaluate(f, opts), 'output_plugin_libraries').level).toBe('ok');
  });

  it('recommends pgoutput, with the measured reason, to a wal2json setup (never a warning)', () => {
    const f = healthy();
    const advice = find(evaluate(f, opts), 'plugin choice');
    expect(advice).toMatchObject({ level: 'ok', fix: expect.stringMatching(/^--plugin pgoutput/) });
    expect(advice.message).toMatch(/pgoutput is faster: .*half the CPU.*× the wal2json rate/);
    expect(exitCode(evaluate(f, opts))).toBe(0);
    expect(evaluate(f, { ...opts, plugin: 'pgoutput' }).some((x) => x.check === 'plugin choice')).toBe(false);
  });

  it('turns a refused or missing plugin into the catalogue errors', () => {
    const f = healthy();
    f.pluginProbe = { status: 'error', message: 'library "wal2json" may not be used as an output plugin' };
    expect(find(evaluate(f, opts), 'plugin')).toMatchObject({
      level: 'fail',
      message: expect.stringContaining('E_PLUGIN_NOT_ALLOWED'),
    });
    f.pluginProbe = { status: 'error', code: '58P01', message: 'could not access file "wal2json"' };
    expect(find(evaluate(f, opts), 'plugin')).toMatchObject({
      level: 'fail',
      message: expect.stringContaining('E_PLUGIN_MISSING'),
      fix: expect.stringContaining('wal2json'),
    });
    f.pluginProbe = {
      status: 'error',
      code: '57014',
      message: 'canceling statement due to statement timeout',
    };
    expect(find(evaluate(f, opts), 'plugin').level).toBe('warn');
    f.pluginProbe = { status: 'skipped', reason: 'no free replication slot to probe with' };
    expect(find(evaluate(f, opts), 'plugin').level).toBe('warn');
  });

  it('counts wal senders and slots; an existing slot needs no free one', () => {
    const f = healthy();
    f.walSendersUsed = 10;
    f.slotsUsed = 10;
    let fs = evaluate(f, opts);
    expect(find(fs, 'max_wal_senders')).toMatchObject({
      level: 'fail',
      fix: expect.stringMatching(/^max_wal_senders = 14/),
    });
    expect(find(fs, 'max_replication_slots')).toMatchObject({
      level: 'fail',
      message: expect.stringContaining('all 10 replication slots are in use'),
      fix: expect.stringMatching(/^max_replication_slots = 14/),
    });
    f.slot = {
      name: 'tag_connector',
      plugin: 'wal2json',
      slotType: 'logical',
      database: 'tasks',
      walStatus: 'reserved',
      activePid: null,
      recorded: true,
    };
    fs = evaluate(f, opts);
    expect(find(fs, 'max_replication_slots').level).toBe('ok');
    expect(find(fs, 'slot')).toMatchObject({
      level: 'ok',
      message: expect.stringContaining('created by tag-connector'),
    });
  });

  it('judges an existing slot: plugin, database, lost, unreserved, not ours', () => {
    const f = healthy();
    const slot = {
      name: 'tag_connector',
      plugin: 'pgoutput',
      slotType: 'logical',
      database: 'tasks',
      walStatus: 'reserved',
      activePid: 42,
      recorded: false,
    };
    f.slot = slot;
    expect(find(evaluate(f, opts), 'slot')).toMatchObject({
      level: 'fail',
      message: expect.stringContaining('E_SLOT_PLUGIN'),
    });
    f.slot = { ...slot, plugin: 'wal2json', database: 'other' };
    expect(find(evaluate(f, opts), 'slot').message).toContain('E_SLOT_DATABASE');
    f.slot = { ...slot, plugin: 'wal2json', walStatus: 'lost' };
    expect(find(evaluate(f, opts), 'slot')).toMatchObject({
      level: 'fail',
      message: expect.stringContaining('E_SLOT_INVALIDATED'),
      fix: expect.stringContaining('tag-connector slot drop --slot tag_connector'),
    });
    f.slot = { ...slot, plugin: 'wal2json', walStatus: 'unreserved' };
    expect(find(evaluate(f, opts), 'slot').level).toBe('warn');
    f.slot = { ...slot, plugin: 'wal2json' };
    expect(find(evaluate(f, opts), 'slot')).toMatchObject({
      level: 'ok',
      message: expect.stringMatching(/in use by pid 42.*need --force/),
    });
  });

  it('warns about unlimited or tiny WAL retention and wal_sender_timeout = 0', () => {
    const f = healthy();
    f.settings.maxSlotWalKeepSizeMb = -1;
    f.settings.walSenderTimeoutMs = 0;
    const fs = evaluate(f, opts);
    expect(find(fs, 'max_slot_wal_keep_size')).toMatchObject({
      level: 'warn',
      message: expect.stringContaining('fill the disk'),
      fix: expect.stringMatching(/^max_slot_wal_keep_size = '50GB'/),
    });
    expect(find(fs, 'wal_sender_timeout').level).toBe('warn');
    f.settings.maxSlotWalKeepSizeMb = 512;
    expect(find(evaluate(f, opts), 'max_slot_wal_keep_size').level).toBe('warn');
    f.settings.maxSlotWalKeepSizeMb = 2048;
    expect(find(evaluate(f, opts), 'max_slot_wal_keep_size').message).toContain('2GB');
    expect(exitCode(evaluate(f, opts))).toBe(0);
  });

  it('advises REPLICA IDENTITY FULL for every partition of a role table', () => {
    const f = healthy();
    f.tables = [
      { table: 'pgboss.j1', root: 'pgboss.job', replicaIdentity: 'f', hasPrimaryKey: true, canSelect: true },
      { table: 'pgboss.j2', root: 'pgboss.job', replicaIdentity: 'd', hasPrimaryKey: true, canSelect: true },
    ];
    const r = find(evaluate(f, opts), 'replica_identity:pgboss.job');
    expect(r.level).toBe('warn');
    expect(r.fix).toBe('ALTER TABLE "pgboss"."j2" REPLICA IDENTITY FULL;');
    f.roleTables.push({ role: 'eventStore', table: 'tag_connector.event_store' });
    expect(find(evaluate(f, opts), 'replica_identity:tag_connector.event_store')).toMatchObject({
      level: 'warn',
      fix: 'tag-connector migrate',
    });
  });

  it('flags tables without a replica identity: a warning for wal2json, a failure for pgoutput', () => {
    const f = healthy();
    f.tables.push({
      table: 'public.log',
      root: 'public.log',
      replicaIdentity: 'd',
      hasPrimaryKey: false,
      canSelect: true,
    });
    const w = find(evaluate(f, opts), 'replica_identity');
    expect(w).toMatchObject({
      level: 'warn',
      fix: expect.stringContaining('ALTER TABLE "public"."log" REPLICA IDENTITY FULL;'),
    });
    f.publication = {
      name: 'tag_connector',
      exists: true,
      tables: ['pgboss.job', 'public.items', 'public.log'],
    };
    expect(find(evaluate(f, { ...opts, plugin: 'pgoutput' }), 'replica_identity').level).toBe('fail');
  });

  it('names the missing privileges with the GRANT to run', () => {
    const f = healthy();
    f.role = { name: 'app', superuser: false, replication: false, createOnDb: false };
    f.stateSchema = { name: 'tag_connector', exists: true, usage: true, create: false };
    f.trackedSchemas = [{ name: 'public', exists: true, usage: false }];
    f.tables[1]!.canSelect = false;
    const fs = evaluate(f, opts);
    expect(find(fs, 'privilege:replication')).toMatchObject({
      level: 'fail',
      fix: 'ALTER ROLE "app" WITH REPLICATION;',
    });
    expect(find(fs, 'privilege:create')).toMatchObject({
      level: 'fail',
      fix: 'GRANT CREATE ON DATABASE "tasks" TO "app";',
    });
    expect(find(fs, 'privilege:state_schema')).toMatchObject({
      level: 'fail',
      message: expect.stringContaining('CREATE'),
    });
    expect(find(fs, 'schema:public')).toMatchObject({
      level: 'warn',
      fix: 'GRANT USAGE ON SCHEMA "public" TO "app";',
    });
    expect(find(fs, 'privilege:select')).toMatchObject({
      level: 'warn',
      fix: 'GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "app";',
    });
  });

  it('pgoutput: a missing publication is created by a superuser, else needs the SQL', () => {
    const f = healthy();
    f.publication = { name: 'tag_connector', exists: false, tables: [] };
    const p = { ...opts, plugin: 'pgoutput' as const };
    expect(find(evaluate(f, p), 'publication')).toMatchObject({
      level: 'fail',
      fix: expect.stringContaining(
        'CREATE PUBLICATION "tag_connector" FOR TABLES IN SCHEMA "public", TABLE "pgboss"."job" WITH (publish_via_partition_root = true);',
      ),
    });
    f.role.superuser = true;
    expect(find(evaluate(f, p), 'publication').level).toBe('ok');
    f.publication = { name: 'tag_connector', exists: true, tables: ['public.items'] };
    expect(find(evaluate(f, p), 'publication')).toMatchObject({
      level: 'warn',
      fix: 'ALTER PUBLICATION "tag_connector" ADD TABLE "pgboss"."job";',
    });
    // wal2json: no publication finding at all
    expect(evaluate(f, opts).some((x) => x.check === 'publication')).toBe(false);
  });

  it('measures clock skew against the round trip', () => {
    const f = healthy();
    f.clock = { serverMs: 1_010_000, localBeforeMs: 1_000_000, localAfterMs: 1_000_020 };
    expect(find(evaluate(f, opts), 'clock')).toMatchObject({
      level: 'warn',
      message: expect.stringContaining('+9990 ms'),
    });
    f.clock = { serverMs: 1_001_500, localBeforeMs: 1_000_000, localAfterMs: 1_000_020 };
    expect(find(evaluate(f, opts), 'clock').level).toBe('ok');
  });

  it('a refused replication connection names the pg_hba line', () => {
    const f = healthy();
    f.replicationConnection = {
      status: 'error',
      message: 'no pg_hba.conf entry for replication connection from host "10.0.0.5", user "tag_connector"',
    };
    expect(find(evaluate(f, opts), 'replication_connection')).toMatchObject({
      level: 'fail',
      fix: expect.stringMatching(/^host {2}tasks {2}tag_connector /),
    });
  });
});
