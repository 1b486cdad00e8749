import type { CloudEvent } from '../events/envelope.ts';
import { outboundEvent, type Sink, type OutboundEvent } from '../sinks/sink.ts';

/**
 * Snapshot events (docs/design.md §4 `snapshot.*`) in the common CloudEvents envelope. They come from the
 * workspace API, not from the WAL, so `lsn`/`commitlsn` are `0/0` and `xid` 0. The id is stable for
 * one snapshot and one item (`<snapshotId>/<itemId>`), so an event sent again when a run is resumed
 * with the same snapshot id dedupes downstream.
 */

export const SNAPSHOT_EVENT_TYPES = [
  'snapshot.started',
  'snapshot.item_created',
  'snapshot.item_changed',
  'snapshot.item_deleted',
  /** `--full` / initial sync: an item that did not change, sent anyway. */
  'snapshot.item',
  'snapshot.completed',
  'snapshot.failed',
  'snapshot.dump_created',
] as const;
export type SnapshotEventType = (typeof SNAPSHOT_EVENT_TYPES)[number];

export type ItemChange = 'created' | 'changed' | 'deleted' | 'unchanged';

export interface SnapshotCounts {
  items: number;
  created: number;
  changed: number;
  deleted: number;
  unchanged: number;
  emitted: number;
}

export function emptyCounts(): SnapshotCounts {
  return { items: 0, created: 0, changed: 0, deleted: 0, unchanged: 0, emitted: 0 };
}

export interface EventFactoryOptions {
  /** CloudEvents `source`, e.g. `/tag-connector/workspace/<host>`. */
  source: string;
  now?: () => Date;
}

const ITEM_TYPE: Record<ItemChange, SnapshotEventType> = {
  created: 'snapshot.item_created',
  changed: 'snapshot.item_changed',
  deleted: 'snapshot.item_deleted',
  unchanged: 'snapshot.item',
};

export class SnapshotEvents {
  private readonly source: string;
  private readonly now: () => Date;

  constructor(opts: EventFactoryOptions) {
    this.source = opts.source;
    this.now = opts.now ?? (() => new Date());
  }

  item(
    snapshotId: string,
    change: ItemChange,
    itemId: string,
    data: { hash: string; previousHash?: string; item: unknown },
  ): CloudEvent {
    return this.envelope(`${snapshotId}/${itemId}`, ITEM_TYPE[change], `items/${itemId}`, itemId, {
      snapshot_id: snapshotId,
      item_id: itemId,
      change,
      hash: data.hash,
      ...(data.previousHash ? { previous_hash: data.previousHash } : {}),
      item: data.item,
    });
  }

  run(
    snapshotId: string,
    type: 'snapshot.started' | 'snapshot.completed' | 'snapshot.failed' | 'snapshot.dump_created',
    data: Record<string, unknown>,
  ): CloudEvent {
    const suffix = type.slice('snapshot.'.length);
    return this.envelope(`${snapshotId}/${suffix}`, type, `snapshots/${snapshotId}`, snapshotId, {
      snapshot_id: snapshotId,
      ...data,
    });
  }

  private envelope(
    id: string,
    type: SnapshotEventType,
    subject: string,
    partitionkey: string,
    data: Record<string, unknown>,
  ): CloudEvent {
    return {
      specversion: '1.0',
      id,
      source: this.source,
      type,
      subject,
      time: this.now().toISOString(),
      datacontenttype: 'application/json',
      lsn: '0/0',
      commitlsn: '0/0',
      xid: 0,
      partitionkey,
      data,
    };
  }
}

/** Where snapshot events go: resolves once every destination holds them durably. */
export interface Publisher {
  publish(events: readonly CloudEvent[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Publishes through the configured sinks (stdout, file, Kafka, Pub/Sub), in order, one batch at a
 * time. Snapshot events have no WAL position: they get a private one, `(start time of this process in
 * ms, ordinal)`, increasing within a process and across restarts (as long as the clock does), so a sink
 * that filters by its checkpoint after a failed write never drops them. The sinks must be built with a
 * slot of their own (`startJobSinkConfig`): the Kafka sink keys its checkpoint record and derives its
 * transactional id from the slot, which must not collide with `extract-tasks`' stream.
 */
export class SinkPublisher implements Publisher {
  private ordinal = 0;
  private readonly base = BigInt(Date.now());
  private readonly sinks: readonly Sink[];
  private readonly table: string;

  constructor(sinks: readonly Sink[], table = 'workspace.items') {
    this.sinks = sinks;
    this.table = table;
  }

  async publish(events: readonly CloudEvent[]): Promise<void> {
    if (events.length === 0) return;
    const batch: OutboundEvent[] = events.map((event) => {
      const ordinal = ++this.ordinal;
      return outboundEvent(event, ordinal, { commitLsn: this.base, seq: ordinal }, this.table);
    });
    for (const sink of this.sinks) await sink.write(batch);
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    for (const sink of this.sinks) await sink.close().catch((e: unknown) => errors.push(e));
    if (errors.length) throw new AggregateError(errors, 'closing the snapshot sinks failed');
  }
}

/** The config start-job builds its sinks with: its own slot name (Kafka checkpoint key, transactional id). */
export function startJobSinkConfig<C extends { slot: string }>(config: C): C {
  return { ...config, slot: `${config.slot}_startjob` };
}

/** Keeps events in memory: for tests and for `--sink` none. */
export class MemoryPublisher implements Publisher {
  readonly events: CloudEvent[] = [];
  async publish(events: readonly CloudEvent[]): Promise<void> {
    this.events.push(...events);
  }
  async close(): Promise<void> {}
}
