import { ident, qualified, type Query } from '../../state/db.ts';
import { baseType } from '../decode/index.ts';
import { WATERMARK_PREFIX } from './messages.ts';

/**
 * The backfill's SQL, as plain functions returning `{ text, values }` (pg-boss plans style).
 * `s` is the quoted state schema.
 */

const BACKFILL_COLUMNS = `b.id, b.state, b.where_sql, b.chunk_size, b.origin, b.error, b.created_at, b.started_at, b.finished_at`;

/** A backfill with its tables, as one JSON row each (list and get). */
function selectBackfills(s: string, where: string): string {
  return `SELECT ${BACKFILL_COLUMNS},
            coalesce((SELECT json_agg(json_build_object(
                'table', t.table_name, 'state', t.state, 'rows', t.rows, 'chunks', t.chunks,
                'lastKey', t.last_key, 'estimatedRows', t.estimated_rows, 'keyColumns', t.key_columns,
                'startedAt', t.started_at, 'finishedAt', t.finished_at) ORDER BY t.position)
               FROM ${s}.backfill_tables t WHERE t.backfill_id = b.id), '[]') AS tables
       FROM ${s}.backfills b WHERE ${where}`;
}

export function listBackfills(s: string, slot: string, limit: number): Query {
  return {
    text: `${selectBackfills(s, 'b.slot = $1')} ORDER BY b.created_at DESC, b.id LIMIT $2`,
    values: [slot, limit],
  };
}

export function getBackfill(s: string, slot: string, id: string): Query {
  return { text: selectBackfills(s, 'b.slot = $1 AND b.id = $2'), values: [slot, id] };
}

export interface TablePlan {
  table: string;
  keyColumns: string[];
  keyTypes: string[];
  estimatedRows: number | null;
}

/**
 * Inserts a backfill and its tables in one statement (one transaction). A signal's backfill is made
 * once per (slot, signal id): the signal is seen again when the stream replays it after a restart; an
 * initial backfill once per id (initial.ts). Either conflict inserts nothing.
 */
export function insertBackfill(
  s: string,
  b: {
    id: string;
    slot: string;
    where: string | null;
    chunkSize: number;
    origin: string;
    signalId: number | null;
  },
  tables: TablePlan[],
): Query {
  return {
    text: `WITH b AS (
             INSERT INTO ${s}.backfills (id, slot, where_sql, chunk_size, origin, signal_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id)
           INSERT INTO ${s}.backfill_tables (backfill_id, position, table_name, key_columns, key_types, estimated_rows)
           SELECT b.id, t.position, t.table_name, t.key_columns, t.key_types, t.estimated_rows
             FROM b, jsonb_to_recordset($7::jsonb)
                  AS t(position int, table_name text, key_columns text[], key_types text[], estimated_rows bigint)
           RETURNING backfill_id`,
    values: [
      b.id,
      b.slot,
      b.where,
      b.chunkSize,
      b.origin,
      b.signalId,
      JSON.stringify(
        tables.map((t, i) => ({
          position: i,
          table_name: t.table,
          key_columns: t.keyColumns,
          key_types: t.keyTypes,
          estimated_rows: t.estimatedRows,
        })),
      ),
    ],
  };
}

/** Moves a backfill to a final state (once) and writes its end watermark in the same transaction. */
export function finishBackfill(
  s: string,
  slot: string,
  id: string,
  state: 'done' | 'failed' | 'canceled',
  error: string | null,
  endMessage: string,
): Query {
  return {
    text: `WITH f AS (
             UPDATE ${s}.backfills SET state = $3, error = $4, finished_at = now()
              WHERE slot = $1 AND id = $2 AND state IN ('queued', 'running') RETURNING id)
           SELECT f.id, pg_logical_emit_message(true, '${WATERMARK_PREFIX}', $5)::text AS lsn FROM f`,
    values: [slot, id, state, error, endMessage],
  };
}

/** The oldest running backfill (resumed first), else the oldest queued one, made running. */
export function claimBackfill(s: string, slot: string): Query {
  return {
    text: `UPDATE ${s}.backfills SET state = 'running', started_at = coalesce(started_at, now())
            WHERE id = (SELECT id FROM ${s}.backfills WHERE slot = $1 AND state IN ('running', 'queued')
                         ORDER BY state = 'running' DESC, created_at, id LIMIT 1 FOR UPDATE)
            RETURNING id, where_sql, chunk_size`,
    values: [slot],
  };
}

export function backfillTables(s: string, id: string): Query {
  return {
    text: `SELECT table_name, key_columns, key_types, state, last_key, rows::float8 AS rows, chunks,
                  estimated_rows::float8 AS estimated_rows
             FROM ${s}.backfill_tables WHERE backfill_id = $1 ORDER BY position`,
    values: [id],
  };
}

