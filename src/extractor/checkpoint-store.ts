import type { CheckpointStore } from '../sinks/runner.ts';
import { ident, type Db } from '../state/db.ts';
import { formatLsn, parseLsn, type Position } from '../util/lsn.ts';

/** Per-sink checkpoints in the state schema, keyed by slot and sink. */
export class PgCheckpointStore implements CheckpointStore {
  private readonly db: Db;
  private readonly table: string;
  private readonly slot: string;

  constructor(db: Db, schema: string, slot: string) {
    this.db = db;
    this.table = `${ident(schema)}.checkpoints`;
    this.slot = slot;
  }

  async load(sink: string): Promise<Position | null> {
    const { rows } = await this.db.query<{ commit_lsn: string; seq: number }>(
      `SELECT commit_lsn::text, seq FROM ${this.table} WHERE slot = $1 AND sink = $2`,
      [this.slot, sink],
    );
    const r = rows[0];
    return r ? { commitLsn: parseLsn(r.commit_lsn), seq: r.seq } : null;
  }

  async save(sink: string, p: Position): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.table} (slot, sink, commit_lsn, seq, updated_at) VALUES ($1, $2, $3::pg_lsn, $4, now())
       ON CONFLICT (slot, sink) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, seq = EXCLUDED.seq, updated_at = now()`,
      [this.slot, sink, formatLsn(p.commitLsn), p.seq],
    );
  }

  async all(): Promise<{ sink: string; commitLsn: string; seq: number; updatedAt: Date }[]> {
    const { rows } = await this.db.query<{ sink: string; commit_lsn: string; seq: number; updated_at: Date }>(
      `SELECT sink, commit_lsn::text, seq, updated_at FROM ${this.table} WHERE slot = $1`,
      [this.slot],
    );
    return rows.map((r) => ({ sink: r.sink, commitLsn: r.commit_lsn, seq: r.seq, updatedAt: r.updated_at }));
  }
}
