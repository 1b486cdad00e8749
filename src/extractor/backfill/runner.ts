import { randomBytes } from 'node:crypto';
import type { Logger } from '../../log.ts';
import { ident, type Db } from '../../state/db.ts';
import { formatLsn, type Lsn } from '../../util/lsn.ts';
import {
  endWatermark,
  lowWatermark,
  parseChunkData,
  syncWatermark,
  WATERMARK_PREFIX,
  type ChunkData,
  type Signal,
} from './messages.ts';
import { BackfillService, type BackfillRequest } from './service.ts';
import {
  backfillTables,
  claimBackfill,
  describeTable,
  emitMessage,
  forgetChunks,
  forgetDurableChunks,
  loadChunk,
  readChunk,
  startTable,
} from './sql.ts';
import type { BackfillListener, BackfillStream, ChunkReads } from './stream.ts';
import { ChunkSizer } from './chunk-sizer.ts';

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
  /**
   * How long a chunk's emission may hold the stream (--backfill-chunk-ms): the chunk size adapts to
   * it (ChunkSizer); 0 or absent: every chunk is the backfill's chunk size.
   */
  chunkMs?: number;
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

interface ChunkResult {
  alive: number;
  n: number;
  last_key: string[] | null;
  total: number | null;
  /** The rows' JSON text (ChunkData.rows). */
  rows: string;
}

class Stopped extends Error {}
class Canceled extends Error {}

/**
 * Chunks of one table read but not yet emitted by the stream: the next chunk is read while the
 * previous one is emitted, and no further (memory: this many chunks per table being read).
 */
const CHUNKS_IN_FLIGHT = 2;

