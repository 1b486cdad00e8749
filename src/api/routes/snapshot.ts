import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import pg from 'pg';
import { pgClientConfig } from '../../config/index.ts';
import { CopyOut } from '../snapshot/copy-out.ts';
import { SnapshotRowEncoder } from '../snapshot/row-encoder.ts';
import { GovernedRowEncoder } from '../snapshot/governed-rows.ts';
import type { SnapshotTable } from '../snapshot/rows.ts';
import { ident } from '../../state/db.ts';
import { scopeTables, scopeWorkspaces } from '../auth.ts';
import type { AppDeps } from '../app.ts';
import { httpError } from '../http-errors.ts';
import { ConcurrencyLimit, Serial } from '../limits.ts';
import { HEADROOM_SQL, snapshotVerdict, type Headroom } from '../snapshot/headroom.ts';
import { filterQueryProperties } from '../stream/query-schema.ts';
import { parseFilter } from '../stream/filters.ts';

const querySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterQueryProperties,
  },
} as const;

/**
 * How much output may wait in the response (its buffer and the socket's) before the COPY is read
 * further. The stream's own high-water mark (16 KiB) is below one output chunk: waiting for every
 * chunk to drain would stall the pipeline at each one.
 */
const QUEUED_BYTES = 1024 * 1024;

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
  const limit = new ConcurrencyLimit(config.snapshotMaxConcurrent);
  /** Headroom check and wal sender + slot taking, one Snapshot at a time: two never share the last one. */
  const taking = new Serial();

  app.get(
    '/v1/api/ws/Snapshot',
    {
      config: { role: 'snapshot' },
      // HEAD would take a whole snapshot (a temporary slot and a wal sender) to send no rows.
      exposeHeadRoute: false,
      schema: {
        summary:
          'Consistent snapshot of the tracked tables (NDJSON), led by the LSN to resume the Stream from',
        querystring: querySchema,
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const release = limit.tryAcquire();
      if (!release)
        throw httpError(
          429,
          `${limit.max} Snapshot requests are under way (--snapshot-max-concurrent); retry later`,
          { retryAfter: 5 },
        );
      try {
        await takeSnapshot(req, reply);
      } finally {
        release();
      }
    },
  );

  async function takeSnapshot(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const q = req.query as { table?: string; type?: string; workspace?: string };
    const filter = parseFilter(q);
    filter.workspaces = scopeWorkspaces(req.scope, filter.workspaces);
    filter.tables = scopeTables(req.scope, filter.tables);

    const repl = new pg.Client({ ...base, replication: 'database' } as pg.ClientConfig);
    const db = new pg.Client(base);
    repl.on('error', () => undefined);
    db.on('error', () => undefined);
    let watermark: string;
    const tables: SnapshotTable[] = [];
    try {
      await db.connect();
      const slotName = `tagc_snap_${process.pid}_${Date.now().toString(36)}`;
      const created = await taking.run(async () => {
        const verdict = snapshotVerdict((await db.query<Headroom>(HEADROOM_SQL, [config.slot])).rows[0]!);
        if (!verdict.ok) throw httpError(429, verdict.reason, { retryAfter: 10 });
        await repl.connect();
        return repl.query<{ consistent_point: string; snapshot_name: string }>(
          `CREATE_REPLICATION_SLOT ${slotName} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')`,
        );
      });
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
        const [schema, table] = [r.name.slice(0, r.name.indexOf('.')), r.name.slice(r.name.indexOf('.') + 1)];
        if (filter.tables && !filter.tables.has(r.name) && !filter.tables.has(table)) continue;
        const cols = await db.query<{ name: string; type: string; pk: boolean }>(
          `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, coalesce(a.attnum = ANY (i.indkey), false) AS pk
               FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
              WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
          [r.oid],
        );
        // A workspace-scoped caller sees no table its rows cannot belong to, not even by name.
        if (req.scope?.workspaces && !cols.rows.some((c) => c.name === config.workspaceColumn)) continue;
        tables.push({
          name: `${schema}.${table}`,
          columns: cols.rows,
          pk: cols.rows.filter((c) => c.pk).map((c) => c.name),
        });
      }
    } catch (err) {
      await repl.end().catch(() => undefined);
      await db.end().catch(() => undefined);
      if ((err as { statusCode?: number }).statusCode === 429) throw err;
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
    /** Stops the COPY under way, if any. */
    let stopCopy: (() => void) | undefined;
    res.on('close', () => {
      aborted = true;
      stopCopy?.();
    });
    /** Resolves once the socket has taken what is queued (or the client is gone). */
    const drained = (): Promise<void> =>
      new Promise((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
    /** Writes text; resolves once the socket takes more (or the client is gone). */
    const write = (line: string): Promise<void> | void => {
      if (res.write(line + '\n') || aborted) return;
      return drained();
    };
    /** Set while a COPY is under way: the connection cannot take another query until it ends. */
    let copying = false;

    /** Streams one table's rows through COPY; returns how many were written. */
    const streamTable = async (t: SnapshotTable): Promise<number> => {
      // A table with rules gets the governed view the change stream carries (docs/governance.md).
      const governor = extractor.governance.for(t.name);
      const encoder = governor
        ? new GovernedRowEncoder(t, governor, config.workspaceColumn, filter.workspaces ?? undefined)
        : new SnapshotRowEncoder(t, config.workspaceColumn, filter.workspaces ?? undefined);
      const [schema, table] = [t.name.slice(0, t.name.indexOf('.')), t.name.slice(t.name.indexOf('.') + 1)];
      const select = t.columns.length ? t.columns.map((c) => ident(c.name)).join(', ') : 'NULL';
      /** Writes the encoder's full buffers; waits while more than QUEUED_BYTES are queued. */
      const send = (): Promise<void> | undefined => {
        let ok = true;
        for (const b of encoder.take()) ok = res.write(b, () => encoder.release(b));
        if (!ok && !aborted && res.writableLength > QUEUED_BYTES) return drained();
        return undefined;
      };
      copying = true;
      const copy = new CopyOut(
        `COPY (SELECT ${select} FROM ${ident(schema)}.${ident(table)}) TO STDOUT`,
        (b, start, end) => encoder.writeRange(b, start, end),
        send,
      );
      stopCopy = () => copy.abort();
      // It reads no further while the socket drains (Postgres waits): memory stays bounded.
      db.query(copy);
      try {
        await copy.done;
      } catch (err) {
        // The rows read before the error go out ahead of it, as they came.
        encoder.flush();
        await send();
        throw err;
      } finally {
        stopCopy = undefined;
      }
      if (aborted) return encoder.rows; // the COPY is left unfinished: the connection is dropped
      copying = false;
      encoder.end();
      await send();
      return encoder.rows;
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
      // Like a 5xx: the cause goes to the log, the client gets the request id.
      req.log.error({ reqId: req.id, err: (err as Error).message }, 'snapshot failed mid-stream');
      res.end(
        JSON.stringify({
          type: 'snapshot.error',
          error: 'snapshot_failed',
          message: `the snapshot failed; see the log for request ${req.id}`,
          requestId: req.id,
        }) + '\n',
      );
    } finally {
      // Mid-COPY (client gone, or an error) the connection is dropped, which ends the transaction.
      if (!copying) await db.query('ROLLBACK').catch(() => undefined);
      await db.end().catch(() => undefined);
    }
  }
}