export function startTable(s: string, id: string, table: string): Query {
  return {
    text: `UPDATE ${s}.backfill_tables SET state = 'running', started_at = coalesce(started_at, now())
            WHERE backfill_id = $1 AND table_name = $2 AND state <> 'done'`,
    values: [id, table],
  };
}

export function emitMessage(content: string): Query {
  return {
    text: `SELECT pg_logical_emit_message(true, '${WATERMARK_PREFIX}', $1)::text AS lsn`,
    values: [content],
  };
}

export interface ChunkSpec {
  schema: string;
  backfill: string;
  slot: string;
  table: string;
  columns: string[];
  types: string[];
  keyColumns: string[];
  keyTypes: string[];
  /** ctid mode: keyset over ctid, no key for the window to compare. */
  ctid: boolean;
  where: string | null;
  chunkSize: number;
  lastKey: string[] | null;
  nonce: string;
}

/**
 * Types whose cast to text is their output function (an I/O cast), the common ones by name: for
 * them `::text` is what the replication stream carries. Others may cast through a function that
 * writes something else (bpchar drops its padding, inet adds its netmask, boolean spells `true`),
 * or be a domain over such a type, so they are written by their output function (format's `%s`).
 */
const TEXT_CASTS_AS_OUTPUT = new Set([
  'smallint',
  'integer',
  'bigint',
  'numeric',
  'real',
  'double precision',
  'text',
  'character varying',
  'uuid',
  'date',
  'timestamp with time zone',
  'timestamp without time zone',
  'time with time zone',
  'time without time zone',
  'interval',
  'json',
  'jsonb',
  'bytea',
  'money',
  'oid',
]);

/** A column's value as its type's output text (what pgoutput and wal2json print), NULL as NULL. */
function outputText(column: string, type: string): string {
  const base = baseType(type);
  // arrays cast to text by I/O (array_out, which writes each element by its output function)
  if (base.endsWith('[]') || TEXT_CASTS_AS_OUTPUT.has(base)) return `${column}::text`;
  return `CASE WHEN ${column} IS NULL THEN NULL ELSE format('%s', ${column}) END`;
}

/**
 * One chunk in one statement, so one transaction, only while the backfill is still running (a cancel
 * takes the same row lock): reads the next `chunkSize` rows after `lastKey` in key order (keyset
 * pagination) as Postgres' text forms, keeps a copy in the unlogged `backfill_chunks` (for a replay
 * after a crash), writes the high watermark (small: the rows stay out of the WAL), records the
 * progress, and returns the rows. The statement's snapshot is taken after the low watermark
 * committed, and the high watermark commits after it: that is what the window argument needs.
 * Result: `alive` (0 when the backfill is no longer running: nothing was written), `n`, `last_key`,
 * `total`, `rows`.
 */
