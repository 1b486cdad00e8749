import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { ConcurrencyLimit, Serial } from '../../src/api/limits.ts';
import { snapshotVerdict } from '../../src/api/snapshot/headroom.ts';

describe('snapshotVerdict: a Snapshot never takes the last wal sender or the slot the daemon needs', () => {
  const h = { max_wal_senders: 10, wal_senders: 3, max_slots: 10, slots: 3, own_slot: true };
  it('admits with room to spare', () => expect(snapshotVerdict(h).ok).toBe(true));
  it('keeps one wal sender free', () => {
    expect(snapshotVerdict({ ...h, wal_senders: 8 }).ok).toBe(true);
    expect(snapshotVerdict({ ...h, wal_senders: 9 })).toMatchObject({ ok: false, reason: /max_wal_senders/ });
  });
  it("keeps a slot for the daemon's own while it does not exist", () => {
    expect(snapshotVerdict({ ...h, slots: 9 }).ok).toBe(true);
    expect(snapshotVerdict({ ...h, slots: 9, own_slot: false })).toMatchObject({
      ok: false,
      reason: /max_replication_slots/,
    });
  });
  it('after admitting, one sender is always left (property)', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.nat(100), fc.nat(100), fc.nat(100), fc.boolean(), (ms, s, mx, sl, own) => {
        const v = { max_wal_senders: ms, wal_senders: s, max_slots: mx, slots: sl, own_slot: own };
        if (snapshotVerdict(v).ok) {
          expect(ms - (s + 1)).toBeGreaterThanOrEqual(1);
          expect(mx - (sl + 1)).toBeGreaterThanOrEqual(own ? 0 : 1);
        }
      }),
    );
  });
});

describe('ConcurrencyLimit and Serial', () => {
  it('admits max at once; a release (idempotent) frees one place', () => {
    const l = new ConcurrencyLimit(2);
    const a = l.tryAcquire()!;
    const b = l.tryAcquire()!;
    expect(l.tryAcquire()).toBeNull();
    a();
    a();
    expect(l.active).toBe(1);
    expect(l.tryAcquire()).not.toBeNull();
    b();
    expect(l.active).toBe(1);
  });

  it('runs sections one at a time, past failures', async () => {
    const s = new Serial();
    const log: string[] = [];
    const section =
      (name: string, fail = false) =>
      async () => {
        log.push(`${name}+`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`${name}-`);
        if (fail) throw new Error(name);
      };
    await Promise.allSettled([s.run(section('a')), s.run(section('b', true)), s.run(section('c'))]);
    expect(log).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
  });
});
