import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { pgClientConfig } from '../../config/index.ts';
import { converterFor } from '../../extractor/values.ts';
import { CopyTextParser, type CopyField } from '../snapshot/copy-text.ts';
import { ident } from '../../state/db.ts';
import { scopeFilter } from '../auth.ts';
import type { AppDeps } from '../app.ts';
import { filterQueryProperties } from '../stream/query-schema.ts';
import { parseFilter } from '../stream/filters.ts';

const querySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterQueryProperties,
  },
} as const;

interface SnapshotTable {
  name: string;
  columns: { name: string; type: string }[];
  pk: string[];
}

/** Turns a column's COPY text into its JSON text: JSON.stringify(converterFor(type)(raw)), faster. */
export type JsonEmitter = (raw: string) => string;

const IDENTITY = converterFor('text');
const NUMBER = converterFor('integer');
const BOOL = converterFor('boolean');
/** Integer types whose text form is already the JSON number (JSON.stringify(Number(s)) === s). */
const INTEGER_TYPES = new Set(['smallint', 'integer', 'int2', 'int4', 'oid', 'xid']);

const stringJson: JsonEmitter = (s) => JSON.stringify(s);
const integerJson: JsonEmitter = (s) => s;
const floatJson: JsonEmitter = (s) => {
  const n = Number(s);
  // NaN and ±Infinity have no JSON number: the change stream keeps Postgres' spelling.
  return Number.isFinite(n) ? String(n) : JSON.stringify(s);
};
const boolJson: JsonEmitter = (s) => (s === 't' || s === 'true' ? 'true' : 'false');

/**
 * The JSON text of a column value of this type, typed exactly as the change stream types it
 * (converterFor), without building the value where that is not needed.
 */
export function jsonEmitterFor(typeName: string): JsonEmitter {
  const convert = converterFor(typeName);
  if (convert === IDENTITY) return stringJson;
  if (convert === BOOL) return boolJson;
  if (convert === NUMBER) return INTEGER_TYPES.has(typeName.trim()) ? integerJson : floatJson;
  return (s) => JSON.stringify(convert(s)) ?? 'null';
}

/**
 * How one table's COPY row becomes its NDJSON line, precomputed: the text around the values, each
 * column's `"name":` prefix in the order JSON.stringify gives an object built column by column
 * (integer-like names first), and each column's emitter.
 */
export function rowShape(
  t: SnapshotTable,
  workspaceColumn: string,
): {
  line: (fields: CopyField[]) => string;
  inWorkspaces: (fields: CopyField[], workspaces: Set<string>) => boolean;
} {
  const schema = t.name.slice(0, t.name.indexOf('.'));
  const table = t.name.slice(t.name.indexOf('.') + 1);
  // The key order of an object built by assignment, as before (and as the change stream builds it).
  const slots: Record<string, number> = {};
  t.columns.forEach((c, i) => (slots[c.name] = i));
  const order = Object.keys(slots).map((k) => slots[k]!);
  const prefixes = order.map((i, n) => (n === 0 ? '{' : ',') + JSON.stringify(t.columns[i]!.name) + ':');
  const emitters = order.map((i) => jsonEmitterFor(t.columns[i]!.type));
  const converters = t.columns.map((c) => converterFor(c.type));
  const empty = '{}';
  const head = `{"type":"snapshot.row","schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)},"key":`;
  const middle = `,"data":{"op":"r","schema":${JSON.stringify(schema)},"table":${JSON.stringify(table)},"before":null,"after":`;
  const pk = t.pk.map((name) => t.columns.findIndex((c) => c.name === name));
  const value = (fields: CopyField[], i: number): unknown => {
    const raw = i < 0 ? undefined : fields[i];
    return raw === null || raw === undefined ? (i < 0 ? undefined : null) : converters[i]!(raw);
  };
  // The usual key, one text or integer column: its JSON string straight from the COPY text.
  const onlyPk = pk.length === 1 ? pk[0]! : -1;
  const onlyPkEmitter = onlyPk >= 0 ? jsonEmitterFor(t.columns[onlyPk]!.type) : undefined;
  const fastKey = onlyPkEmitter === stringJson || onlyPkEmitter === integerJson;
  const keyText = (fields: CopyField[]): string => {
    if (!pk.length) return 'null';
    if (fastKey) {
      const raw = fields[onlyPk];
      if (raw !== null && raw !== undefined)
        return onlyPkEmitter === stringJson ? JSON.stringify(raw) : '"' + raw + '"';
    }
    let key = '';
    for (let n = 0; n < pk.length; n++) {
      const v = value(fields, pk[n]!);
      if (n) key += ',';
      key += typeof v === 'string' ? v : JSON.stringify(v);
    }
    return JSON.stringify(key);
  };
  const ws = t.columns.findIndex((c) => c.name === workspaceColumn);
  return {
    line: (fields) => {
      let after = empty;
      if (order.length) {
        after = '';
        for (let n = 0; n < order.length; n++) {
          const raw = fields[order[n]!];
          after += prefixes[n]! + (raw === null || raw === undefined ? 'null' : emitters[n]!(raw));
        }
        after += '}';
      }
      return head + keyText(fields) + ',"after":' + after + middle + after + '}}\n';
    },
    inWorkspaces: (fields, workspaces) => {
      if (ws < 0) return false;
      const w = value(fields, ws);
      return w !== undefined && w !== null && workspaces.has(String(w));
    },
  };
}