/**
 * Does the backfills (docs/backfill.md): one at a time, its tables `parallel` at a time, each table in
 * chunks: low watermark, then one statement that reads the chunk, keeps a copy of it (unlogged),
 * writes the high watermark and records the progress; the rows go to the stream in memory, which
 * emits them when it reaches the high watermark. The next chunk is read while the stream emits the
 * previous one (CHUNKS_IN_FLIGHT). Resumes a running backfill after a restart from its recorded last
 * key (a chunk recorded but not yet durable in a sink is replayed by the stream from the stored copy,
 * with the same ids).
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
  /** Chunks read and not yet taken by the stream (a promise while their statement runs). */
  private readonly chunks = new Map<string, Promise<ChunkData | undefined>>();
  /** Emitted chunks whose stored copy waits for the slot to be confirmed past them. */
  private readonly stored: { nonce: string; commitLsn: string }[] = [];
  private forgetting = false;

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
    if (reads.rows.emitted > 0) this.o.metrics?.rows.inc({ table: reads.table }, reads.rows.emitted);
    if (reads.read > 0) this.stored.push({ nonce: reads.nonce, commitLsn: formatLsn(reads.commitLsn) });
    const waiter = this.chunkWaiters.get(reads.nonce);
    if (waiter) return waiter(reads);
    // A replayed chunk (after a restart) whose rows are gone: the backfill cannot be exact any more.
    if (reads.lost)
      void this.o.service
        .finish(
          reads.backfill,
          'failed',
          `the rows of a chunk of ${reads.table} were lost; start the backfill again`,
        )
        .catch((err: Error) =>
          this.log.error({ backfill: reads.backfill, err: err.message }, 'could not record the failure'),
        );
  }

  chunk(backfill: string, nonce: string): ChunkData | Promise<ChunkData | undefined> {
    const mine = this.chunks.get(nonce);
    if (mine) {
      this.chunks.delete(nonce);
      return mine;
    }
    return this.loadChunk(nonce).catch((err: Error) => {
      // The stream cannot go on without the rows: a fatal error, and the replay after the restart reads them.
      throw new Error(`could not read the stored chunk ${nonce} of backfill ${backfill}: ${err.message}`);
    });
  }

  private async loadChunk(nonce: string): Promise<ChunkData | undefined> {
    const q = loadChunk(this.s, nonce);
    const row = (await this.o.db.query<Record<string, unknown>>(q.text, q.values)).rows[0];
    return row ? parseChunkData(row) : undefined;
  }

  /** Forgets the stored copies the slot has been confirmed past (no replay reaches them again). */
  private forgetDurable(): void {
    if (this.forgetting || this.stored.length === 0) return;
    this.forgetting = true;
    const batch = this.stored.splice(0, this.stored.length);
    const q = forgetDurableChunks(
      this.s,
      this.o.slot,
      batch.map((c) => c.nonce),
      batch.map((c) => c.commitLsn),
    );
    this.o.db
      .query<{ nonce: string }>(q.text, q.values)
      .then(({ rows }) => {
        const gone = new Set(rows.map((r) => r.nonce));
        this.stored.unshift(...batch.filter((c) => !gone.has(c.nonce)));
      })
      .catch((err: Error) => {
        this.stored.unshift(...batch);
        this.log.warn({ err: err.message }, 'could not forget durable chunks');
      })
      .finally(() => (this.forgetting = false));
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
      await this.forgetAll(id);
    } catch (err) {
      if (err instanceof Stopped) return;
      if (err instanceof Canceled) {
        this.log.info({ backfill: id }, 'backfill canceled');
        // A low watermark may have been written after the cancel's end watermark: close it too.
        await this.message(endWatermark(this.o.slot, id)).catch(() => undefined);
        await this.forgetAll(id);
        return;
      }
      const message = (err as Error).message;
      this.log.error({ backfill: id, err: message }, 'backfill failed');
      await this.o.service
        .finish(id, 'failed', message)
        .catch((e: Error) =>
          this.log.error({ backfill: id, err: e.message }, 'could not record the failure'),
        );
      await this.forgetAll(id);
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
    // Chunks read whose emission by the stream is still awaited, oldest first.
    const inFlight: Promise<void>[] = [];
    const sizer = new ChunkSizer(chunkSize, this.o.chunkMs ?? 0);
    const whenEmitted = async (reads: Promise<ChunkReads>): Promise<void> => {
      const r = await reads;
      if (r.lost)
        throw new Error(`the stream lost the window of a chunk of ${table}; start the backfill again`);
      sizer.emitted(r.read, r.emitMs);
      this.forgetDurable();
    };
    try {
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
        const columns = desc.columns.map((c) => c.name);
        const types = desc.columns.map((c) => c.type);
        const size = sizer.size;
        const q = readChunk({
          schema: this.s,
          backfill: id,
          slot: this.o.slot,
          table,
          columns,
          types,
          keyColumns: t.key_columns,
          keyTypes: t.key_types,
          ctid,
          where,
          chunkSize: size,
          lastKey,
          nonce,
        });
        const result = this.o.db.query<ChunkResult>(q.text, q.values).then((res) => res.rows[0]!);
        // In the map before the statement commits: the stream may reach the high watermark before
        // this client reads the answer. If the answer is lost after the commit, the stored copy serves.
        this.chunks.set(
          nonce,
          result.then(
            (r) => ({ columns, types, rows: r.rows }),
            () => this.loadChunk(nonce),
          ),
        );
        let r: ChunkResult;
        try {
          r = await result;
        } catch (err) {
          this.chunks.delete(nonce);
          emitted.cancel();
          throw err;
        }
        if (r.alive === 0) {
          this.chunks.delete(nonce);
          emitted.cancel();
          throw new Canceled();
        }
        if (r.n === 0) this.chunks.delete(nonce); // an empty chunk: the stream needs no rows
        inFlight.push(whenEmitted(emitted.promise));
        chunks++;
        rows = r.total ?? rows + r.n;
        lastKey = r.last_key ?? lastKey;
        if (t.estimated_rows !== null) this.remaining.set(remainingKey, Math.max(0, t.estimated_rows - rows));
        this.updateRemaining();
        if (r.n < size) break;
        if (inFlight.length >= CHUNKS_IN_FLIGHT) await inFlight.shift();
      }
      while (inFlight.length > 0) await inFlight.shift();
    } finally {
      for (const p of inFlight) p.catch(() => undefined);
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

  /** The backfill ended: its stored chunks are durable everywhere (done) or no longer wanted. */
  private async forgetAll(id: string): Promise<void> {
    const q = forgetChunks(this.s, id);
    await this.o.db
      .query(q.text, q.values)
      .catch((err: Error) =>
        this.log.warn({ backfill: id, err: err.message }, 'could not forget its chunks'),
      );
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
