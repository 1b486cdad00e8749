import { MongoClient, type Collection, type Db } from 'mongodb';
import type { JobKind, JobStatus, Trigger } from './chronology.ts';
import type { SnapshotCounts } from './events.ts';

/**
 * The snapshot store in MongoDB: the latest document of every workspace item, with its content hash
 * and the snapshot that last changed it (`snapshotId`); and the job runs (status, timings, counts,
 * errors), so `GET /jobs` and the chronology survive restarts. Only simple operations (insertMany,
 * replaceOne, deleteMany by `_id $in`, `_id`-sorted scans): FerretDB's SQLite backend scans a whole
 * collection for any filter but `_id` equality, so the diff is a merge of two id-ordered scans
 * rather than a query per item or per page.
 */

export interface StoredItem {
  _id: string;
  hash: string;
  /** The snapshot that last created or changed it. */
  snapshotId: string;
  doc: Record<string, unknown>;
  updatedAt: Date;
}

export interface StagedItem {
  _id: string;
  hash: string;
  doc: Record<string, unknown>;
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
  /** Instance that runs it (host:pid:random), to tell an interrupted run after a restart. */
  owner: string;
  /** Set by another instance's `DELETE` on the job API: the owner cancels the run at its next heartbeat. */
  cancelRequested?: boolean;
}

/** A lease: which instance may run a kind (or write the store) until when. */
export interface LeaseDoc {
  _id: string;
  owner: string;
  runId: string;
  expiresAt: Date;
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
  readonly leases: Collection<LeaseDoc>;
  private readonly prefix: string;

  constructor(opts: StoreOptions) {
    this.client = new MongoClient(opts.url, {
      serverSelectionTimeoutMS: 10_000,
      // FerretDB v1 has no retryable writes (no replica set).
      retryWrites: false,
    });
    const dbName = opts.database ?? (new URL(opts.url).pathname.slice(1) || 'tag_connector');
    const prefix = opts.prefix ?? 'workspace';
    this.prefix = prefix;
    this.db = this.client.db(dbName);
    this.items = this.db.collection<StoredItem>(`${prefix}_items`);
    this.runs = this.db.collection<JobRunDoc>(`${prefix}_job_runs`);
    this.leases = this.db.collection<LeaseDoc>(`${prefix}_leases`);
  }

