import { describe, expect, it } from '@jest/globals';
import { fnv1a, orderingKeyFor } from '../../src/sinks/ordering-key.ts';

describe('Pub/Sub ordering keys', () => {
  it('is the partition key itself without buckets', () => {
    expect(orderingKeyFor('tasks/42', 0)).toBe('tasks/42');
  });

  it('puts one partition key always in the same bucket, and spreads keys over all buckets', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c); // the published FNV-1a test vector
    const counts = new Map<string, number>();
    for (let i = 0; i < 16_000; i++) {
      const k = orderingKeyFor(`task-${i}`, 16);
      expect(orderingKeyFor(`task-${i}`, 16)).toBe(k);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual(Array.from({ length: 16 }, (_, i) => `bucket-${i}`).sort());
    for (const n of counts.values()) expect(n).toBeGreaterThan(700); // 1,000 each on average
  });
});
