import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ChunkSizer } from '../../src/extractor/backfill/chunk-sizer.ts';

describe('backfill chunks sized by time (ChunkSizer)', () => {
  it('without a target every chunk is the chunk size', () => {
    const s = new ChunkSizer(4096, 0);
    expect(s.size).toBe(4096);
    s.emitted(4096, 500);
    expect(s.size).toBe(4096);
  });

  it('starts small, doubles at most per chunk, and settles where a chunk takes the target time', () => {
    const s = new ChunkSizer(8192, 25);
    expect(s.size).toBe(512);
    const usPerRow = 5; // 200 rows per target
    const sizes: number[] = [];
    for (let i = 0; i < 6; i++) {
      s.emitted(s.size, (s.size * usPerRow) / 1000);
      sizes.push(s.size);
    }
    expect(sizes).toEqual([1024, 2048, 4096, 5000, 5000, 5000]);
    s.emitted(5000, 250); // the machine got ten times slower
    expect(s.size).toBe(500);
  });

  it('stays within [min(64, chunk size), chunk size] whatever the emission times', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 100_000 }), fc.double({ min: 0, max: 1e5, noNaN: true })),
        ),
        (max, target, chunks) => {
          const s = new ChunkSizer(max, target);
          for (const [rows, ms] of chunks) {
            const before = s.size;
            s.emitted(rows, ms);
            expect(s.size).toBeLessThanOrEqual(Math.min(max, Math.max(before * 2, Math.min(max, 64))));
            expect(s.size).toBeGreaterThanOrEqual(Math.min(max, 64));
            expect(Number.isInteger(s.size)).toBe(true);
          }
        },
      ),
    );
  });
});
