import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MemoryPublisher, SnapshotEvents } from '../../../src/startjob/events.ts';
import { runSnapshot } from '../../../src/startjob/snapshot.ts';
import { SnapshotStore } from '../../../src/startjob/store.ts';
import {
  DEFAULT_CURSOR_QUERY,
  DEFAULT_OFFSET_QUERY,
  WorkspaceReader,
} from '../../../src/startjob/workspace.ts';
import { mongoUrl, TestWorkspace } from './helpers.ts';

function reader(ws: TestWorkspace, paging: 'cursor' | 'offset' = 'cursor', pageSize = 500) {
  return new WorkspaceReader({
    url: ws.url,
    query: paging === 'cursor' ? DEFAULT_CURSOR_QUERY : DEFAULT_OFFSET_QUERY,
    paging,
    itemsPath: paging === 'cursor' ? 'items' : 'itemList',
    idField: 'id',
    pageSize,
    timeoutMs: 10_000,
    retries: 3,
    retryBaseMs: 20,
  });
}

const ids = (p: MemoryPublisher, type: string) =>
  p.events
    .filter((e) => e.type === type)
    .map((e) => e.subject!.slice('items/'.length))
    .sort();

describe('snapshot runs: GraphQL workspace → Mongo store (FerretDB) → events', () => {
  const events = new SnapshotEvents({ source: '/tag-connector/workspace/test' });
  let store: SnapshotStore;
  beforeAll(async () => {
    store = new SnapshotStore({ url: mongoUrl() });
    await store.open();
  });
  afterAll(async () => {
    await store.drop();
    await store.close();
  });

  it.each(['cursor', 'offset'] as const)(
    'pages over 5,000 items by %s, one page in memory at a time',
    async (paging) => {
      const ws = new TestWorkspace();
      await ws.reset(5000);
      const r = reader(ws, paging, 400);
      let total = 0;
      let maxPage = 0;
      const seen = new Set<string>();
      for await (const page of r.pages()) {
        total += page.items.length;
        maxPage = Math.max(maxPage, page.items.length);
        for (const i of page.items) seen.add(String(i.id));
      }
      expect(total).toBe(5000);
      expect(seen.size).toBe(5000);
      expect(maxPage).toBe(400);
      expect(r.requests).toBe(paging === 'cursor' ? 13 : 13); // 12.5 pages → 13 requests
    },
  );

  it('initial (full) run, then a healing run that finds exactly the created, changed and deleted items', async () => {
    const ws = new TestWorkspace();
    await ws.reset(3000);
    const first = new MemoryPublisher();
    const c1 = await runSnapshot({
      snapshotId: 'snap-1',
      kind: 'initial-sync',
      source: reader(ws),
      store,
      publisher: first,
      events,
      idField: 'id',
      full: true,
    });
    expect(c1).toEqual({ items: 3000, created: 3000, changed: 0, deleted: 0, unchanged: 0, emitted: 3000 });
    expect(first.events[0]!.type).toBe('snapshot.started');
    expect(first.events.at(-1)!.type).toBe('snapshot.completed');
    expect(first.events.at(-1)!.data).toMatchObject({ counts: c1 });
    expect(await store.count()).toBe(3000);

    const m = await ws.mutate({ create: 7, change: 11, delete: 5 });
    const second = new MemoryPublisher();
    const c2 = await runSnapshot({
      snapshotId: 'snap-2',
      kind: 'healing',
      source: reader(ws),
      store,
      publisher: second,
      events,
      idField: 'id',
      full: false,
    });
    expect(c2).toEqual({ items: 3002, created: 7, changed: 11, deleted: 5, unchanged: 2984, emitted: 23 });
    expect(ids(second, 'snapshot.item_created')).toEqual([...m.created].sort());
    expect(ids(second, 'snapshot.item_changed')).toEqual([...m.changed].sort());
    expect(ids(second, 'snapshot.item_deleted')).toEqual([...m.deleted].sort());
    expect(second.events).toHaveLength(23 + 2);
    const changed = second.events.find((e) => e.type === 'snapshot.item_changed')!;
    expect(changed).toMatchObject({
      specversion: '1.0',
      id: `snap-2/${changed.subject!.slice(6)}`,
      partitionkey: changed.subject!.slice(6),
    });
    expect((changed.data as Record<string, unknown>).previous_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await store.count()).toBe(3002);

    // nothing changed: only started/completed
    const third = new MemoryPublisher();
    const c3 = await runSnapshot({
      snapshotId: 'snap-3',
      kind: 'healing',
      source: reader(ws),
      store,
      publisher: third,
      events,
      idField: 'id',
      full: false,
    });
    expect(c3).toMatchObject({ created: 0, changed: 0, deleted: 0, unchanged: 3002, emitted: 0 });
    expect(third.events.map((e) => e.type)).toEqual(['snapshot.started', 'snapshot.completed']);

    // --full: every item, unchanged ones as snapshot.item
    const fourth = new MemoryPublisher();
    const c4 = await runSnapshot({
      snapshotId: 'snap-4',
      kind: 'healing',
      source: reader(ws),
      store,
      publisher: fourth,
      events,
      idField: 'id',
      full: true,
    });
    expect(c4.emitted).toBe(3002);
    expect(ids(fourth, 'snapshot.item')).toHaveLength(3002);
  });

  it('a run resumed with the same snapshot id sends the same event ids (redelivery dedupes)', async () => {
    const ws = new TestWorkspace();
    await ws.reset(300);
    const s2 = new SnapshotStore({ url: mongoUrl() });
    await s2.open();
    try {
      await runSnapshot({
        snapshotId: 'a',
        kind: 'initial-sync',
        source: reader(ws, 'cursor', 100),
        store: s2,
        publisher: new MemoryPublisher(),
        events,
        idField: 'id',
        full: true,
      });
      await ws.mutate({ change: 50 });
      // The first attempt dies after publishing its second page, before the store write of that page.
      const crashed = new MemoryPublisher();
      let pages = 0;
      crashed.publish = async (evs) => {
        crashed.events.push(...evs);
        if (evs.length && evs[0]!.type !== 'snapshot.started' && ++pages === 2) throw new Error('crash');
      };
      await expect(
        runSnapshot({
          snapshotId: 'b',
          kind: 'healing',
          source: reader(ws, 'cursor', 100),
          store: s2,
          publisher: crashed,
          events,
          idField: 'id',
          full: false,
          batchSize: 20,
        }),
      ).rejects.toThrow('crash');
      const resumed = new MemoryPublisher();
      await runSnapshot({
        snapshotId: 'b',
        kind: 'healing',
        source: reader(ws, 'cursor', 100),
        store: s2,
        publisher: resumed,
        events,
        idField: 'id',
        full: false,
        batchSize: 20,
      });
      const firstIds = new Set(
        crashed.events.filter((e) => e.type === 'snapshot.item_changed').map((e) => e.id),
      );
      const againIds = resumed.events.filter((e) => e.type === 'snapshot.item_changed').map((e) => e.id);
      // Batch 1 was stored: not sent again. Batch 2 was sent but not stored: sent again, same ids.
      expect(firstIds.size).toBe(40);
      expect(againIds).toHaveLength(30);
      expect(againIds.filter((id) => firstIds.has(id))).toHaveLength(20);
      expect(new Set([...firstIds, ...againIds]).size).toBe(50);
    } finally {
      await s2.drop();
      await s2.close();
    }
  });
});
