import pg from 'pg';
import { databaseName, pgClientConfig, type Config } from '../config/index.ts';
import { resolveRoles, TableFilter, type ResolvedRoles } from '../extractor/pipeline/index.ts';
import { ident, type Db } from '../state/db.ts';
import {
  evaluate,
  exitCode,
  type DoctorFacts,
  type Finding,
  type Probe,
  type RoleName,
  type TableFacts,
} from './doctor.ts';

/** `tag-connector doctor`, the I/O half: reads the facts that src/ops/doctor.ts judges. */

const PROBE_TIMEOUT_MS = 10_000;

function probeError(err: unknown): Probe {
  const e = err as Error & { code?: string };
  return { status: 'error', message: e.message, ...(e.code ? { code: e.code } : {}) };
}

/** Creates a temporary slot with the plugin and drops it at once (works for a REPLICATION role). */
async function probePlugin(db: Db, plugin: string): Promise<Probe> {
  const name = `tag_connector_doctor_${process.pid}`;
  try {
    await db.query(`SET statement_timeout = ${PROBE_TIMEOUT_MS}`);
    await db.query(`SELECT pg_create_logical_replication_slot($1, $2, true)`, [name, plugin]);
    await db.query(`SELECT pg_drop_replication_slot($1)`, [name]);
    return { status: 'ok' };
  } catch (err) {
    return probeError(err);
  } finally {
    // a temporary slot also goes away with the session; this only tidies the setting
    await db.query(`RESET statement_timeout`).catch(() => undefined);
  }
}

