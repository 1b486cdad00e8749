import { randomBytes } from 'node:crypto';
import type { Logger } from '../../log.ts';
import { ident, type Db } from '../../state/db.ts';
import { formatLsn, type Lsn } from '../../util/lsn.ts';
import { endWatermark, lowWatermark, syncWatermark, WATERMARK_PREFIX, type Signal } from './messages.ts';
import { BackfillService, type BackfillRequest } from './service.ts';
import { backfillTables, claimBackfill, describeTable, emitChunk, emitMessage, startTable } from './sql.ts';
import type { BackfillListener, BackfillStream, ChunkReads } from './stream.ts';

/** The counters the runner keeps up to date (metrics.ts). */
export interface BackfillMetrics {
  rows: { inc(labels: { table: string }, n: number): void };
  remaining: { set(n: number): void };
}

export interface BackfillRunnerOptions {
  /** Connections whose sessions print values as the replication connection does (UTC, ISO dates). */
  db: Db;
  service: BackfillService;
  stream: BackfillStream;
  stateSchema: string;
  slot: string;
  /** Tables read at the same time (--backfill-parallel). */
  parallel: number;
  logger: Logger;
  metrics?: BackfillMetrics;
  /** The LSN confirmed to Postgres: past a sync watermark, every chunk before it is durable in every sink. */
  confirmedLsn: () => Lsn;
  /** How often to look for backfills queued by other processes (the CLI). */
  pollMs?: number;
}

interface TableRow {
  table_name: string;
  key_columns: string[];
  key_types: string[];
  state: string;
  last_key: string[] | null;
  rows: number;
  chunks: number;
  estimated_rows: number | null;
}

class Stopped extends Error {}
class Canceled extends Error {}

/**
 * Does the backfills (docs/backfill.md): one at a time, its tables `parallel` at a time, each table in
 * chunks: low watermark, then one statement that reads the chunk, writes it as the high watermark and
 * records the progress; then it waits for the stream to emit that chunk before the next, so live
 * changes never wait behind more than one chunk and WAL holds at most one chunk per table. Resumes a
 * running backfill after a restart from its recorded last key (a chunk recorded but not yet durable
 * in a sink is still in the WAL the slot holds, and the stream emits it again with the same ids).
 */
export class BackfillRunner implements BackfillListener {
  private readonly o: BackfillRunnerOptions;
  private readonly log: Logger;
  private readonly s: string;
  private stopping = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private readonly chunkWaiters = new Map<string, (reads: ChunkReads) => void>();
  private readonly syncWaiters = new Map<string, (commitLsn: Lsn) => void>();
  private readonly stopWaiters = new Set<() => void>();
  private readonly remaining = new Map<string, number>();

  constructor(options: BackfillRunnerOptions) {
    this.o = options;
    this.log = options.logger.child({ part: 'backfill' });
    this.s = ident(options.stateSchema);
    options.stream.listen(this);
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
  }

  /** Stops after the current chunk's statement; an unfinished backfill resumes on the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    for (const w of this.stopWaiters) w();
    await this.loop;
  }

  /** A backfill was queued: look now rather than at the next poll. */
  poke(): void {
    this.wake?.();
  }

  // BackfillListener: called by the pipeline, in stream order.
  chunkEmitted(reads: ChunkReads): void {
    if (reads.rows.length > 0) this.o.metrics?.rows.inc({ table: reads.table }, reads.rows.length);
    this.chunkWaiters.get(reads.nonce)?.(reads);
  }

  synced(nonce: string, commitLsn: Lsn): void {
    this.syncWaiters.get(nonce)?.(commitLsn);
  }

  signal(signal: Signal): void {
    void this.onSignal(signal).catch((err: Error) =>
      this.log.warn({ signal: signal.id, err: err.message }, 'signal refused'),
    );
  }

