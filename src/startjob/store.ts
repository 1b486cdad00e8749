import { MongoClient, type Collection, type Db } from 'mongodb';
import type { JobKind, JobStatus, Trigger } from './chronology.ts';
import type { SnapshotCounts } from './events.ts';

/**
 * The snapshot store in MongoDB: the latest document of every workspace item, with its content hash,
 * the snapshot that last changed it (`snapshotId`) and the last snapshot that saw it (`seenIn`); and
 * the job runs (status, timings, counts, errors), so `GET /jobs` and the chronology survive restarts.
 * Works against MongoDB and FerretDB (only find/$in/$ne, bulkWrite, updateMany, deleteMany, indexes).
 */

export interface StoredItem {
  _id: string;
  hash: string;
  snapshotId: string;
  seenIn: string;
  doc: Record<string, unknown>;
  updatedAt: Date;
}

export interface JobRunDoc {
  _id: string;
  kind: JobKind;
  status: JobStatus;
  trigger: Trigger;
  full: boolean;
  scheduledAt: Date;
  startedAt?: Date | null;
  finishedAt?: Date | null;
  counts?: SnapshotCounts | null;
  error?: string | null;
  result?: Record<string, unknown> | null;
  /** ETL context of the run in the job runner's event store, when it runs there. */
  etlContextId?: string | number | null;
  /** Process that ran it (host:pid), to tell an interrupted run after a restart. */
  owner: string;
}

export interface StoreOptions {
  url: string;
  /** Database; defaults to the URL's path or `tag_connector`. */
  database?: string;
  /** Collection prefix, so several workspaces can share one database. */
  prefix?: string;
}

export class SnapshotStore {
  readonly client: MongoClient;
  readonly db: Db;
  readonly items: Collection<StoredItem>;
  readonly runs: Collection<JobRunDoc>;

  constructor(opts: StoreOptions) {
    this.client = new MongoClient(opts.url, {
      serverSelectionTimeoutMS: 10_000,
      // FerretDB v1 has no retryable writes (no replica set).
      retryWrites: false,
    });
    const dbName = opts.database ?? (new URL(opts.url).pathname.slice(1) || 'tag_connector');
    const prefix = opts.prefix ?? 'workspace';
    this.db = this.client.db(dbName);
    this.items = this.db.collection<StoredItem>(`${prefix}_items`);
    this.runs = this.db.collection<JobRunDoc>(`${prefix}_job_runs`);
  }

  async open(): Promise<void> {
    await this.client.connect();
    await this.items.createIndex({ seenIn: 1 });
    await this.runs.createIndex({ kind: 1, scheduledAt: -1 });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** Hash and last snapshot of the stored items among `ids`. */
  async hashesOf(ids: readonly string[]): Promise<Map<string, { hash: string; seenIn: string }>> {
    const out = new Map<string, { hash: string; seenIn: string }>();
    if (ids.length === 0) return out;
    const cursor = this.items.find({ _id: { $in: [...ids] } }, { projection: { hash: 1, seenIn: 1 } });
    for await (const d of cursor) out.set(d._id, { hash: d.hash, seenIn: d.seenIn });
    return out;
  }

  /** Writes new or changed items and marks unchanged ones as seen by this snapshot. */
  async applyPage(
    snapshotId: string,
    upserts: readonly { id: string; hash: string; doc: Record<string, unknown> }[],
    unchangedIds: readonly string[],
  ): Promise<void> {
    const now = new Date();
    if (upserts.length)
      await this.items.bulkWrite(
        upserts.map((u) => ({
          replaceOne: {
            filter: { _id: u.id },
            replacement: { hash: u.hash, snapshotId, seenIn: snapshotId, doc: u.doc, updatedAt: now },
            upsert: true,
          },
        })),
        { ordered: false },
      );
    if (unchangedIds.length)
      await this.items.updateMany({ _id: { $in: [...unchangedIds] } }, { $set: { seenIn: snapshotId } });
  }

  /** Items the snapshot did not see (deleted upstream), in batches. */
  async *unseen(snapshotId: string, batchSize: number): AsyncGenerator<StoredItem[]> {
    let batch: StoredItem[] = [];
    for await (const d of this.items.find({ seenIn: { $ne: snapshotId } }).sort({ _id: 1 })) {
      batch.push(d);
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length) yield batch;
  }

  async deleteItems(ids: readonly string[]): Promise<void> {
    if (ids.length) await this.items.deleteMany({ _id: { $in: [...ids] } });
  }

  /** Every stored item, in id order (dump). */
  all(): AsyncIterable<StoredItem> {
    return this.items.find({}).sort({ _id: 1 });
  }

  async count(): Promise<number> {
    return this.items.countDocuments({});
  }

  // job runs

  async saveRun(run: JobRunDoc): Promise<void> {
    await this.runs.replaceOne({ _id: run._id }, run, { upsert: true });
  }

  async listRuns(limit = 100): Promise<JobRunDoc[]> {
    return this.runs.find({}).sort({ scheduledAt: -1 }).limit(limit).toArray();
  }

  /** Whether an initial sync ever succeeded (beyond the listed window too). */
  async hasSuccessfulInitialSync(): Promise<boolean> {
    return (await this.runs.countDocuments({ kind: 'initial-sync', status: 'success' }, { limit: 1 })) > 0;
  }

  /** Runs left scheduled/busy by an earlier process. */
  async activeRuns(): Promise<JobRunDoc[]> {
    return this.runs.find({ status: { $in: ['scheduled', 'busy'] } }).toArray();
  }

  /** Drops everything (tests). */
  async drop(): Promise<void> {
    await this.items.drop().catch(() => undefined);
    await this.runs.drop().catch(() => undefined);
  }
}