  async open(): Promise<void> {
    await this.client.connect();
    await this.runs.createIndex({ kind: 1, scheduledAt: -1 });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /**
   * The staging collection of one snapshot: the items as read from the API ({_id, hash, doc}), so the
   * run can compare two id-ordered cursors instead of querying per item. Dropped when the run ends.
   */
  staging(snapshotId: string, part: 'read' | 'created'): Collection<StagedItem> {
    return this.db.collection<StagedItem>(
      `${this.prefix}_staging_${snapshotId.replace(/[^\w-]/g, '_')}_${part}`,
    );
  }

  /** Drops the staging collections of a snapshot (before a run, fresh; after it, cleanup). */
  async dropStaging(snapshotId: string): Promise<void> {
    for (const part of ['read', 'created'] as const)
      await this.staging(snapshotId, part)
        .drop()
        .catch(() => undefined);
  }

  /**
   * Drops the staging collections of every snapshot not in `keep`: leftovers of a killed process
   * (whose last writes may even land after its run was found interrupted).
   */
  async sweepStaging(keep: readonly string[]): Promise<string[]> {
    const keepNames = new Set(
      keep.flatMap((id) => (['read', 'created'] as const).map((p) => this.staging(id, p).collectionName)),
    );
    const dropped: string[] = [];
    for (const c of await this.db.listCollections({}, { nameOnly: true }).toArray())
      if (c.name.startsWith(`${this.prefix}_staging_`) && !keepNames.has(c.name)) {
        await this.db.dropCollection(c.name).catch(() => undefined);
        dropped.push(c.name);
      }
    return dropped;
  }

  /** Moves the staged created items into the store, in batches. */
  async commitCreated(snapshotId: string, batchSize: number): Promise<void> {
    let batch: StagedItem[] = [];
    const flush = async () => {
      if (batch.length) await this.insertItems(snapshotId, batch);
      batch = [];
    };
    for await (const r of this.staging(snapshotId, 'created').find({}).sort({ _id: 1 })) {
      batch.push(r);
      if (batch.length >= batchSize) await flush();
    }
    await flush();
  }

  /** Adds a page to the staging collection; an id already staged (served twice) is ignored. */
  async stage(staging: Collection<StagedItem>, rows: readonly StagedItem[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await staging.insertMany([...rows], { ordered: false });
    } catch (err) {
      const e = err as { code?: number; writeErrors?: { code?: number }[] };
      const dupOnly = e.code === 11000 && (e.writeErrors ?? []).every((w) => w.code === 11000);
      if (!dupOnly) throw err;
    }
  }

  /** Inserts items, stamped with the snapshot id. */
  async insertItems(snapshotId: string, rows: readonly StagedItem[]): Promise<void> {
    if (rows.length === 0) return;
    const now = new Date();
    await this.items.insertMany(
      rows.map((r) => ({ _id: r._id, hash: r.hash, snapshotId, doc: r.doc, updatedAt: now })),
      { ordered: false },
    );
  }

  /**
   * Replaces changed items and removes deleted ones, in two round trips whatever the batch size: one
   * `deleteMany` by `_id $in`, one `insertMany`. (FerretDB/SQLite scans the collection for every
   * update or delete, even by `_id`, so a replaceOne per item costs a scan each.) A crash between
   * the two leaves a changed item missing: the next run reports it as created, nothing is lost.
   */
  async replaceItems(
    snapshotId: string,
    changed: readonly StagedItem[],
    deletedIds: readonly string[],
  ): Promise<void> {
    await this.deleteItems([...changed.map((r) => r._id), ...deletedIds]);
    await this.insertItems(snapshotId, changed);
  }

  async deleteItems(ids: readonly string[]): Promise<void> {
    if (ids.length) await this.items.deleteMany({ _id: { $in: [...ids] } });
  }

  /** Every stored item, in id order (diff, dump). */
  all(): AsyncIterable<StoredItem> {
    return this.items.find({}).sort({ _id: 1 });
  }

  /** Hash of every stored item, in id order. */
  hashes(): AsyncIterable<StagedItem> {
    return this.items.find({}, { projection: { hash: 1, doc: 1 } }).sort({ _id: 1 });
  }

  async count(): Promise<number> {
    return this.items.countDocuments({});
  }

  // job runs

  /** Writes a run's fields (not `cancelRequested`, which other instances set). */
  async saveRun(run: JobRunDoc): Promise<void> {
    const { _id, cancelRequested: _ignored, ...fields } = run;
    await this.runs.updateOne({ _id }, { $set: fields }, { upsert: true });
  }

  /** Marks a run failed as interrupted if it is still scheduled or busy; true when it was. */
  async markInterrupted(id: string, reason: string, at: Date): Promise<boolean> {
    const r = await this.runs.updateOne(
      { _id: id, status: { $in: ['scheduled', 'busy'] } },
      { $set: { status: 'failed', error: reason, finishedAt: at } },
    );
    return r.modifiedCount === 1;
  }

  async getRun(id: string): Promise<JobRunDoc | null> {
    return this.runs.findOne({ _id: id });
  }

  /** Asks the owners of these runs to cancel them (another instance's `DELETE`). */
  async requestCancel(ids: readonly string[]): Promise<void> {
    if (ids.length)
      await this.runs.updateMany({ _id: { $in: [...ids] } }, { $set: { cancelRequested: true } });
  }

  // leases: mutual exclusion between instances sharing the store

  /**
   * Takes the lease `name` for `owner` unless another owner holds it unexpired. Atomic: the insert
   * fails on the existing `_id`, the take-over only matches an expired lease (or our own).
   */
  async acquireLease(
    name: string,
    owner: string,
    runId: string,
    ttlMs: number,
  ): Promise<{ ok: true } | { ok: false; holder: LeaseDoc | null }> {
    const now = new Date();
    const expiresAt = new Date(now.getTime() + ttlMs);
    try {
      await this.leases.insertOne({ _id: name, owner, runId, expiresAt });
      return { ok: true };
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    const taken = await this.leases.findOneAndUpdate(
      { _id: name, $or: [{ expiresAt: { $lt: now } }, { owner }] },
      { $set: { owner, runId, expiresAt } },
    );
    if (taken) return { ok: true };
    return { ok: false, holder: await this.leases.findOne({ _id: name }) };
  }

  /** Extends a lease we hold; false when it is no longer ours. */
  async renewLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    const r = await this.leases.updateOne(
      { _id: name, owner },
      { $set: { expiresAt: new Date(Date.now() + ttlMs) } },
    );
    return r.matchedCount === 1;
  }

  async releaseLease(name: string, owner: string): Promise<void> {
    await this.leases.deleteOne({ _id: name, owner });
  }

  async lease(name: string): Promise<LeaseDoc | null> {
    return this.leases.findOne({ _id: name });
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
    await this.leases.drop().catch(() => undefined);
    for (const c of await this.db.listCollections({}, { nameOnly: true }).toArray())
      if (c.name.startsWith(`${this.prefix}_staging_`))
        await this.db.dropCollection(c.name).catch(() => undefined);
  }
}
