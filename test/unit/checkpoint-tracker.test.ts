import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CheckpointTracker } from '../../src/extractor/pipeline/checkpoint-tracker.ts';

describe('checkpoint tracker (the LSN confirmed to Postgres)', () => {
  it('confirms a transaction end only when every sink holds its last event', () => {
    const t = new CheckpointTracker(['a', 'b'], 100n);
    t.begin();
    const e1 = t.event(10);
    const e2 = t.event(10);
    t.commit(200n);
    expect(t.confirmedLsn()).toBe(100n);
    t.markDurable('a', e2);
    expect(t.confirmedLsn()).toBe(100n);
    t.markDurable('b', e1);
    expect(t.confirmedLsn()).toBe(100n);
    t.markDurable('b', e2);
    expect(t.confirmedLsn()).toBe(200n);
    expect(t.inFlightEvents()).toBe(0);
    expect(t.inFlightBytes()).toBe(0);
  });

  it('never confirms a keepalive while a transaction is open or undelivered', () => {
    const t = new CheckpointTracker(['a'], 100n);
    t.begin();
    const e = t.event(1);
    t.keepalive(500n);
    expect(t.confirmedLsn()).toBe(100n);
    t.commit(300n);
    t.keepalive(500n);
    expect(t.confirmedLsn()).toBe(100n);
    t.markDurable('a', e);
    expect(t.confirmedLsn()).toBe(300n);
    t.keepalive(500n);
    expect(t.confirmedLsn()).toBe(500n);
  });

  it('empty transactions complete once everything before them is durable', () => {
    const t = new CheckpointTracker(['a'], 0n);
    t.begin();
    const e = t.event(1);
    t.commit(10n);
    t.begin();
    t.commit(20n);
    expect(t.confirmedLsn()).toBe(0n);
    t.markDurable('a', e);
    expect(t.confirmedLsn()).toBe(20n);
  });

  it('is the low watermark, monotone, over random interleavings (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(), { maxLength: 60 }),
        (sizes, acks) => {
          const t = new CheckpointTracker(['a', 'b'], 0n);
          const ends: { end: bigint; last: number }[] = [];
          let lsn = 0n;
          for (const n of sizes) {
            t.begin();
            for (let i = 0; i < n; i++) t.event(1);
            lsn += 10n;
            t.commit(lsn);
            ends.push({ end: lsn, last: t.lastOrdinal() });
          }
          const durable = { a: 0, b: 0 };
          let prev = 0n;
          for (const x of acks) {
            const sink = x % 2 ? 'a' : 'b';
            durable[sink] = Math.min(t.lastOrdinal(), durable[sink] + (x % 7));
            t.markDurable(sink, durable[sink]);
            const low = Math.min(durable.a, durable.b);
            const want = ends.filter((e) => e.last <= low).reduce((m, e) => (e.end > m ? e.end : m), 0n);
            if (t.confirmedLsn() !== want || t.confirmedLsn() < prev) return false;
            prev = t.confirmedLsn();
          }
          return true;
        },
      ),
    );
  });

  it('collapses a run of transactions without events into one pending position while a sink is blocked', () => {
    const t = new CheckpointTracker(['a'], 0n);
    t.begin();
    const e = t.event(100);
    t.commit(10n);
    for (let i = 1; i <= 100_000; i++) {
      t.begin();
      t.commit(10n + BigInt(i) * 10n);
    }
    expect(t.pendingTransactions()).toBe(1);
    expect(t.confirmedLsn()).toBe(0n);
    t.markDurable('a', e);
    expect(t.confirmedLsn()).toBe(1_000_010n);
    expect(t.pendingTransactions()).toBe(0);
  });

  it('confirms like one entry per transaction, with pending bounded by in-flight events (property)', () => {
    // Commits (with 0..3 events) and acks interleaved; the model keeps every transaction.
    const op = fc.oneof(
      fc.record({ commit: fc.integer({ min: 0, max: 3 }) }),
      fc.record({ ack: fc.nat({ max: 5 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 200 }), (ops) => {
        const t = new CheckpointTracker(['a'], 0n);
        const model: { end: bigint; last: number }[] = [];
        let lsn = 0n;
        let durable = 0;
        for (const o of ops) {
          if ('commit' in o) {
            t.begin();
            for (let i = 0; i < o.commit; i++) t.event(1);
            lsn += 10n;
            t.commit(lsn);
            model.push({ end: lsn, last: t.lastOrdinal() });
          } else {
            durable = Math.min(t.lastOrdinal(), durable + o.ack);
            t.markDurable('a', durable);
          }
          const want = model.filter((m) => m.last <= durable).reduce((m, e) => (e.end > m ? e.end : m), 0n);
          if (t.confirmedLsn() !== want) return false;
          if (t.pendingTransactions() > t.inFlightEvents() + 1) return false;
        }
        return true;
      }),
    );
  });

  it('refuses a sink moving backwards', () => {
    const t = new CheckpointTracker(['a'], 0n);
    t.begin();
    t.event(1);
    t.event(1);
    t.markDurable('a', 2);
    expect(() => t.markDurable('a', 1)).toThrow(/backwards/);
  });
});
