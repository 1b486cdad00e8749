import type { CloudEvent } from '../events/envelope.ts';
import type { Position } from '../util/lsn.ts';

/** One event on its way to the sinks: its stream position, the envelope and its JSON, encoded once. */
export interface OutboundEvent {
  /** Monotonic in-process counter; sinks report durability by it. */
  ordinal: number;
  position: Position;
  event: CloudEvent;
  /** Structured-mode JSON of `event` (no trailing newline), shared by every sink. */
  json: string;
  /** Schema-qualified table the change came from, for routing. */
  table: string;
}

export interface SinkStatus {
  state: 'starting' | 'ok' | 'retrying' | 'failed' | 'closed';
  checkpoint: Position | null;
  lastError?: string;
  delivered: number;
  skipped: number;
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
  write(batch: readonly OutboundEvent[]): Promise<void>;
  close(): Promise<void>;
}
