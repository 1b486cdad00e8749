import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  assertSameServer,
  checkpointIdentity,
  judgeCheckpoint,
  type ServerState,
} from '../../src/extractor/replication/checkpoint-identity.ts';
import { parseTimelineHistory } from '../../src/extractor/replication/server-identity.ts';
import {
  checkpointKeyFor,
  checkpointValue,
  parseStoredCheckpoint,
  resetValue,
  transactionalIdFor,
} from '../../src/sinks/kafka/checkpoint.ts';
import type { CheckpointOrigin, StoredCheckpoint } from '../../src/sinks/origin.ts';

const origin: CheckpointOrigin = {
  systemId: '7440000000000000001',
  timeline: 1,
  database: 'app',
  slot: 'tag_connector',
  slotIncarnation: 'inc-1',
};
const server: ServerState = { origin, walEnd: 0x5000000n, slotCreated: false, history: [] };
const at = (commitLsn: bigint, o: CheckpointOrigin | null = origin): StoredCheckpoint => ({
  position: { commitLsn, seq: 0 },
  origin: o,
});
const silent = { info: () => undefined, warn: () => undefined };

describe('judging a checkpoint against the server', () => {
  it('trusts a checkpoint of this system, database, slot life and timeline, not ahead of the WAL', () => {
    expect(judgeCheckpoint(at(0x4000000n), server)).toEqual({ ok: true });
    expect(judgeCheckpoint(at(0x5000000n), server)).toEqual({ ok: true });
    expect(judgeCheckpoint(null, { ...server, slotCreated: true })).toEqual({ ok: true });
    expect(judgeCheckpoint({ position: null, origin: null }, { ...server, slotCreated: true })).toEqual({
      ok: true,
    });
  });

  it.each<[string, Partial<CheckpointOrigin>, RegExp]>([
    [
      'another cluster',
      { systemId: '7440000000000000002' },
      /another cluster \(system identifier 7440000000000000002/,
    ],
    ['another database', { database: 'other' }, /database other, not app/],
    ['another slot', { slot: 'x' }, /slot x, not tag_connector/],
    ['a recreated slot', { slotIncarnation: 'inc-0' }, /dropped and created again/],
  ])('refuses a checkpoint of %s', (_name, change, why) => {
    const v = judgeCheckpoint(at(0x1000n, { ...origin, ...change }), server);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.why).toMatch(why);
  });

  it('refuses a checkpoint ahead of the WAL, with or without origin', () => {
    for (const o of [origin, null]) {
      const v = judgeCheckpoint(at(0x5000001n, o), server);
      expect(!v.ok && v.why).toMatch(/ahead of the server's WAL \(0\/5000001\/0 > 0\/5000000\)/);
    }
  });

  it('keeps a checkpoint without origin (an older version) only on a slot that is not new', () => {
    expect(judgeCheckpoint(at(0x1000n, null), server)).toMatchObject({ ok: true, note: expect.any(String) });
    const v = judgeCheckpoint(at(0x1000n, null), { ...server, slotCreated: true });
    expect(!v.ok && v.why).toMatch(/records no origin .* created just now/);
  });

  it('after a promotion, keeps checkpoints before the switch point and refuses those past it', () => {
    const promoted: ServerState = {
      ...server,
      origin: { ...origin, timeline: 3 },
      history: parseTimelineHistory(
        '1\t0/3000000\tno recovery target specified\n\n2\t0/4000000\tbefore 2000-01-01\n',
      ),
    };
    expect(promoted.history).toEqual([
      { timeline: 1, end: 0x3000000n },
      { timeline: 2, end: 0x4000000n },
    ]);
    expect(judgeCheckpoint(at(0x2ffffffn), promoted)).toMatchObject({ ok: true });
    expect(judgeCheckpoint(at(0x3500000n, { ...origin, timeline: 2 }), promoted)).toMatchObject({ ok: true });
    const past = judgeCheckpoint(at(0x3000000n), promoted);
    expect(!past.ok && past.why).toMatch(/past the point where this server's history left it/);
    const unknown = judgeCheckpoint(at(0x1000n, { ...origin, timeline: 7 }), promoted);
    expect(!unknown.ok && unknown.why).toMatch(/timeline 7, which is not in this server's history/);
  });

  it('property: any difference in system, database, slot or incarnation is refused', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('systemId', 'database', 'slot', 'slotIncarnation'),
        fc.string({ minLength: 1 }),
        fc.bigInt({ min: 0n, max: 0x5000000n }),
        (field, value, lsn) => {
          fc.pre(origin[field] !== value);
          return !judgeCheckpoint(at(lsn, { ...origin, [field]: value }), server).ok;
        },
      ),
    );
  });
});

