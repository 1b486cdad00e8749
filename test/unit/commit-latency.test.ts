import { describe, expect, it } from '@jest/globals';
import { epochMs, observeTransactions } from '../../src/extractor/pipeline/commit-latency.ts';
import { EncodedEvent } from '../../src/sinks/sink.ts';

const ev = (commitLsn: bigint, seq: number, time: string, type = 'row.insert') =>
  new EncodedEvent(seq, { commitLsn, seq }, '{}', 'public.t', {
    id: 'x',
    type,
    partitionkey: 'k',
    time,
  });

describe('commit-to-ack latency', () => {
  it('keeps the microseconds of a commit time', () => {
    const base = Date.parse('2026-11-23T22:01:00.622+00:00');
    expect(epochMs('2026-11-23T22:01:00.622655+00:00')).toBeCloseTo(base + 0.655, 6);
    expect(epochMs('2026-11-23T22:01:00.6226+00:00')).toBeCloseTo(base + 0.6, 6);
    expect(epochMs('2026-11-23T22:01:00.622Z')).toBe(base);
    expect(epochMs('2026-11-23T22:01:00+00:00')).toBe(Date.parse('2026-11-23T22:01:00Z'));
    expect(epochMs('infinity')).toBeNaN();
  });

  it('observes once per transaction of a batch, not per event or per batch', () => {
    const t1 = '2026-11-23T22:01:00.000000+00:00';
    const t2 = '2026-11-23T22:01:00.010500+00:00';
    const now = Date.parse('2026-11-23T22:01:00.020Z');
    const seen: number[] = [];
    observeTransactions([ev(1n, 0, t1), ev(1n, 1, t1), ev(1n, 2, t1), ev(2n, 0, t2)], now, (ms) =>
      seen.push(ms),
    );
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeCloseTo(20, 6);
    expect(seen[1]).toBeCloseTo(9.5, 6);
    const none: number[] = [];
    observeTransactions([ev(3n, 0, 'infinity')], now, (ms) => none.push(ms));
    observeTransactions([], now, (ms) => none.push(ms));
    expect(none).toEqual([]);
  });

  it("leaves out a backfill chunk's reads (the backfill's pace, not the stream's latency)", () => {
    const t = '2026-11-23T22:01:00.000000+00:00';
    const now = Date.parse('2026-11-23T22:01:00.020Z');
    const seen: number[] = [];
    const reads = [ev(2n, 0, t, 'row.read'), ev(2n, 1, t, 'task.read')];
    observeTransactions([ev(1n, 0, t), ...reads, ev(3n, 0, t, 'row.update')], now, (ms) => seen.push(ms));
    expect(seen).toEqual([20, 20]);
    observeTransactions(reads, now, (ms) => seen.push(ms));
    expect(seen).toHaveLength(2);
  });
});