  private async onSignal(signal: Signal): Promise<void> {
    const d = signal.data;
    if (typeof d.slot === 'string' && d.slot !== this.o.slot) return;
    if (signal.type === 'backfill' || signal.type === 'execute-snapshot') {
      // Debezium's execute-snapshot names its tables `data-collections`.
      const tables = d.tables ?? d['data-collections'];
      const req: BackfillRequest = {
        tables: Array.isArray(tables) ? tables.map(String) : [],
        ...(typeof d.where === 'string' ? { where: d.where } : {}),
        ...(typeof d.chunkSize === 'number' ? { chunkSize: d.chunkSize } : {}),
      };
      const b = await this.o.service.create(req, 'signal', signal.id);
      if (b) {
        this.log.info(
          { signal: signal.id, backfill: b.id, tables: req.tables },
          'backfill requested by signal',
        );
        this.poke();
      }
    } else if (signal.type === 'cancel-backfill' && typeof d.id === 'string') {
      await this.o.service.cancel(d.id);
    } else {
      this.log.warn({ signal: signal.id, type: signal.type }, 'unknown signal type ignored');
    }
  }

  private async run(): Promise<void> {
    const pollMs = this.o.pollMs ?? 2000;
    while (!this.stopping) {
      let claimed: { id: string; where_sql: string | null; chunk_size: number } | undefined;
      try {
        const q = claimBackfill(this.s, this.o.slot);
        claimed = (await this.o.db.query<NonNullable<typeof claimed>>(q.text, q.values)).rows[0];
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'could not look for backfills');
      }
      if (claimed) {
        await this.backfill(claimed.id, claimed.where_sql, claimed.chunk_size);
        continue;
      }
      this.o.metrics?.remaining.set(0);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  private async backfill(id: string, where: string | null, chunkSize: number): Promise<void> {
    const started = Date.now();
    try {
      const q = backfillTables(this.s, id);
      const tables = (await this.o.db.query<TableRow>(q.text, q.values)).rows;
      const todo = tables.filter((t) => t.state !== 'done');
      this.log.info(
        { backfill: id, tables: tables.map((t) => t.table_name), resumed: todo.length < tables.length },
        'backfill running',
      );
      let failure: Error | undefined;
      const next = async (): Promise<void> => {
        for (let t = todo.shift(); t && !failure; t = todo.shift()) {
          try {
            await this.table(id, t, where, chunkSize);
          } catch (err) {
            failure ??= err as Error;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(this.o.parallel, todo.length)) }, next));
      if (failure) throw failure;
      // Every chunk is in the WAL; once the slot is confirmed past a barrier after them, they are
      // durable in every sink, and only then is the backfill done.
      await this.barrier(id);
      if (await this.o.service.finish(id, 'done', null))
        this.log.info({ backfill: id, seconds: (Date.now() - started) / 1000 }, 'backfill done');
    } catch (err) {
      if (err instanceof Stopped) return;
      if (err instanceof Canceled) {
        this.log.info({ backfill: id }, 'backfill canceled');
        // A low watermark may have been written after the cancel's end watermark: close it too.
        await this.message(endWatermark(this.o.slot, id)).catch(() => undefined);
        return;
      }
      const message = (err as Error).message;
      this.log.error({ backfill: id, err: message }, 'backfill failed');
      await this.o.service
        .finish(id, 'failed', message)
        .catch((e: Error) =>
          this.log.error({ backfill: id, err: e.message }, 'could not record the failure'),
        );
    } finally {
      for (const key of [...this.remaining.keys()])
        if (key.startsWith(`${id}\u0000`)) this.remaining.delete(key);
      this.updateRemaining();
    }
  }

