import type { Position } from '../util/lsn.ts';
import { ndjsonBytes } from './ndjson.ts';
import type { OutboundEvent, Sink } from './sink.ts';

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

  write(batch: readonly OutboundEvent[]): Promise<void> {
    return new Promise((resolve, reject) => {
      // the same bytes the file sink and the Stream retention write for this batch (encoded once)
      this.out.write(ndjsonBytes(batch), (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {}
}
