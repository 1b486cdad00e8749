import { randomBytes } from 'node:crypto';
import { ident, type Db } from '../../state/db.ts';
import { endWatermark } from './messages.ts';
import {
  describeTable,
  finishBackfill,
  getBackfill,
  insertBackfill,
  listBackfills,
  type TablePlan,
} from './sql.ts';
import { toState, type BackfillRow, type BackfillState } from './state.ts';

export const MAX_CHUNK_SIZE = 100_000;

/** A client error in a backfill request: the API answers it with its status and code. */
export class BackfillRequestError extends Error {
  readonly statusCode: number;
  readonly code: string;
  constructor(code: string, message: string, statusCode = 400) {
    super(message);
    this.name = 'BackfillRequestError';
    this.code = code;
    this.statusCode = statusCode;
  }
}

export interface BackfillRequest {
  tables: string[];
  where?: string | null;
  chunkSize?: number;
}

export interface BackfillServiceOptions {
  db: Db;
  stateSchema: string;
  slot: string;
  /** Whether the daemon tracks this `schema.table` (a backfill of an untracked table is refused). */
  isTracked: (table: string) => boolean;
  allowCtid: boolean;
  chunkSize: number;
}

/**
 * Backfill requests and their state in the state schema: create (validated), list, get, cancel. The
 * API, the CLI, the signal table and `--snapshot-mode initial` all go through it; the runner
 * (runner.ts) does the work.
 */
export class BackfillService {
  private readonly o: BackfillServiceOptions;
  private readonly s: string;

  constructor(options: BackfillServiceOptions) {
    this.o = options;
    this.s = ident(options.stateSchema);
  }

  /** Checks tables, keys and the predicate, then queues the backfill; a signal's is made once. */
  async create(
    req: BackfillRequest,
    origin: string,
    signalId: number | null = null,
    fixedId?: string,
  ): Promise<BackfillState | null> {
    if (!Array.isArray(req.tables) || req.tables.length === 0)
      throw new BackfillRequestError('E_BACKFILL_TABLES', 'tables: name at least one schema.table');
    const chunkSize = req.chunkSize ?? this.o.chunkSize;
    if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > MAX_CHUNK_SIZE)
      throw new BackfillRequestError(
        'E_BACKFILL_CHUNK',
        `chunkSize: expected an integer from 1 to ${MAX_CHUNK_SIZE}`,
      );
    const where = req.where?.trim() ? req.where.trim() : null;
    if (where !== null && where.includes(';'))
      throw new BackfillRequestError('E_BACKFILL_WHERE', 'where: one SQL predicate, without ";"');
    const plans: TablePlan[] = [];
    for (const name of [...new Set(req.tables)]) plans.push(await this.plan(name, where));
    const id = fixedId ?? `bf_${randomBytes(6).toString('hex')}`;
    const q = insertBackfill(this.s, { id, slot: this.o.slot, where, chunkSize, origin, signalId }, plans);
    const { rows } = await this.o.db.query(q.text, q.values);
    if (rows.length === 0) return null; // this signal's backfill exists already
    return this.get(id);
  }

  private async plan(name: string, where: string | null): Promise<TablePlan> {
    const dot = typeof name === 'string' ? name.indexOf('.') : -1;
    if (dot <= 0 || dot === name.length - 1)
      throw new BackfillRequestError(
        'E_BACKFILL_TABLES',
        `tables: ${JSON.stringify(name)} is not schema.table`,
      );
    if (!this.o.isTracked(name))
      throw new BackfillRequestError('E_BACKFILL_UNTRACKED', `${name} is not a table this daemon tracks`);
    const q = describeTable(name.slice(0, dot), name.slice(dot + 1));
    const { rows } = await this.o.db.query<{
      reltuples: number;
      columns: { name: string; type: string; pk: number | null }[];
    }>(q.text, q.values);
    const t = rows[0];
    if (!t) throw new BackfillRequestError('E_BACKFILL_NO_TABLE', `${name}: no such table`);
    const pk = t.columns.filter((c) => c.pk !== null).sort((a, b) => a.pk! - b.pk!);
    let keyColumns = pk.map((c) => c.name);
    let keyTypes = pk.map((c) => c.type);
    if (keyColumns.length === 0) {
      if (!this.o.allowCtid)
        throw new BackfillRequestError(
          'E_BACKFILL_NO_PK',
          `${name} has no primary key: a backfill reads in key order and drops the keys the stream changed ` +
            `meanwhile. Add a primary key, or run the daemon with --backfill-allow-ctid (ctid ranges; ` +
            `reads of rows changed during the backfill may then be stale: docs/backfill.md)`,
        );
      keyColumns = ['ctid'];
      keyTypes = ['tid'];
    }
    if (where !== null) {
      try {
        await this.o.db.query(
          `EXPLAIN SELECT 1 FROM ${ident(name.slice(0, dot))}.${ident(name.slice(dot + 1))} WHERE (${where})`,
        );
      } catch (err) {
        throw new BackfillRequestError('E_BACKFILL_WHERE', `where: ${(err as Error).message} (on ${name})`);
      }
    }
    return {
      table: name,
      keyColumns,
      keyTypes,
      estimatedRows: t.reltuples >= 0 ? Math.round(t.reltuples) : null,
    };
  }

  /** Every table (partition roots, not partitions) this daemon tracks, for `--snapshot-mode initial`. */
  async trackedTables(): Promise<string[]> {
    const { rows } = await this.o.db.query<{ t: string }>(
      `SELECT n.nspname || '.' || c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        ORDER BY 1`,
    );
    return rows.map((r) => r.t).filter((t) => this.o.isTracked(t));
  }

  /**
   * The `initial` backfill (`id` from initial.ts): every table that can be backfilled; the others are
   * reported and skipped. null when there is nothing to read, or a backfill with that id exists.
   */
  async createInitial(
    id: string,
    tables: string[],
    skipped: (table: string, err: Error) => void,
  ): Promise<BackfillState | null> {
    const ok: string[] = [];
    for (const t of tables) {
      try {
        await this.plan(t, null);
        ok.push(t);
      } catch (err) {
        if (!(err instanceof BackfillRequestError)) throw err;
        skipped(t, err);
      }
    }
    if (ok.length === 0) return null;
    return this.create({ tables: ok }, 'initial', null, id);
  }

  async get(id: string): Promise<BackfillState | null> {
    const q = getBackfill(this.s, this.o.slot, id);
    const { rows } = await this.o.db.query<BackfillRow>(q.text, q.values);
    return rows[0] ? toState(rows[0]) : null;
  }

  async list(limit = 100): Promise<BackfillState[]> {
    const q = listBackfills(this.s, this.o.slot, limit);
    const { rows } = await this.o.db.query<BackfillRow>(q.text, q.values);
    return rows.map((r) => toState(r));
  }

  /** Cancels a queued or running backfill; its end watermark closes any chunk window in the stream. */
  async cancel(id: string): Promise<BackfillState> {
    await this.finish(id, 'canceled', null);
    const b = await this.get(id);
    if (!b) throw new BackfillRequestError('E_BACKFILL_UNKNOWN', `no backfill ${id}`, 404);
    return b;
  }

  /** Moves a backfill to a final state; false when it had one already. */
  async finish(id: string, state: 'done' | 'failed' | 'canceled', error: string | null): Promise<boolean> {
    const q = finishBackfill(this.s, this.o.slot, id, state, error, endWatermark(this.o.slot, id));
    const { rows } = await this.o.db.query(q.text, q.values);
    return rows.length > 0;
  }
}
