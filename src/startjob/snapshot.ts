import type { CloudEvent } from '../events/envelope.ts';
import {
  emptyCounts,
  type ItemChange,
  type Publisher,
  type SnapshotCounts,
  type SnapshotEvents,
} from './events.ts';
import { contentHash } from './hash.ts';
import type { SnapshotStore, StagedItem } from './store.ts';
import type { Item } from './workspace.ts';

/**
 * One snapshot run, in three passes with bounded memory (one page, one batch):
 *  1. read the workspace page by page into a staging collection `{_id, hash, doc}`;
 *  2. merge the staging and the store, both in id order, classifying every id as created, changed,
 *     unchanged or deleted (`mergeClassify`, pure); per batch publish the events (every item with
 *     `full`), then replace changed and remove deleted items in the store (ids the store cursor has
 *     passed already) and stage created items aside;
 *  3. insert the created items into the store (after the merge, so they never show up in the store
 *     cursor it is still reading), then drop the staging.
 * Events are published before the store is written: a crash in between makes the next attempt of the
 * same snapshot id send them again with the same ids (consumers dedupe), never lose them.
 */

export interface PageSource {
  pages(signal?: AbortSignal): AsyncIterable<{ items: Item[] }>;
}

export interface SnapshotRunOptions {
  snapshotId: string;
  source: PageSource;
  store: SnapshotStore;
  publisher: Publisher;
  events: SnapshotEvents;
  idField: string;
  /** Emit every item, not only the differences (initial sync, `--full`). */
  full: boolean;
  kind: string;
  batchSize?: number;
  signal?: AbortSignal;
  onProgress?: (counts: SnapshotCounts) => void;
}

/** Pure: what happened to one item given its stored hash. */
export function classifyItem(storedHash: string | undefined, hash: string): ItemChange {
  if (storedHash === undefined) return 'created';
  return storedHash === hash ? 'unchanged' : 'changed';
}

export interface Classified {
  change: ItemChange;
  id: string;
  /** The item as read now (created, changed, unchanged) or as stored (deleted). */
  current: StagedItem;
  previousHash?: string;
}

/** Ids compare by code unit, like the `_id` sort of MongoDB/FerretDB for the ASCII ids we see. */
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Pure merge of two id-ordered streams: what was read now (`fresh`) and what the store holds
 * (`stored`). Yields one classification per id. Throws when a stream is not in id order.
 */
export async function* mergeClassify(
  fresh: AsyncIterable<StagedItem> | Iterable<StagedItem>,
  stored: AsyncIterable<StagedItem> | Iterable<StagedItem>,
): AsyncGenerator<Classified> {
  const a = iterate(fresh);
  const b = iterate(stored);
  let x = await a.next();
  let y = await b.next();
  let lastA: string | undefined;
  let lastB: string | undefined;
  const order = (side: string, last: string | undefined, id: string) => {
    if (last !== undefined && cmp(last, id) >= 0) throw new Error(`${side} is not in id order at ${id}`);
    return id;
  };
  while (!x.done || !y.done) {
    const c = x.done ? 1 : y.done ? -1 : cmp(x.value._id, y.value._id);
    if (c < 0) {
      lastA = order('the read', lastA, x.value._id);
      yield { change: 'created', id: x.value._id, current: x.value };
      x = await a.next();
    } else if (c > 0) {
      lastB = order('the store', lastB, y.value._id);
      yield { change: 'deleted', id: y.value._id, current: y.value };
      y = await b.next();
    } else {
      lastA = order('the read', lastA, x.value._id);
      lastB = order('the store', lastB, y.value._id);
      const change = classifyItem(y.value.hash, x.value.hash);
      yield {
        change,
        id: x.value._id,
        current: x.value,
        ...(change === 'changed' ? { previousHash: y.value.hash } : {}),
      };
      x = await a.next();
      y = await b.next();
    }
  }
}

function iterate<T>(src: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in src ? src[Symbol.asyncIterator]() : src[Symbol.iterator]();
}

export async function runSnapshot(opts: SnapshotRunOptions): Promise<SnapshotCounts> {
  const { snapshotId, store, publisher, events, signal } = opts;
  const batchSize = opts.batchSize ?? 500;
  const counts = emptyCounts();
  const started = new Date();
  await store.dropStaging(snapshotId);
  const read = store.staging(snapshotId, 'read');
  const created = store.staging(snapshotId, 'created');
  try {
    await publisher.publish([
      events.run(snapshotId, 'snapshot.started', {
        kind: opts.kind,
        full: opts.full,
        started_at: started.toISOString(),
      }),
    ]);
    // 1. read
    for await (const page of opts.source.pages(signal)) {
      signal?.throwIfAborted();
      await store.stage(
        read,
        page.items.map((item) => ({ _id: String(item[opts.idField]), hash: contentHash(item), doc: item })),
      );
    }
    // 2. merge
    let out: CloudEvent[] = [];
    let toCreate: StagedItem[] = [];
    let toChange: StagedItem[] = [];
    let toDelete: string[] = [];
    const flush = async () => {
      await publisher.publish(out);
      counts.emitted += out.length;
      await store.stage(created, toCreate);
      await store.replaceItems(snapshotId, toChange, toDelete);
      out = [];
      toCreate = [];
      toChange = [];
      toDelete = [];
      opts.onProgress?.({ ...counts });
    };
    for await (const c of mergeClassify(read.find({}).sort({ _id: 1 }), store.hashes())) {
      signal?.throwIfAborted();
      counts[c.change]++;
      if (c.change !== 'deleted') counts.items++;
      if (c.change === 'created') toCreate.push(c.current);
      else if (c.change === 'changed') toChange.push(c.current);
      else if (c.change === 'deleted') toDelete.push(c.id);
      if (c.change !== 'unchanged' || opts.full)
        out.push(
          events.item(snapshotId, c.change, c.id, {
            hash: c.current.hash,
            ...(c.previousHash ? { previousHash: c.previousHash } : {}),
            item: c.current.doc,
          }),
        );
      if (out.length >= batchSize || toCreate.length + toChange.length + toDelete.length >= batchSize)
        await flush();
    }
    await flush();
    // 3. created items into the store
    await store.commitCreated(snapshotId, batchSize);
    await publisher.publish([
      events.run(snapshotId, 'snapshot.completed', {
        kind: opts.kind,
        full: opts.full,
        started_at: started.toISOString(),
        completed_at: new Date().toISOString(),
        counts,
      }),
    ]);
    return counts;
  } finally {
    await store.dropStaging(snapshotId).catch(() => undefined);
  }
}
