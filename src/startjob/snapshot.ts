import type { CloudEvent } from '../events/envelope.ts';
import {
  emptyCounts,
  type ItemChange,
  type Publisher,
  type SnapshotCounts,
  type SnapshotEvents,
} from './events.ts';
import { contentHash } from './hash.ts';
import type { SnapshotStore } from './store.ts';
import type { Item } from './workspace.ts';

/**
 * One snapshot run: read the workspace page by page, compare each item's content hash with the store,
 * publish the differences (every item with `full`), then write the page to the store. Publishing comes
 * before the store write, so a crash between them re-sends (same ids) rather than loses an event.
 * Items the run did not see are deleted at the end. Memory: one page plus one batch of deletions.
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
  signal?: AbortSignal;
  onProgress?: (counts: SnapshotCounts) => void;
}

/** Pure: what happened to one item given its stored hash. */
export function classifyItem(storedHash: string | undefined, hash: string): ItemChange {
  if (storedHash === undefined) return 'created';
  return storedHash === hash ? 'unchanged' : 'changed';
}

export async function runSnapshot(opts: SnapshotRunOptions): Promise<SnapshotCounts> {
  const { snapshotId, store, publisher, events, signal } = opts;
  const counts = emptyCounts();
  const started = new Date();
  await publisher.publish([
    events.run(snapshotId, 'snapshot.started', {
      kind: opts.kind,
      full: opts.full,
      started_at: started.toISOString(),
    }),
  ]);
  for await (const page of opts.source.pages(signal)) {
    signal?.throwIfAborted();
    const rows = new Map<string, { id: string; hash: string; item: Item }>();
    for (const item of page.items) {
      const id = String(item[opts.idField]);
      rows.set(id, { id, hash: contentHash(item), item });
    }
    const stored = await store.hashesOf([...rows.keys()]);
    const out: CloudEvent[] = [];
    const upserts: { id: string; hash: string; doc: Item }[] = [];
    const unchanged: string[] = [];
    for (const r of rows.values()) {
      const known = stored.get(r.id);
      // Already handled by this snapshot: an item served twice (a page boundary moved under us), or a
      // resumed run going over pages it finished before the interruption.
      if (known?.seenIn === snapshotId) continue;
      const prev = known?.hash;
      const change = classifyItem(prev, r.hash);
      counts.items++;
      counts[change]++;
      if (change === 'unchanged') unchanged.push(r.id);
      else upserts.push({ id: r.id, hash: r.hash, doc: r.item });
      if (change !== 'unchanged' || opts.full)
        out.push(
          events.item(snapshotId, change, r.id, {
            hash: r.hash,
            ...(prev && prev !== r.hash ? { previousHash: prev } : {}),
            item: r.item,
          }),
        );
    }
    await publisher.publish(out);
    counts.emitted += out.length;
    await store.applyPage(snapshotId, upserts, unchanged);
    opts.onProgress?.({ ...counts });
  }
  for await (const batch of store.unseen(snapshotId, 500)) {
    signal?.throwIfAborted();
    const out = batch.map((d) => events.item(snapshotId, 'deleted', d._id, { hash: d.hash, item: d.doc }));
    await publisher.publish(out);
    counts.deleted += batch.length;
    counts.emitted += out.length;
    await store.deleteItems(batch.map((d) => d._id));
    opts.onProgress?.({ ...counts });
  }
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
}
