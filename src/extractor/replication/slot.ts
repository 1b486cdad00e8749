import type { Logger } from '../../log.ts';
import { ConnectorError, errors } from '../../errors.ts';
import { ident, type Db } from '../../state/db.ts';
import { parseLsn, type Lsn } from '../../util/lsn.ts';

export interface SlotInfo {
  slot: string;
  plugin: string;
  confirmedFlushLsn: Lsn;
  created: boolean;
  activePid: number | null;
}

export interface SlotOptions {
  slot: string;
  plugin: 'wal2json' | 'pgoutput';
  stateSchema: string;
  logger: Logger;
}

/** Checks the server up front and says what to change (postgres-conf/ holds the snippets). */
export async function preflight(db: Db): Promise<void> {
  const { rows } = await db.query<{ wal_level: string; role: string; ok: boolean }>(
    `SELECT current_setting('wal_level') AS wal_level, current_user AS role,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS ok`,
  );
  const r = rows[0]!;
  if (r.wal_level !== 'logical') throw errors.walLevel(r.wal_level);
  if (!r.ok) throw errors.privilege(r.role);
}

function translateCreateError(err: unknown, plugin: string): Error {
  const e = err as Error & { code?: string };
  if (/may not be used as an output plugin/.test(e.message)) return errors.pluginNotAllowed(plugin);
  if (/could not access file/.test(e.message) || e.code === '58P01') return errors.pluginMissing(plugin);
  if (e.code === '53400' || /all replication slots are in use/.test(e.message)) return errors.noFreeSlot(0);
  if (e.code === '55000' && /wal_level/.test(e.message)) return errors.walLevel('replica');
  return e;
}

/**
 * Creates the slot if missing (and records that we did, so only our own slots are ever dropped);
 * never drops or recreates an existing one. An invalidated slot stops us with the recovery steps.
 */
export async function ensureSlot(db: Db, opts: SlotOptions): Promise<SlotInfo> {
  const existing = await db.query<{
    plugin: string;
    database: string;
    wal_status: string | null;
    confirmed_flush_lsn: string | null;
    active_pid: number | null;
    current_db: string;
  }>(
    `SELECT plugin, database, wal_status, confirmed_flush_lsn::text, active_pid, current_database() AS current_db
       FROM pg_replication_slots WHERE slot_name = $1`,
    [opts.slot],
  );
  const s = existing.rows[0];
  if (s) {
    if (s.database !== s.current_db) throw errors.slotOtherDatabase(opts.slot, s.database);
    if (s.plugin !== opts.plugin) throw errors.slotPluginMismatch(opts.slot, s.plugin, opts.plugin);
    if (s.wal_status === 'lost') throw errors.slotInvalidated(opts.slot, s.wal_status);
    return {
      slot: opts.slot,
      plugin: s.plugin,
      confirmedFlushLsn: s.confirmed_flush_lsn ? parseLsn(s.confirmed_flush_lsn) : 0n,
      created: false,
      activePid: s.active_pid,
    };
  }
  const free = await db.query<{ max: number; used: number }>(
    `SELECT current_setting('max_replication_slots')::int AS max, (SELECT count(*)::int FROM pg_replication_slots) AS used`,
  );
  const f = free.rows[0]!;
  if (f.used >= f.max) throw errors.noFreeSlot(f.max);
  let lsn: string;
  try {
    const created = await db.query<{ lsn: string }>(
      `SELECT lsn::text FROM pg_create_logical_replication_slot($1, $2)`,
      [opts.slot, opts.plugin],
    );
    lsn = created.rows[0]!.lsn;
  } catch (err) {
    if ((err as { code?: string }).code === '42710') return ensureSlot(db, opts); // created concurrently
    throw translateCreateError(err, opts.plugin);
  }
  await db.query(
    `INSERT INTO ${ident(opts.stateSchema)}.slots (slot_name, plugin, created_by) VALUES ($1, $2, $3)
     ON CONFLICT (slot_name) DO NOTHING`,
    [opts.slot, opts.plugin, `tag-connector pid ${process.pid}`],
  );
  opts.logger.info({ slot: opts.slot, plugin: opts.plugin, lsn }, 'created replication slot');
  return {
    slot: opts.slot,
    plugin: opts.plugin,
    confirmedFlushLsn: parseLsn(lsn),
    created: true,
    activePid: null,
  };
}

/** Probes whether the server lets this plugin decode (15.19+ restricts output plugins). */
export async function checkPluginAllowed(db: Db, plugin: string): Promise<void> {
  const { rows } = await db.query<{ v: string | null }>(
    `SELECT setting AS v FROM pg_settings WHERE name = 'output_plugin_libraries'`,
  );
  const v = rows[0]?.v;
  if (v === undefined || v === null) return; // older server: every installed plugin is allowed
  const allowed = v.split(',').map((s) => s.trim());
  if (!allowed.includes(plugin)) throw errors.pluginNotAllowed(plugin);
}

/** The publication pgoutput streams from: created when missing, never altered if it exists. */
export async function ensurePublication(
  db: Db,
  name: string,
  tracked: { schemas: string[]; tables: string[]; roleTables: string[] },
  logger: Logger,
): Promise<void> {
  const { rows } = await db.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [name]);
  if (rows.length > 0) return;
  const existingSchemas = (
    await db.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)`, [
      tracked.schemas,
    ])
  ).rows.map((r) => r.nspname);
  const wantTables = [...tracked.tables, ...tracked.roleTables];
  const existingTables = wantTables.length
    ? (
        await db.query<{ t: string }>(
          `SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname || '.' || c.relname = ANY($1) AND c.relkind IN ('r', 'p')`,
          [wantTables],
        )
      ).rows.map((r) => r.t)
    : [];
  const parts: string[] = [];
  if (tracked.tables.length === 0 && existingSchemas.length) {
    parts.push(`TABLES IN SCHEMA ${existingSchemas.map(ident).join(', ')}`);
  }
  const tables = existingTables.filter(
    (t) => tracked.tables.length > 0 || !existingSchemas.includes(t.split('.')[0]!),
  );
  if (tables.length) parts.push(`TABLE ${tables.map((t) => t.split('.').map(ident).join('.')).join(', ')}`);
  if (parts.length === 0) {
    throw new ConnectorError(
      'E_NOTHING_TRACKED',
      `no tracked table exists yet for publication ${name}: create the tables or fix --schemas/--tables`,
    );
  }
  await db.query(
    `CREATE PUBLICATION ${ident(name)} FOR ${parts.join(', ')} WITH (publish_via_partition_root = true)`,
  );
  logger.info({ publication: name, parts }, 'created publication');
}
