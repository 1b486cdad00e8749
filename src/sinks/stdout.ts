import type { Position } from '../util/lsn.ts';
import { asPacked, type SinkBatch } from './batch.ts';
import { resetMarkerLine, type CheckpointOrigin, type SinkReset } from './origin.ts';
import type { Sink } from './sink.ts';

/**
 * NDJSON to stdout. Durable means "handed to the OS" (the write callback fired); its checkpoint lives
 * in the state store, so a restart doesn't print a delivered event again, though a crash between the
 * write and the checkpoint can (at-least-once).
 */
export class StdoutSink implements Sink {
  readonly name = 'stdout';
  readonly ownsCheckpoint = false;
  private readonly out: NodeJS.WritableStream;

  constructor(out: NodeJS.WritableStream = process.stdout) {
    this.out = out;
  }

  async open(): Promise<Position | null> {
    return null;
  }

  /** A reset (its checkpoint lives in the state store) is also told to the reader: a marker line. */
  bindOrigin(origin: CheckpointOrigin, reset?: SinkReset): Promise<void> {
    if (!reset) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.out.write(resetMarkerLine(origin, reset), (err) => (err ? reject(err) : resolve())),
    );
  }

  write(batch: SinkBatch): Promise<void> {
    // The packed runs are the batch's NDJSON: written as they lie; the last one's callback is the ack.
    const chunks = asPacked(batch).chunks();
    if (chunks.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      for (let i = 0; i < chunks.length - 1; i++) this.out.write(chunks[i]!);
      this.out.write(chunks[chunks.length - 1]!, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {}
}
