import type { CloudEvent } from '../events/envelope.ts';
import type { Position } from '../util/lsn.ts';
import type { PackedBatch, SinkBatch } from './batch.ts';
import type { CheckpointOrigin, SinkReset } from './origin.ts';

/**
 * One event on its way to the sinks: its stream position, its JSON (encoded once, shared by every
 * sink) and the envelope attributes sinks route by. The extractor encodes events straight to JSON
 * without building the envelope object; `event` is then parsed from `json` only when a sink asks for
 * it (binary/Debezium encodings, Stream filters on row values).
 */
export interface OutboundEvent {
  /** Monotonic in-process counter; sinks report durability by it. */
  readonly ordinal: number;
  readonly position: Position;
  /** Structured-mode JSON of the event (no trailing newline). */
  readonly json: string;
  /** UTF-8 length of `json` (measured once, for the in-flight bound and the sinks' buffers). */
  readonly bytes: number;
  /** Schema-qualified table the change came from, for routing. */
  readonly table: string;
  readonly id: string;
  readonly type: string;
  readonly partitionkey: string;
  /** Commit time, ISO-8601. */
  readonly time: string;
  readonly event: CloudEvent;
}

/** An OutboundEvent from an envelope object (producers that build the object anyway). */
export function outboundEvent(
  event: CloudEvent,
  ordinal: number,
  position: Position,
  table: string,
): OutboundEvent {
  const json = JSON.stringify(event);
  return {
    ordinal,
    position,
    json,
    bytes: Buffer.byteLength(json),
    table,
    id: event.id,
    type: event.type,
    partitionkey: event.partitionkey,
    time: event.time,
    event,
  };
}

/** An OutboundEvent from its JSON: the envelope object is parsed on first use only. */
export class EncodedEvent implements OutboundEvent {
  readonly ordinal: number;
  readonly position: Position;
  readonly json: string;
  readonly bytes: number;
  readonly table: string;
  readonly id: string;
  readonly type: string;
  readonly partitionkey: string;
  readonly time: string;
  private parsed?: CloudEvent;

  constructor(
    ordinal: number,
    position: Position,
    json: string,
    table: string,
    meta: { id: string; type: string; partitionkey: string; time: string },
    bytes = Buffer.byteLength(json),
  ) {
    this.ordinal = ordinal;
    this.position = position;
    this.json = json;
    this.bytes = bytes;
    this.table = table;
    this.id = meta.id;
    this.type = meta.type;
    this.partitionkey = meta.partitionkey;
    this.time = meta.time;
  }

  get event(): CloudEvent {
    return (this.parsed ??= JSON.parse(this.json) as CloudEvent);
  }
}
export interface SinkStatus {
  state: 'starting' | 'ok' | 'retrying' | 'failed' | 'closed';
  checkpoint: Position | null;
  lastError?: string;
  delivered: number;
  skipped: number;
  /** Failed writes that were retried since the start. */
  retries: number;
}

/**
 * A destination. `write` resolves only once the batch is durable there (Kafka: acks=all or the
 * transaction committed; Pub/Sub: every publish future resolved; file: fsync'd); until then the LSN
 * is not confirmed to Postgres. Batches arrive in stream order, never concurrently.
 */
export interface Sink {
  readonly name: string;
  /**
   * Opens the sink and returns the highest position it holds durably when it keeps its own checkpoint
   * (file tail, Kafka checkpoint topic), else null: the runner then keeps the checkpoint in the state store.
   */
  open(): Promise<Position | null>;
  /** True when `write` itself makes the checkpoint durable with the events (file, Kafka transactions). */
  readonly ownsCheckpoint: boolean;
  /**
   * Sinks that own their checkpoint: the origin recorded with the checkpoint `open` returned (null:
   * none recorded, a file or record of an older version). See origin.ts.
   */
  storedOrigin?(): CheckpointOrigin | null;
  /**
   * Called once after `open` (and the daemon's check of the checkpoint against the server), before any
   * write: the origin the sink records with its checkpoints from now on. With `reset`
   * (--reset-sink-checkpoints), the sink first forgets its checkpoint and records the reset in itself
   * (a marker line or record), so a reader sees where the history restarts.
   */
  bindOrigin?(origin: CheckpointOrigin, reset?: SinkReset): Promise<void>;
  /**
   * Optional: encodes a batch ahead of its write, while the previous write is still in progress (the
   * runner calls it once a full batch is queued behind a write). `write` then gets the result; a retry
   * of that batch calls `write` without it.
   */
  prepare?(batch: PackedBatch): unknown;
  /**
   * Optional: why an error of `write` is a permanent rejection of (an event of) the batch, not an
   * outage, e.g. a record over the broker's message.max.bytes; undefined for errors worth retrying.
   * With a dead-letter route the runner then splits the batch until the rejected event is alone and
   * sends it to the dead letters (docs/governance.md).
   */
  rejection?(err: Error): string | undefined;
  /** Optional: the largest event the destination takes at all (Pub/Sub: 10 MB); bigger ones are rejected. */
  readonly maxEventBytes?: number;
  /** Optional: the topic an event goes to (a dead letter names it). */
  topicOf?(event: OutboundEvent): string;
  /**
   * Optional: new topic routes and tombstone tables (a config reload, docs/governance.md), used from
   * the next batch on; resolves once the new topics exist.
   */
  setRoutes?(routes: Readonly<Record<string, string>>, tombstoneTables: readonly string[]): Promise<void>;
  /** The runner passes packed batches (batch.ts); other producers may pass event objects. */
  write(batch: SinkBatch, prepared?: unknown): Promise<void>;
  close(): Promise<void>;
}
