import { ConnectorError, errors, EXIT } from '../errors.ts';
import { ident, type Db } from '../state/db.ts';
import { formatLsn, isLsnText, parseLsn } from '../util/lsn.ts';

/**
 * `tag-connector slot status|drop|advance`: look at replication slots and act on the ones tag-connector
 * created (recorded in {{stateSchema}}.slots). Acting on another slot needs force; an active slot is
 * never touched.
 */

export interface SinkCheckpoint {
  sink: string;
  commitLsn: string;
  seq: number;
  updatedAt: string;
}

export interface SlotStatus {
  slot: string;
  slotType: string;
  plugin: string | null;
  database: string | null;
  active: boolean;
  activePid: number | null;
  restartLsn: string | null;
  confirmedFlushLsn: string | null;
  currentLsn: string;
  /** pg_current_wal_lsn() - confirmed_flush_lsn; null when unknown */
  lagBytes: number | null;
  walStatus: string | null;
  /** bytes until invalidation; null when max_slot_wal_keep_size = -1 */
  safeWalSize: number | null;
  /** created by tag-connector (recorded in the state schema of this database) */
  recorded: boolean;
  checkpoints: SinkCheckpoint[];
}

export interface SlotTarget {
  stateSchema: string;
}

const ident2 = (schema: string, table: string) => `${ident(schema)}.${ident(table)}`;

async function hasTable(db: Db, schema: string, table: string): Promise<boolean> {
  const { rows } = await db.query<{ t: string | null }>(`SELECT to_regclass($1)::text AS t`, [
    ident2(schema, table),
  ]);
  return rows[0]!.t !== null;
}

async function recordedSlots(db: Db, schema: string): Promise<Set<string>> {
  if (!(await hasTable(db, schema, 'slots'))) return new Set();
  const { rows } = await db.query<{ slot_name: string }>(`SELECT slot_name FROM ${ident2(schema, 'slots')}`);
  return new Set(rows.map((r) => r.slot_name));
}

async function checkpointsOf(db: Db, schema: string): Promise<Map<string, SinkCheckpoint[]>> {
  const out = new Map<string, SinkCheckpoint[]>();
  if (!(await hasTable(db, schema, 'checkpoints'))) return out;
  const { rows } = await db.query<{
    slot: string;
    sink: string;
    commit_lsn: string;
    seq: number;
    updated_at: Date;
  }>(
    `SELECT slot, sink, commit_lsn::text, seq, updated_at FROM ${ident2(schema, 'checkpoints')} ORDER BY slot, sink`,
  );
  for (const r of rows) {
    out.set(r.slot, [
      ...(out.get(r.slot) ?? []),
      { sink: r.sink, commitLsn: r.commit_lsn, seq: r.seq, updatedAt: new Date(r.updated_at).toISOString() },
    ]);
  }
  return out;
}

/** Slots with their lag and our checkpoints: one slot, or every slot on the server (`all`). */
export async function slotStatus(db: Db, o: SlotTarget & { slot?: string }): Promise<SlotStatus[]> {
  const { rows } = await db.query<{
    slot_name: string;
    slot_type: string;
    plugin: string | null;
    database: string | null;
    active: boolean;
    active_pid: number | null;
    restart_lsn: string | null;
    confirmed_flush_lsn: string | null;
    current_lsn: string;
    lag: string | null;
    wal_status: string | null;
    safe_wal_size: string | null;
  }>(
    `SELECT slot_name, slot_type, plugin, database, active, active_pid, restart_lsn::text, confirmed_flush_lsn::text,
            pg_current_wal_lsn()::text AS current_lsn,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag,
            wal_status, safe_wal_size::text
       FROM pg_replication_slots
      WHERE $1::text IS NULL OR slot_name = $1
      ORDER BY slot_name`,
    [o.slot ?? null],
  );
  const recorded = await recordedSlots(db, o.stateSchema);
  const checkpoints = await checkpointsOf(db, o.stateSchema);
  return rows.map((r) => ({
    slot: r.slot_name,
    slotType: r.slot_type,
    plugin: r.plugin,
    database: r.database,
    active: r.active,
    activePid: r.active_pid,
    restartLsn: r.restart_lsn,
    confirmedFlushLsn: r.confirmed_flush_lsn,
    currentLsn: r.current_lsn,
    lagBytes: r.lag === null ? null : Number(r.lag),
    walStatus: r.wal_status,
    safeWalSize: r.safe_wal_size === null ? null : Number(r.safe_wal_size),
    recorded: recorded.has(r.slot_name),
    checkpoints: checkpoints.get(r.slot_name) ?? [],
  }));
}