async function probeReplicationConnection(config: Config): Promise<Probe> {
  const client = new pg.Client({
    ...pgClientConfig(config),
    application_name: 'tag-connector doctor',
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    replication: 'database',
  } as pg.ClientConfig);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('IDENTIFY_SYSTEM');
    return { status: 'ok' };
  } catch (err) {
    return probeError(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function gatherFacts(
  db: Db,
  config: Config,
  roles: ResolvedRoles = resolveRoles(config),
): Promise<DoctorFacts> {
  const filter = new TableFilter(config, roles);
  const base = (
    await db.query<{
      version: string;
      database: string;
      role: string;
      superuser: boolean;
      replication: boolean;
      create_on_db: boolean;
      wal_level: string;
      max_wal_senders: number;
      max_replication_slots: number;
      keep_size: number;
      sender_timeout: number;
      opl: string | null;
      senders: number;
      slots: number;
    }>(
      `SELECT current_setting('server_version') AS version, current_database() AS database, current_user AS role,
              r.rolsuper AS superuser, r.rolreplication AS replication,
              has_database_privilege(current_database(), 'CREATE') AS create_on_db,
              current_setting('wal_level') AS wal_level,
              current_setting('max_wal_senders')::int AS max_wal_senders,
              current_setting('max_replication_slots')::int AS max_replication_slots,
              (SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size') AS keep_size,
              (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_sender_timeout') AS sender_timeout,
              (SELECT setting FROM pg_settings WHERE name = 'output_plugin_libraries') AS opl,
              (SELECT count(*)::int FROM pg_stat_activity WHERE backend_type = 'walsender') AS senders,
              (SELECT count(*)::int FROM pg_replication_slots) AS slots
         FROM pg_roles r WHERE r.rolname = current_user`,
    )
  ).rows[0]!;

  const slotRow = (
    await db.query<{
      plugin: string | null;
      slot_type: string;
      database: string | null;
      wal_status: string | null;
      active_pid: number | null;
    }>(
      `SELECT plugin, slot_type, database, wal_status, active_pid FROM pg_replication_slots WHERE slot_name = $1`,
      [config.slot],
    )
  ).rows[0];
  let recorded: boolean | null = null;
  if (slotRow) {
    const reg = (
      await db.query<{ t: string | null }>(`SELECT to_regclass($1)::text AS t`, [
        `${ident(config.stateSchema)}.slots`,
      ])
    ).rows[0]!;
    if (reg.t) {
      try {
        recorded =
          (
            await db.query(`SELECT 1 FROM ${ident(config.stateSchema)}.slots WHERE slot_name = $1`, [
              config.slot,
            ])
          ).rows.length > 0;
      } catch {
        recorded = null; // no privilege to read it
      }
    }
  }

  const replication = base.superuser || base.replication;
  let pluginProbe: Probe;
  if (base.wal_level !== 'logical') pluginProbe = { status: 'skipped', reason: 'wal_level is not logical' };
  else if (!replication)
    pluginProbe = { status: 'skipped', reason: `role ${base.role} may not use replication` };
  else if (base.slots >= base.max_replication_slots)
    pluginProbe = { status: 'skipped', reason: 'no free replication slot to probe with' };
  else pluginProbe = await probePlugin(db, config.plugin);

  const replicationConnection: Probe = replication
    ? await probeReplicationConnection(config)
    : { status: 'skipped', reason: `role ${base.role} may not use replication` };

  const st = (
    await db.query<{ exists: boolean; usage: boolean; create: boolean }>(
      `SELECT n.oid IS NOT NULL AS exists,
              COALESCE(has_schema_privilege(n.oid, 'USAGE'), false) AS usage,
              COALESCE(has_schema_privilege(n.oid, 'CREATE'), false) AS create
         FROM (SELECT $1::text AS name) x LEFT JOIN pg_namespace n ON n.nspname = x.name`,
      [config.stateSchema],
    )
  ).rows[0]!;

  const trackedSchemas = (
    await db.query<{ name: string; exists: boolean; usage: boolean }>(
      `SELECT x.name, n.oid IS NOT NULL AS exists, COALESCE(has_schema_privilege(n.oid, 'USAGE'), false) AS usage
         FROM unnest($1::text[]) AS x(name) LEFT JOIN pg_namespace n ON n.nspname = x.name ORDER BY x.name`,
      [filter.explicitList().length ? [] : filter.schemaList()],
    )
  ).rows;

  const roleTables = (Object.entries(roles) as [RoleName, { table: string } | undefined][])
    .filter((e): e is [RoleName, { table: string }] => !!e[1])
    .map(([role, def]) => ({ role, table: def.table }));
  const lookIn = [
    ...new Set([
      ...filter.schemaList(),
      ...filter.explicitList().map((t) => t.split('.')[0]!),
      ...roleTables.map((r) => r.table.split('.')[0]!),
    ]),
  ];
  const tableRows = (
    await db.query<{ leaf: string; root: string; ident: string; pk: boolean; sel: boolean }>(
      `SELECT n.nspname || '.' || c.relname AS leaf, rn.nspname || '.' || r.relname AS root,
              c.relreplident::text AS ident,
              EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS pk,
              has_table_privilege(c.oid, 'SELECT') AS sel
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_class r ON r.oid = CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END
         JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE c.relkind = 'r' AND rn.nspname = ANY($1)
        ORDER BY 2, 1`,
      [lookIn],
    )
  ).rows;
  const tables: TableFacts[] = tableRows
    .filter((t) => filter.isTracked(t.root))
    .map((t) => ({
      table: t.leaf,
      root: t.root,
      replicaIdentity: t.ident as TableFacts['replicaIdentity'],
      hasPrimaryKey: t.pk,
      canSelect: t.sel,
    }));

  let publication: DoctorFacts['publication'] = null;
  if (config.plugin === 'pgoutput') {
    const exists =
      (await db.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [config.publication])).rows.length >
      0;
    const pubTables = exists
      ? (
          await db.query<{ t: string }>(
            `SELECT schemaname || '.' || tablename AS t FROM pg_publication_tables WHERE pubname = $1`,
            [config.publication],
          )
        ).rows.map((r) => r.t)
      : [];
    // pg_publication_tables lists partitions unless publish_via_partition_root: count a root as published if any leaf is
    const roots = new Set(pubTables);
    for (const t of tableRows) if (pubTables.includes(t.leaf)) roots.add(t.root);
    publication = { name: config.publication, exists, tables: [...roots] };
  }

  const localBeforeMs = Date.now();
  const serverMs = Number(
    (await db.query<{ ms: string }>(`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS ms`))
      .rows[0]!.ms,
  );
  const localAfterMs = Date.now();

  return {
    serverVersion: base.version,
    database: base.database,
    role: {
      name: base.role,
      superuser: base.superuser,
      replication: base.replication,
      createOnDb: base.create_on_db,
    },
    settings: {
      walLevel: base.wal_level,
      maxWalSenders: base.max_wal_senders,
      maxReplicationSlots: base.max_replication_slots,
      maxSlotWalKeepSizeMb: Number(base.keep_size),
      walSenderTimeoutMs: Number(base.sender_timeout),
      outputPluginLibraries: base.opl,
    },
    walSendersUsed: base.senders,
    slotsUsed: base.slots,
    slot: slotRow
      ? {
          name: config.slot,
          plugin: slotRow.plugin,
          slotType: slotRow.slot_type,
          database: slotRow.database,
          walStatus: slotRow.wal_status,
          activePid: slotRow.active_pid,
          recorded,
        }
      : null,
    pluginProbe,
    replicationConnection,
    stateSchema: { name: config.stateSchema, ...st },
    trackedSchemas,
    tables,
    roleTables,
    publication,
    clock: { serverMs, localBeforeMs, localAfterMs },
  };
}

export interface DoctorResult {
  findings: Finding[];
  exitCode: number;
}

/** Connects, gathers, evaluates. A connection failure is itself a finding (exit 1), not a crash. */
export async function doctor(config: Config): Promise<DoctorResult> {
  const client = new pg.Client({
    ...pgClientConfig(config),
    application_name: 'tag-connector doctor',
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    const findings: Finding[] = [
      {
        check: 'connection',
        level: 'fail',
        message: `cannot connect to database ${databaseName(config)}: ${(err as Error).message}`,
        fix: /pg_hba\.conf/.test((err as Error).message)
          ? `host  ${databaseName(config)}  <role>  <client address>/32  scram-sha-256   # pg_hba.conf, then reload`
          : undefined,
      },
    ];
    return { findings, exitCode: 1 };
  }
  try {
    const facts = await gatherFacts(client, config);
    const findings = evaluate(facts, {
      plugin: config.plugin,
      slot: config.slot,
      publication: config.publication,
    });
    return { findings, exitCode: exitCode(findings) };
  } finally {
    await client.end().catch(() => undefined);
  }
}
