import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LagHistory } from '../../src/extractor/replication/lag-history.ts';

describe('LagHistory (the console chart samples)', () => {
  it('keeps the last hour, oldest first', () => {
    const h = new LagHistory(3_600_000);
    const t0 = 1_000_000_000_000;
    for (let i = 0; i < 400; i++) h.add({ t: t0 + i * 10_000, lagBytes: i });
    const now = t0 + 399 * 10_000;
    const list = h.list(now);
    expect(list[0]!.t).toBeGreaterThanOrEqual(now - 3_600_000);
    expect(list.at(-1)).toEqual({ t: now, lagBytes: 399 });
    expect(list).toHaveLength(361);
    // Time passes without samples (a standby, a stalled monitor): old ones fall out.
    expect(h.list(now + 3_600_001)).toEqual([]);
  });

  it('is bounded and monotonic whatever the sampling', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5000, max: 60_000 }), { maxLength: 300 }), (steps) => {
        const h = new LagHistory(100_000, 50);
        let t = 0;
        for (const s of steps) {
          t += s;
          h.add({ t, lagBytes: 1 });
        }
        const list = h.list(t);
        expect(list.length).toBeLessThanOrEqual(50);
        for (let i = 1; i < list.length; i++) expect(list[i]!.t).toBeGreaterThanOrEqual(list[i - 1]!.t);
        for (const x of list) expect(x.t).toBeGreaterThanOrEqual(t - 100_000);
      }),
    );
  });
});