export const slotErrors = {
  notFound: (slot: string) =>
    new ConnectorError(
      'E_SLOT_NOT_FOUND',
      `replication slot ${slot} does not exist (tag-connector slot status --all lists them)`,
    ),
  notOurs: (slot: string, schema: string) =>
    new ConnectorError(
      'E_SLOT_NOT_OURS',
      `replication slot ${slot} was not created by tag-connector (not recorded in ${schema}.slots of this database): ` +
        `another consumer may depend on it. Check with its owner, then repeat with --force.`,
    ),
  active: (slot: string, pid: number | null) =>
    new ConnectorError(
      'E_SLOT_ACTIVE',
      `replication slot ${slot} is in use${pid ? ` by pid ${pid}` : ''} (a running extract-tasks?). Stop that process first` +
        (pid
          ? `; if it is gone but the server still holds its connection: SELECT pg_terminate_backend(${pid}); ` +
            `(it is also released after wal_sender_timeout)`
          : '.'),
    ),
  otherDatabase: (slot: string, db: string | null) =>
    new ConnectorError(
      'E_SLOT_DATABASE',
      `replication slot ${slot} belongs to database ${db ?? '(none: a physical slot)'}; connect to that database (--db / --pg-url).`,
    ),
  badTarget: (text: string) =>
    new ConnectorError(
      'E_SLOT_TARGET',
      `--to: expected an LSN like 0/16B3748 or "current", got ${JSON.stringify(text)}`,
      EXIT.config,
    ),
  backwards: (slot: string, to: string, confirmed: string) =>
    new ConnectorError(
      'E_SLOT_BACKWARDS',
      `cannot move slot ${slot} back to ${to}: it is already at ${confirmed} (a slot never goes backwards; WAL before ` +
        `that may be gone). To replay older changes, take a snapshot instead.`,
    ),
  beyondEnd: (slot: string, to: string, current: string) =>
    new ConnectorError(
      'E_SLOT_TARGET',
      `cannot advance slot ${slot} to ${to}: the server's WAL ends at ${current}`,
    ),
} as const;

interface Row {
  slot_type: string;
  plugin: string | null;
  database: string | null;
  current_db: string;
  active_pid: number | null;
  active: boolean;
  wal_status: string | null;
  confirmed_flush_lsn: string | null;
  current_lsn: string;
  flush_lsn: string;
}

/** Loads the slot and applies the refusals common to drop and advance. */
async function guard(db: Db, o: SlotTarget & { slot: string; force: boolean }): Promise<Row> {
  const { rows } = await db.query<Row>(
    `SELECT slot_type, plugin, database, current_database() AS current_db, active_pid, active, wal_status,
            confirmed_flush_lsn::text, pg_current_wal_lsn()::text AS current_lsn,
            pg_current_wal_flush_lsn()::text AS flush_lsn
       FROM pg_replication_slots WHERE slot_name = $1`,
    [o.slot],
  );
  const r = rows[0];
  if (!r) throw slotErrors.notFound(o.slot);
  if (r.database !== r.current_db) throw slotErrors.otherDatabase(o.slot, r.database);
  if (r.active) throw slotErrors.active(o.slot, r.active_pid);
  if (!o.force && !(await recordedSlots(db, o.stateSchema)).has(o.slot))
    throw slotErrors.notOurs(o.slot, o.stateSchema);
  return r;
}

function translateActive(err: unknown, slot: string): unknown {
  const m = /is active for PID (\d+)/.exec((err as Error).message);
  return m ? slotErrors.active(slot, Number(m[1])) : err;
}

export interface DropResult {
  slot: string;
  plugin: string | null;
  confirmedFlushLsn: string | null;
  forced: boolean;
}

/** Drops a slot tag-connector created (any slot of this database with force); never an active one. */
export async function dropSlot(
  db: Db,
  o: SlotTarget & { slot: string; force: boolean },
): Promise<DropResult> {
  const r = await guard(db, o);
  try {
    await db.query(`SELECT pg_drop_replication_slot($1)`, [o.slot]);
  } catch (err) {
    throw translateActive(err, o.slot);
  }
  // the record goes with the slot: a later slot of the same name made by someone else is not ours
  if (await hasTable(db, o.stateSchema, 'slots')) {
    await db.query(`DELETE FROM ${ident2(o.stateSchema, 'slots')} WHERE slot_name = $1`, [o.slot]);
  }
  // and so does its incarnation: a slot of this name made later is a new life (slot-incarnation.ts)
  if (await hasTable(db, o.stateSchema, 'slot_incarnations')) {
    await db.query(`DELETE FROM ${ident2(o.stateSchema, 'slot_incarnations')} WHERE slot_name = $1`, [
      o.slot,
    ]);
  }
  // the stored backfill chunks only a replay of this slot could read, and an owed initial backfill
  if (await hasTable(db, o.stateSchema, 'backfill_chunks')) {
    await db.query(
      `DELETE FROM ${ident2(o.stateSchema, 'backfill_chunks')} c USING ${ident2(o.stateSchema, 'backfills')} b
        WHERE c.backfill_id = b.id AND b.slot = $1`,
      [o.slot],
    );
    await db.query(`DELETE FROM ${ident2(o.stateSchema, 'initial_snapshots')} WHERE slot = $1`, [o.slot]);
  }
  // the tables' recorded shapes (src/extractor/shapes/): a later slot of this name streams anew
  if (await hasTable(db, o.stateSchema, 'table_shapes')) {
    await db.query(`DELETE FROM ${ident2(o.stateSchema, 'table_shapes')} WHERE slot = $1`, [o.slot]);
  }
  return { slot: o.slot, plugin: r.plugin, confirmedFlushLsn: r.confirmed_flush_lsn, forced: o.force };
}

