import type { Position } from '../util/lsn.ts';
import type { SinkBatch } from './batch.ts';
import type { Sink } from './sink.ts';

/**
 * Discards every event and acknowledges it at once: for dry runs (does the daemon keep up, what do
 * the events look like on /v1/api/ws/Stream) and for measuring the pipeline itself (`npm run bench`).
 * Note that it confirms the slot like any sink: what it discards is gone for every later sink.
 */
export class NoopSink implements Sink {
  readonly name = 'noop';
  readonly ownsCheckpoint = true;

  async open(): Promise<Position | null> {
    return null;
  }

  async write(_batch: SinkBatch): Promise<void> {}

  async close(): Promise<void> {}
}
