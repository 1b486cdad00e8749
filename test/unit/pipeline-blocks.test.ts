import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { asPacked, type SinkBatch } from '../../src/sinks/batch.ts';
import { BLOCK_BYTES, BLOCK_EVENTS, type EventBlock } from '../../src/sinks/event-block.ts';
import { ndjson } from '../../src/sinks/ndjson.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { replayPipeline } from '../support/replay-pipeline.ts';
import { ReplaySource, WAL2JSON_SAMPLE } from '../support/replay-source.ts';

const logger = pino({ level: 'silent' });

/** Keeps every line it is given (copied out at once, as a sink's write does) and the blocks seen. */
class RecordingSink implements Sink {
  readonly ownsCheckpoint = true;
  readonly lines: string[] = [];
  readonly blocks = new Set<EventBlock>();
  readonly name: string;
  private readonly delayMs: number;
  constructor(name: string, delayMs: number) {
    this.name = name;
    this.delayMs = delayMs;
  }
  async open() {
    return null;
  }
  async write(batch: SinkBatch): Promise<void> {
    const packed = asPacked(batch);
    for (const b of packed.blocks) this.blocks.add(b);
    // a slow sink reads its batch only after waiting, as a transaction's records are produced late
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.lines.push(...ndjson(packed).split('\n').slice(0, -1));
  }
  async close() {}
}

/** Runs replayed changes through a Pipeline into the sinks until the last one is confirmed. */
async function runPipeline(source: ReplaySource, sinks: Sink[], maxInFlightEvents: number): Promise<void> {
  const { pipeline, drained } = await replayPipeline(source, sinks, {
    logger,
    batchSize: 500,
    maxInFlightEvents,
    maxInFlightBytes: 64 * 1024 * 1024,
  });
  await pipeline.start();
  await drained();
  await pipeline.stop(1000);
}

describe('Pipeline: events packed in pooled blocks', () => {
  it('delivers every event intact to a fast and a slow sink while blocks are given back and reused', async () => {
    const n = 20_000;
    const source = new ReplaySource(n);
    const fast = new RecordingSink('fast', 0);
    const slow = new RecordingSink('slow', 5);
    // the slow sink lags up to ~5 blocks behind the fast one: a block given back to the pool as soon
    // as the fast sink had it would be overwritten under the slow one (this test fails that way)
    await runPipeline(source, [fast, slow], 8000);

    expect(fast.lines).toHaveLength(n);
    expect(slow.lines).toEqual(fast.lines);
    // each line is its own event, in stream order, with the row the source sent at that place
    let previous = '';
    fast.lines.forEach((line, k) => {
      const e = JSON.parse(line) as { id: string; data: { after: { id: string; n: number } } };
      const [lsn, seq] = [
        e.id.slice(0, e.id.lastIndexOf('/')),
        Number(e.id.slice(e.id.lastIndexOf('/') + 1)),
      ];
      expect(seq).toBe(k % source.txSize);
      if (seq === 0) expect(lsn).not.toBe(previous);
      previous = lsn;
      const sent = JSON.parse(source.rowText(k % source.txSize)) as { columns: { value: unknown }[] };
      expect(e.data.after.id).toBe(String(sent.columns[0]!.value));
      expect(e.data.after.n).toBe(sent.columns[1]!.value);
    });
    const bytes = fast.lines.reduce((s, l) => s + Buffer.byteLength(l) + 1, 0);
    const fills = Math.max(Math.ceil(bytes / BLOCK_BYTES), Math.ceil(n / BLOCK_EVENTS));
    expect(fills).toBeGreaterThanOrEqual(8);
    expect(fast.blocks.size).toBeLessThan(fills);
  });

  it('packs an event bigger than a block into a block of its own size, between pooled ones', async () => {
    // the sample with one row's label grown to 1.5 MB (a block's slab is 1 MB)
    const dir = mkdtempSync(join(tmpdir(), 'tagc-blocks-'));
    const file = join(dir, 'big.txt');
    const big = 'x'.repeat(1_500_000);
    let grown = false;
    const lines = readFileSync(WAL2JSON_SAMPLE, 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        if (grown || !l.startsWith('{"action":"I"')) return l;
        grown = true;
        return l.replace(/"value":"row [^"]*"/, `"value":"${big}"`);
      });
    writeFileSync(file, lines.join('\n') + '\n');
    try {
      const source = new ReplaySource(5_000, file);
      const sink = new RecordingSink('file', 0);
      await runPipeline(source, [sink], 3000);
      expect(sink.lines).toHaveLength(5_000);
      const huge = sink.lines.filter((l) => l.length > 1_000_000);
      expect(huge.length).toBeGreaterThan(0);
      for (const l of huge)
        expect((JSON.parse(l) as { data: { after: { label: string } } }).data.after.label).toBe(big);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