export function readChunk(c: ChunkSpec): Query {
  const keys = c.keyColumns.map(ident);
  const values: unknown[] = [c.backfill];
  const param = (v: unknown): string => {
    values.push(v);
    return `$${values.length}`;
  };
  const after = c.lastKey
    ? `AND (${keys.join(', ')}) > (${c.lastKey.map((k, i) => `${param(k)}::${c.keyTypes[i]}`).join(', ')})`
    : '';
  const predicate = c.where ? `AND (${c.where})` : '';
  const rowText = `json_build_array(${c.columns.map((col, i) => outputText(`t.${ident(col)}`, c.types[i]!)).join(', ')})`;
  const keyText = `ARRAY[${keys.map((k) => `t.${k}::text`).join(', ')}]`;
  const keyAliases = keys.map((_, i) => `_k${i}`);
  const order = keyAliases.join(', ');
  const orderDesc = keyAliases.map((k) => `${k} DESC`).join(', ');
  const nonce = param(c.nonce);
  const message = `json_build_object('kind', 'high', 'slot', ${param(c.slot)}::text, 'backfill', $1::text,
      'table', ${param(c.table)}::text, 'nonce', ${nonce}::text,
      'key', ${param(JSON.stringify(c.ctid ? [] : c.keyColumns))}::json, 'count', agg.n)::text`;
  const columns = param(JSON.stringify(c.columns));
  const types = param(JSON.stringify(c.types));
  const tableParam = param(c.table);
  const chunkSize = Math.trunc(c.chunkSize); // a validated positive integer
  const text = `WITH b AS (
      SELECT id FROM ${c.schema}.backfills WHERE id = $1 AND state = 'running' FOR UPDATE),
    chunk AS (
      SELECT ${keys.map((k, i) => `t.${k} AS ${keyAliases[i]}`).join(', ')}, ${rowText} AS r, ${keyText} AS k
        FROM ${qualified(c.table)} t
       WHERE EXISTS (SELECT 1 FROM b) ${after} ${predicate}
       ORDER BY ${keys.map((k) => `t.${k}`).join(', ')}
       LIMIT ${chunkSize}),
    agg AS (SELECT count(*)::int AS n, coalesce(json_agg(r ORDER BY ${order}), '[]'::json) AS rows FROM chunk),
    tail AS (SELECT k FROM chunk ORDER BY ${orderDesc} LIMIT 1),
    emit AS (SELECT pg_logical_emit_message(true, '${WATERMARK_PREFIX}', ${message}) AS lsn
               FROM agg WHERE EXISTS (SELECT 1 FROM b)),
    store AS (
      INSERT INTO ${c.schema}.backfill_chunks (nonce, backfill_id, lsn, columns, types, rows)
      SELECT ${nonce}, $1, emit.lsn, ${columns}::json, ${types}::json, agg.rows
        FROM agg, emit WHERE agg.n > 0),
    progress AS (
      UPDATE ${c.schema}.backfill_tables p
         SET rows = p.rows + agg.n, chunks = p.chunks + 1,
             last_key = coalesce((SELECT k FROM tail), p.last_key),
             state = CASE WHEN agg.n < ${chunkSize} THEN 'done' ELSE 'running' END,
             finished_at = CASE WHEN agg.n < ${chunkSize} THEN now() END
        FROM agg
       WHERE p.backfill_id = $1 AND p.table_name = ${tableParam} AND EXISTS (SELECT 1 FROM b)
      RETURNING p.rows)
    SELECT (SELECT count(*) FROM b)::int AS alive, agg.n, (SELECT k FROM tail) AS last_key,
           (SELECT lsn FROM emit)::text AS lsn, (SELECT rows FROM progress)::float8 AS total,
           agg.rows::text AS rows
      FROM agg`;
  return { text, values };
}

/** A chunk's stored copy (a replay after a restart reaches its high watermark). */
export function loadChunk(s: string, nonce: string): Query {
  return {
    text: `SELECT columns, types, rows::text AS rows
             FROM ${s}.backfill_chunks WHERE nonce = $1`,
    values: [nonce],
  };
}

/**
 * Forgets the stored copies of chunks whose high watermark's transaction the slot has confirmed (so
 * no replay reaches them again): `commitLsns[i]` is the commit LSN of `nonces[i]`'s transaction.
 */
export function forgetDurableChunks(s: string, slot: string, nonces: string[], commitLsns: string[]): Query {
  return {
    text: `DELETE FROM ${s}.backfill_chunks c
            USING unnest($2::text[], $3::pg_lsn[]) AS x(nonce, commit_lsn)
            WHERE c.nonce = x.nonce
              AND x.commit_lsn < (SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1)
            RETURNING c.nonce`,
    values: [slot, nonces, commitLsns],
  };
}

/** Forgets every stored chunk of a backfill that ended (done: all durable; failed or canceled). */
export function forgetChunks(s: string, backfill: string): Query {
  return { text: `DELETE FROM ${s}.backfill_chunks WHERE backfill_id = $1`, values: [backfill] };
}

const DESCRIBE_TABLE = (schema: string, table: string) => `
           SELECT c.oid::int AS oid, c.reltuples::float8 AS reltuples,
                  coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                    'pk', array_position(i.indkey::int2[], a.attnum)) ORDER BY a.attnum)
                    FILTER (WHERE a.attnum > 0), '[]') AS columns
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
            WHERE n.nspname = ${schema} AND c.relname = ${table} AND c.relkind IN ('r', 'p')
            GROUP BY c.oid, c.reltuples`;

/** Columns (with their types) and primary key of a table, and its row estimate. */
export function describeTable(schema: string, table: string): Query {
  return { text: DESCRIBE_TABLE('$1', '$2'), values: [schema, table] };
}

/**
 * A chunk's low watermark, written only while the backfill is running (the row lock orders it
 * against a cancel: no row when it is not), with the table's columns as they are now (`columns`
 * null when the table is gone).
 */
export function lowWatermarkAndColumns(s: string, id: string, content: string, table: string): Query {
  const dot = table.indexOf('.');
  return {
    text: `SELECT pg_logical_emit_message(true, '${WATERMARK_PREFIX}', $2)::text AS lsn, d.columns
             FROM ${s}.backfills b LEFT JOIN LATERAL (${DESCRIBE_TABLE('$3', '$4')}) d ON true
            WHERE b.id = $1 AND b.state = 'running' FOR UPDATE OF b`,
    values: [id, content, table.slice(0, dot), table.slice(dot + 1)],
  };
}
