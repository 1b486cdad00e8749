import type { CheckpointOrigin, SinkReset, StoredCheckpoint } from '../../sinks/origin.ts';
import { parseOrigin } from '../../sinks/origin.ts';
import type { CheckpointStore } from '../../sinks/runner.ts';
import { ident, type Db } from '../../state/db.ts';
import { formatLsn, parseLsn, type Position } from '../../util/lsn.ts';

/**
 * Per-sink checkpoints in the state schema, keyed by slot and sink, each with the origin it was
 * written under (the server, timeline, database and slot incarnation: src/sinks/origin.ts). The state
 * schema lives in the watched database, so a restored or migrated database brings old checkpoints
 * along: the origin is what tells them apart (src/extractor/replication/checkpoint-identity.ts).
 */
export class PgCheckpointStore implements CheckpointStore {
  private readonly db: Db;
  private readonly schema: string;
  private readonly table: string;
  private readonly slot: string;
  private readonly origin?: CheckpointOrigin;

  /** `origin`: what `save` records (the daemon's current one); without it, saves record none. */
  constructor(db: Db, schema: string, slot: string, origin?: CheckpointOrigin) {
    this.db = db;
    this.schema = schema;
    this.table = `${ident(schema)}.checkpoints`;
    this.slot = slot;
    this.origin = origin;
  }

  async load(sink: string): Promise<Position | null> {
    return (await this.loadStored(sink))?.position ?? null;
  }

  async loadStored(sink: string): Promise<StoredCheckpoint | null> {
    const { rows } = await this.db.query<{ commit_lsn: string; seq: number; origin: unknown }>(
      `SELECT commit_lsn::text, seq, origin FROM ${this.table} WHERE slot = $1 AND sink = $2`,
      [this.slot, sink],
    );
    const r = rows[0];
    return r
      ? { position: { commitLsn: parseLsn(r.commit_lsn), seq: r.seq }, origin: parseOrigin(r.origin) }
      : null;
  }

  async save(sink: string, p: Position): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.table} (slot, sink, commit_lsn, seq, origin, updated_at) VALUES ($1, $2, $3::pg_lsn, $4, $5, now())
       ON CONFLICT (slot, sink) DO UPDATE
         SET commit_lsn = EXCLUDED.commit_lsn, seq = EXCLUDED.seq, origin = EXCLUDED.origin, updated_at = now()`,
      [this.slot, sink, formatLsn(p.commitLsn), p.seq, this.origin ? JSON.stringify(this.origin) : null],
    );
  }

  /** Forgets the sink's checkpoint and records the reset, in one transaction. */
  async reset(sink: string, reset: SinkReset): Promise<void> {
    await this.db.query(
      `WITH gone AS (DELETE FROM ${this.table} WHERE slot = $1 AND sink = $2)
       INSERT INTO ${ident(this.schema)}.sink_resets (slot, sink, reset_at, reason, previous, origin)
       VALUES ($1, $2, $3, $4, $5, $6)`,
      [
        this.slot,
        sink,
        reset.at,
        reset.reason,
        JSON.stringify(reset.previous),
        JSON.stringify(this.origin ?? null),
      ],
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
