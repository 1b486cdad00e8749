import { describePgError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { ident, type Db } from '../../state/db.ts';
import { formatLsn, parseLsn, type Position } from '../../util/lsn.ts';
import { isConnectionError } from '../replication/index.ts';
import type { ShapeColumn, ShapeEntry } from './shape.ts';
import type { ShapeStore } from './tracker.ts';

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Table shapes in the state schema (`table_shapes`), per slot and slot incarnation: a recreated slot
 * starts a new stream, and LSNs of another cluster mean nothing here. A query that meets a PostgreSQL
 * restart is retried (the replication link is reconnecting through the same window) while `keepTrying`.
 */
export class PgShapeStore implements ShapeStore {
  private readonly db: Db;
  private readonly table: string;
  private readonly slot: string;
  private readonly incarnation: string;
  private readonly log: Logger;
  private readonly keepTrying: () => boolean;

  constructor(options: {
    db: Db;
    stateSchema: string;
    slot: string;
    /** Which life of the slot on which cluster (e.g. `<systemId>/<slotIncarnation>`). */
    incarnation: string;
    logger: Logger;
    keepTrying: () => boolean;
  }) {
    this.db = options.db;
    this.table = `${ident(options.stateSchema)}.table_shapes`;
    this.slot = options.slot;
    this.incarnation = options.incarnation;
    this.log = options.logger;
    this.keepTrying = options.keepTrying;
  }

  around(table: string, p: Position): Promise<ShapeEntry[]> {
    return this.retrying(table, async () => {
      const { rows } = await this.db.query<{ commit_lsn: string; seq: number; columns: ShapeColumn[] }>(
        `SELECT commit_lsn::text, seq, columns FROM ${this.table}
          WHERE slot = $1 AND incarnation = $2 AND table_name = $3 AND (commit_lsn, seq) <= ($4::pg_lsn, $5)
          ORDER BY commit_lsn DESC, seq DESC LIMIT 2`,
        [this.slot, this.incarnation, table, formatLsn(p.commitLsn), p.seq],
      );
      return rows.map((r) => ({
        position: { commitLsn: parseLsn(r.commit_lsn), seq: r.seq },
        columns: r.columns,
      }));
    });
  }

  record(table: string, e: ShapeEntry): Promise<void> {
    return this.retrying(table, async () => {
      await this.db.query(
        `INSERT INTO ${this.table} (slot, incarnation, table_name, commit_lsn, seq, columns)
         VALUES ($1, $2, $3, $4::pg_lsn, $5, $6) ON CONFLICT DO NOTHING`,
        [
          this.slot,
          this.incarnation,
          table,
          formatLsn(e.position.commitLsn),
          e.position.seq,
          JSON.stringify(e.columns),
        ],
      );
    });
  }

  private async retrying<T>(table: string, query: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await query();
      } catch (err) {
        if (!isConnectionError(err) || !this.keepTrying()) throw err;
        this.log.warn(
          { err: describePgError(err as Error).message, table, attempt },
          'table shape query failed; retrying',
        );
        await delay(Math.min(5000, 100 * 2 ** Math.min(attempt - 1, 6)));
      }
    }
  }
}