export interface AdvanceResult {
  slot: string;
  from: string | null;
  to: string;
  /** bytes of WAL whose changes are skipped (never delivered) */
  skippedBytes: number | null;
}

/**
 * Moves a slot's confirmed position forward to `to` (an LSN, or "current" = the flushed end of WAL): the changes in
 * between are never delivered. Refuses to go backwards or past the end of WAL, and an invalidated slot.
 */
export async function advanceSlot(
  db: Db,
  o: SlotTarget & { slot: string; to: string; force: boolean },
): Promise<AdvanceResult> {
  const wantCurrent = o.to.trim().toLowerCase() === 'current';
  if (!wantCurrent && !isLsnText(o.to.trim())) throw slotErrors.badTarget(o.to);
  const r = await guard(db, o);
  if (r.wal_status === 'lost') throw errors.slotInvalidated(o.slot, 'lost');
  // a logical slot advances at most to the flushed end of WAL (PostgreSQL clamps to it)
  const target = wantCurrent ? parseLsn(r.flush_lsn) : parseLsn(o.to.trim());
  const targetText = formatLsn(target);
  if (r.confirmed_flush_lsn && target < parseLsn(r.confirmed_flush_lsn)) {
    throw slotErrors.backwards(o.slot, targetText, r.confirmed_flush_lsn);
  }
  if (target > parseLsn(r.current_lsn)) throw slotErrors.beyondEnd(o.slot, targetText, r.current_lsn);
  let end: string;
  try {
    const { rows } = await db.query<{ end_lsn: string }>(
      `SELECT end_lsn::text FROM pg_replication_slot_advance($1, $2::pg_lsn)`,
      [o.slot, targetText],
    );
    end = rows[0]!.end_lsn;
  } catch (err) {
    throw translateActive(err, o.slot);
  }
  const from = r.confirmed_flush_lsn;
  return {
    slot: o.slot,
    from,
    to: end,
    skippedBytes: from ? Number(parseLsn(end) - parseLsn(from)) : null,
  };
}

const bytes = (n: number | null) => {
  if (n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
};

/** Human output of `slot status`. */
export function formatStatus(slots: SlotStatus[]): string {
  const lines: string[] = [];
  for (const s of slots) {
    lines.push(`slot ${s.slot}${s.recorded ? '' : '  (not created by tag-connector)'}`);
    const kv: [string, string][] = [
      ['type', s.slotType],
      ['plugin', s.plugin ?? ''],
      ['database', s.database ?? ''],
      ['active pid', s.activePid ? String(s.activePid) : '(none)'],
      ['confirmed_flush_lsn', s.confirmedFlushLsn ?? ''],
      ['current wal lsn', s.currentLsn],
      ['lag', s.lagBytes === null ? '' : `${bytes(s.lagBytes)} (${s.lagBytes} bytes)`],
      ['wal_status', s.walStatus ?? ''],
      [
        'safe_wal_size',
        s.safeWalSize === null ? 'unlimited (max_slot_wal_keep_size = -1)' : bytes(s.safeWalSize),
      ],
    ];
    for (const [k, v] of kv) lines.push(`  ${k.padEnd(20)} ${v}`);
    if (s.checkpoints.length) {
      lines.push('  checkpoints (sink  commit_lsn/seq  updated_at):');
      for (const c of s.checkpoints) lines.push(`    ${c.sink}  ${c.commitLsn}/${c.seq}  ${c.updatedAt}`);
    } else if (s.recorded) {
      lines.push('  checkpoints          (none yet)');
    }
    if (s.walStatus === 'lost') lines.push(`  ! ${errors.slotInvalidated(s.slot, 'lost').message}`);
    else if (s.walStatus === 'unreserved')
      lines.push('  ! past max_slot_wal_keep_size: invalidated at the next checkpoint unless it catches up');
  }
  return lines.join('\n') + '\n';
}