describe('the runner-side check', () => {
  it('throws E_CHECKPOINT_MISMATCH (exit 5) naming the mismatch and the way out', () => {
    const id = checkpointIdentity(server, { resetMismatched: false, logger: silent });
    expect(id.judge('file', at(0x1000n))).toBeUndefined();
    let err: (Error & { code?: string; exitCode?: number }) | undefined;
    try {
      id.judge('file', at(0x1000n, { ...origin, systemId: '1' }));
    } catch (e) {
      err = e as Error;
    }
    expect(err).toMatchObject({ code: 'E_CHECKPOINT_MISMATCH', exitCode: 5 });
    expect(err!.message).toMatch(/sink file: .*another cluster.*--reset-sink-checkpoints/s);
  });

  it('with --reset-sink-checkpoints returns the reset to record, and logs it', () => {
    const warned: unknown[] = [];
    const id = checkpointIdentity(server, {
      resetMismatched: true,
      logger: { info: () => undefined, warn: (o: unknown) => void warned.push(o) },
      now: () => new Date('2026-12-06T02:00:00Z'),
    });
    const old = { ...origin, slotIncarnation: 'inc-0' };
    expect(id.judge('kafka', at(0x1000n))).toBeUndefined();
    expect(id.judge('kafka', at(0x1000n, old))).toEqual({
      at: '2026-12-06T02:00:00.000Z',
      reason: expect.stringMatching(/dropped and created again/),
      previous: { position: '0/1000/0', origin: old },
    });
    expect(warned).toHaveLength(1);
  });
});

describe('a reconnect of a running daemon', () => {
  it('goes on with the same system and timeline, and stops (exit 5) on another one', () => {
    expect(() => assertSameServer(origin, { systemId: origin.systemId, timeline: 1 })).not.toThrow();
    expect(() => assertSameServer(origin, { systemId: origin.systemId, timeline: 2 })).toThrow(
      expect.objectContaining({ code: 'E_SERVER_CHANGED', exitCode: 5 }),
    );
    expect(() => assertSameServer(origin, { systemId: '1', timeline: 1 })).toThrow(/changed while streaming/);
  });
});

describe('the Kafka checkpoint record', () => {
  it('is keyed, and its transactional id made, by system, database and slot', () => {
    const other = { ...origin, systemId: '7440000000000000002' };
    expect(checkpointKeyFor({ slot: 's', origin })).toBe('7440000000000000001/app/tag_connector');
    expect(checkpointKeyFor({ slot: 's', origin: other })).not.toBe(checkpointKeyFor({ slot: 's', origin }));
    expect(transactionalIdFor('tc', { slot: 'tag_connector', origin })).toBe(
      'tc.7440000000000000001.app.tag_connector',
    );
    // A recreated slot keeps its transactional id: its daemon must still fence the old one's.
    expect(transactionalIdFor('tc', { slot: 's', origin: { ...origin, slotIncarnation: 'x' } })).toBe(
      transactionalIdFor('tc', { slot: 's', origin }),
    );
    expect(checkpointKeyFor({ slot: 's' })).toBe('s');
  });

  it('carries its origin, and a reset record has no position', () => {
    const p = { commitLsn: 0x16b3748n, seq: 3 };
    const v = JSON.stringify(checkpointValue({ slot: 'tag_connector', origin }, p));
    expect(parseStoredCheckpoint(v)).toEqual({ position: p, origin });
    const reset = { at: 'now', reason: 'r', previous: { position: '0/16B3748/3', origin: null } };
    expect(parseStoredCheckpoint(JSON.stringify(resetValue({ slot: 's', origin }, reset)))).toEqual({
      position: null,
      origin,
    });
    // A record of an older version: a position without origin.
    expect(parseStoredCheckpoint(JSON.stringify(checkpointValue('tag_connector', p)))).toEqual({
      position: p,
      origin: null,
    });
  });
});