  private async table(id: string, t: TableRow, where: string | null, chunkSize: number): Promise<void> {
    const table = t.table_name;
    const st = startTable(this.s, id, table);
    await this.o.db.query(st.text, st.values);
    const started = Date.now();
    const ctid = t.key_columns.length === 1 && t.key_columns[0] === 'ctid';
    let lastKey = t.last_key;
    let rows = Number(t.rows);
    let chunks = t.chunks;
    const startRows = rows;
    this.log.info(
      { backfill: id, table, estimatedRows: t.estimated_rows, ...(lastKey ? { resumeAfter: lastKey } : {}) },
      'backfill table started',
    );
    const remainingKey = `${id}\u0000${table}`;
    for (;;) {
      if (this.stopping) throw new Stopped();
      // The low watermark, only while the backfill runs (the row lock orders it against a cancel).
      const low = await this.o.db.query(
        `SELECT pg_logical_emit_message(true, '${WATERMARK_PREFIX}', $2)
           FROM ${this.s}.backfills WHERE id = $1 AND state = 'running' FOR UPDATE`,
        [id, lowWatermark(this.o.slot, id, table)],
      );
      if (low.rows.length === 0) throw new Canceled();
      const desc = await this.describe(table); // each chunk reads the columns as they are now
      const nonce = randomBytes(8).toString('hex');
      const emitted = this.waitFor(this.chunkWaiters, nonce);
      const q = emitChunk({
        schema: this.s,
        backfill: id,
        slot: this.o.slot,
        table,
        columns: desc.columns.map((c) => c.name),
        types: desc.columns.map((c) => c.type),
        keyColumns: t.key_columns,
        keyTypes: t.key_types,
        ctid,
        where,
        chunkSize,
        lastKey,
        nonce,
      });
      let r: { alive: number; n: number; last_key: string[] | null; total: number | null };
      try {
        r = (await this.o.db.query<typeof r>(q.text, q.values)).rows[0]!;
      } catch (err) {
        emitted.cancel();
        throw err;
      }
      if (r.alive === 0) {
        emitted.cancel();
        throw new Canceled();
      }
      const reads = await emitted.promise;
      if (reads.lost)
        throw new Error(`the stream lost the window of a chunk of ${table}; start the backfill again`);
      chunks++;
      rows = r.total ?? rows + r.n;
      lastKey = r.last_key ?? lastKey;
      if (t.estimated_rows !== null) this.remaining.set(remainingKey, Math.max(0, t.estimated_rows - rows));
      this.updateRemaining();
      if (r.n < chunkSize) break;
    }
    this.remaining.delete(remainingKey);
    const seconds = (Date.now() - started) / 1000;
    this.log.info(
      {
        backfill: id,
        table,
        rows,
        chunks,
        seconds,
        rowsPerSecond: seconds > 0 ? Math.round((rows - startRows) / seconds) : null,
      },
      'backfill table done',
    );
  }

  private async describe(table: string): Promise<{ columns: { name: string; type: string }[] }> {
    const dot = table.indexOf('.');
    const d = describeTable(table.slice(0, dot), table.slice(dot + 1));
    const desc = (await this.o.db.query<{ columns: { name: string; type: string }[] }>(d.text, d.values))
      .rows[0];
    if (!desc) throw new Error(`${table} no longer exists`);
    return desc;
  }

  /** Writes a sync watermark and waits until the slot is confirmed past it. */
  private async barrier(id: string): Promise<void> {
    const nonce = randomBytes(8).toString('hex');
    const seen = this.waitFor(this.syncWaiters, nonce);
    try {
      await this.message(syncWatermark(this.o.slot, id, nonce));
    } catch (err) {
      seen.cancel();
      throw err;
    }
    const commitLsn = await seen.promise;
    while (this.o.confirmedLsn() <= commitLsn) {
      if (this.stopping) throw new Stopped();
      await new Promise((r) => setTimeout(r, 50));
    }
    this.log.debug({ backfill: id, lsn: formatLsn(commitLsn) }, 'backfill durable in every sink');
  }

  private async message(content: string): Promise<void> {
    const q = emitMessage(content);
    await this.o.db.query(q.text, q.values);
  }

  /** A promise the stream resolves for `nonce`; rejected with Stopped when the runner stops. */
  private waitFor<T>(
    waiters: Map<string, (v: T) => void>,
    nonce: string,
  ): { promise: Promise<T>; cancel: () => void } {
    let onStop!: () => void;
    const cancel = () => {
      waiters.delete(nonce);
      this.stopWaiters.delete(onStop);
    };
    const promise = new Promise<T>((resolve, reject) => {
      onStop = () => {
        cancel();
        reject(new Stopped());
      };
      if (this.stopping) return onStop();
      this.stopWaiters.add(onStop);
      waiters.set(nonce, (v) => {
        cancel();
        resolve(v);
      });
    });
    promise.catch(() => undefined);
    return { promise, cancel };
  }

  private updateRemaining(): void {
    let n = 0;
    for (const v of this.remaining.values()) n += v;
    this.o.metrics?.remaining.set(n);
  }
}