/**
 * GET /v1/api/ws/Snapshot: the tracked tables' current rows as NDJSON from one REPEATABLE READ
 * transaction, led by the LSN to resume the Stream from. The hand-off is exact: the snapshot is the
 * one a temporary logical slot exports at its consistent point, so it holds exactly the transactions
 * committed before that LSN, and Stream?fromLsn=<it> yields exactly those committed at or after it.
 * (Reading pg_current_wal_lsn() inside a snapshot is not exact: a commit already in the WAL can still
 * be invisible to a snapshot taken a moment later.)
 */
export async function snapshotRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor, config } = deps;
  const base = {
    ...pgClientConfig(config),
    options: '-c TimeZone=UTC -c DateStyle=ISO',
    application_name: 'tag-connector-snapshot',
  };

  app.get(
    '/v1/api/ws/Snapshot',
    {
      schema: {
        summary:
          'Consistent snapshot of the tracked tables (NDJSON), led by the LSN to resume the Stream from',
        querystring: querySchema,
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const q = req.query as { table?: string; type?: string; workspace?: string };
      const filter = parseFilter(q);
      filter.workspaces = scopeFilter(req.scope, filter.workspaces, 'workspace');
      filter.tables = scopeFilter(req.scope, filter.tables, 'table');

      const repl = new pg.Client({ ...base, replication: 'database' } as pg.ClientConfig);
      const db = new pg.Client(base);
      repl.on('error', () => undefined);
      db.on('error', () => undefined);
      let watermark: string;
      const tables: SnapshotTable[] = [];
      try {
        await Promise.all([repl.connect(), db.connect()]);
        const slotName = `tagc_snap_${process.pid}_${Date.now().toString(36)}`;
        const created = await repl.query<{ consistent_point: string; snapshot_name: string }>(
          `CREATE_REPLICATION_SLOT ${slotName} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')`,
        );
        watermark = created.rows[0]!.consistent_point;
        await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        await db.query(`SET TRANSACTION SNAPSHOT '${created.rows[0]!.snapshot_name.replace(/'/g, "''")}'`);
        // The snapshot is imported: the temporary slot may go.
        await repl.end().catch(() => undefined);
        const rels = await db.query<{ name: string; oid: number }>(
          `SELECT n.nspname || '.' || c.relname AS name, c.oid::int AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            ORDER BY 1`,
        );
        for (const r of rels.rows) {
          if (!extractor.filter.isTracked(r.name)) continue;
          const [schema, table] = [
            r.name.slice(0, r.name.indexOf('.')),
            r.name.slice(r.name.indexOf('.') + 1),
          ];
          if (filter.tables && !filter.tables.has(r.name) && !filter.tables.has(table)) continue;
          const cols = await db.query<{ name: string; type: string; pk: boolean }>(
            `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, coalesce(a.attnum = ANY (i.indkey), false) AS pk
               FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
            [r.oid],
          );
          tables.push({
            name: `${schema}.${table}`,
            columns: cols.rows,
            pk: cols.rows.filter((c) => c.pk).map((c) => c.name),
          });
        }
      } catch (err) {
        await repl.end().catch(() => undefined);
        await db.end().catch(() => undefined);
        throw Object.assign(new Error(`cannot take a snapshot: ${(err as Error).message}`), {
          statusCode: 503,
        });
      }

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'application/x-ndjson; charset=utf-8',
        'cache-control': 'no-cache',
      });
      let aborted = false;
      res.on('close', () => (aborted = true));
      /** Writes text; resolves once the socket takes more (or the client is gone). */
      const send = (text: string): Promise<void> | void => {
        if (res.write(text) || aborted) return;
        return new Promise((resolve) => {
          const done = (): void => {
            res.off('drain', done);
            res.off('close', done);
            resolve();
          };
          res.on('drain', done);
          res.on('close', done);
        });
      };
      const write = (line: string): Promise<void> | void => send(line + '\n');
      /** Set while a COPY is under way: the connection cannot take another query until it ends. */
      let copying = false;

      /** Streams one table's rows through COPY; returns how many were written. */
      const streamTable = async (t: SnapshotTable): Promise<number> => {
        const shape = rowShape(t, config.workspaceColumn);
        const [schema, table] = [t.name.slice(0, t.name.indexOf('.')), t.name.slice(t.name.indexOf('.') + 1)];
        const select = t.columns.length ? t.columns.map((c) => ident(c.name)).join(', ') : 'NULL';
        let out = '';
        let written = 0;
        const workspaces = filter.workspaces;
        const parser = new CopyTextParser((fields) => {
          if (workspaces && !shape.inWorkspaces(fields, workspaces)) return;
          out += shape.line(fields);
          written++;
        });
        copying = true;
        const copy = db.query(
          copyTo(`COPY (SELECT ${select} FROM ${ident(schema)}.${ident(table)}) TO STDOUT`),
        );
        // One res.write per chunk COPY hands over; the iterator reads no further until the socket
        // drains, and pg-copy-streams pauses the connection meanwhile: memory stays bounded.
        for await (const chunk of copy as AsyncIterable<Buffer>) {
          parser.write(chunk);
          if (out.length) {
            const text = out;
            out = '';
            const p = send(text);
            if (p) await p;
          }
          if (aborted) return written; // leaves the COPY unfinished: the connection is dropped
        }
        copying = false;
        parser.end();
        return written;
      };
      let rows = 0;
      try {
        await write(
          JSON.stringify({
            type: 'snapshot.header',
            lsn: watermark,
            watermark,
            snapshotLsn: watermark,
            fromLsn: watermark,
            resume: `/v1/api/ws/Stream?fromLsn=${watermark}`,
            tables: tables.map((t) => t.name),
          }),
        );
        for (const t of tables) {
          if (aborted) break;
          rows += await streamTable(t);
          if (aborted) break;
        }
        if (!aborted) await write(JSON.stringify({ type: 'snapshot.end', lsn: watermark, rows }));
        res.end();
      } catch (err) {
        res.end(
          JSON.stringify({
            type: 'snapshot.error',
            error: 'snapshot_failed',
            message: (err as Error).message,
          }) + '\n',
        );
      } finally {
        // Mid-COPY (client gone, or an error) the connection is dropped, which ends the transaction.
        if (!copying) await db.query('ROLLBACK').catch(() => undefined);
        await db.end().catch(() => undefined);
      }
    },
  );
}
