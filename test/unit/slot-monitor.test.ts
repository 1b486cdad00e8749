import { describe, expect, it } from '@jest/globals';
import { assessSlot } from '../../src/extractor/replication/slot-monitor.ts';

describe('slot health', () => {
  it('tells ok, lagging, invalidated and missing apart', () => {
    expect(assessSlot({ lagBytes: 10, walStatus: 'reserved', safeWalSize: null }, 100)).toBe('ok');
    expect(assessSlot({ lagBytes: 1000, walStatus: 'reserved', safeWalSize: null }, 100)).toBe('lagging');
    expect(assessSlot({ lagBytes: 0, walStatus: 'unreserved', safeWalSize: 0 }, 100)).toBe('lagging');
    expect(assessSlot({ lagBytes: 0, walStatus: 'lost', safeWalSize: null }, 100)).toBe('invalidated');
    expect(assessSlot(null, 100)).toBe('missing');
  });
});
