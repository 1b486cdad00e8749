import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { RecordsBatch } from '@platformatic/kafka';
import { committedRecords, type AbortedTransaction } from '../../src/sinks/kafka/index.ts';

/**
 * committedRecords (src/sinks/kafka/txn.ts) on logs like the ones the soak's one transactional id
 * writes: one producer id (or a few), aborted and committed transactions, ABORT markers of
 * transactions that wrote nothing to the partition (no aborted-transaction entry), read in fetches
 * that end anywhere, each with the aborted-transaction list a broker returns for it. The oracle decides
 * every record by its producer's next marker in the log, as soak/kafka-raw.ts does.
 */

const IS_TRANSACTIONAL = 1 << 4;
const IS_CONTROL = 1 << 5;

function batch(firstOffset: bigint, producerId: bigint, values: string[]): RecordsBatch {
  return {
    firstOffset,
    length: 0,
    partitionLeaderEpoch: 0,
    magic: 2,
    crc: 0,
    attributes: IS_TRANSACTIONAL,
    lastOffsetDelta: values.length - 1,
    firstTimestamp: 0n,
    maxTimestamp: 0n,
    producerId,
    producerEpoch: 0,
    firstSequence: 0,
    records: values.map((v, offsetDelta) => ({
      length: 0,
      attributes: 0,
      timestampDelta: 0n,
      offsetDelta,
      key: null as unknown as Buffer,
      value: Buffer.from(v),
      headers: [],
    })),
  };
}

function marker(offset: bigint, producerId: bigint, commit: boolean): RecordsBatch {
  const key = Buffer.alloc(4);
  key.writeInt16BE(commit ? 1 : 0, 2);
  const b = batch(offset, producerId, ['']);
  return { ...b, attributes: IS_TRANSACTIONAL | IS_CONTROL, records: [{ ...b.records[0]!, key }] };
}

const values = (r: ReturnType<typeof committedRecords>) => r.map((x) => x.record.value!.toString());

describe('committedRecords: ABORT markers without an aborted-transaction entry', () => {
  // The sequence @platformatic/kafka's own filter got wrong under the soak (test/integration/
  // kafka-read-committed.test.ts shows it against a broker): aborted, committed, a bare ABORT (the
  // partition was added to a transaction that wrote nothing to it), committed; one producer id.
  const log = [
    batch(0n, 7n, ['a1', 'a2', 'a3']),
    marker(3n, 7n, false),
    batch(4n, 7n, ['c1', 'c2', 'c3']),
    marker(7n, 7n, true),
    marker(8n, 7n, false),
    batch(9n, 7n, ['c4', 'c5']),
    marker(11n, 7n, true),
  ];
  const aborted = [{ producerId: 7n, firstOffset: 0n }];

  it('keeps the committed transactions around it', () => {
    expect(values(committedRecords(log, aborted))).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
    expect(committedRecords(log, aborted).map((r) => r.offset)).toEqual([4n, 5n, 6n, 9n, 10n]);
  });

  it('and when the aborted transaction ended in an earlier fetch', () => {
    expect(values(committedRecords(log.slice(2), []))).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
  });

  it('an aborted transaction whose ABORT marker is in a later fetch: dropped up to the fetch end', () => {
    expect(values(committedRecords(log.slice(0, 1), aborted))).toEqual([]);
    expect(values(committedRecords(log.slice(1), aborted))).toEqual(['c1', 'c2', 'c3', 'c4', 'c5']);
  });
});

/** One transaction in a generated log: its producer, its records (none: a bare marker), its outcome. */
interface Txn {
  producer: bigint;
  size: number;
  commit: boolean;
}

/** The log a broker writes for `txns` (a transaction's records, then its marker; producers interleave). */
function buildLog(txns: Txn[], interleave: number[]) {
  const batches: RecordsBatch[] = [];
  const entries: (AbortedTransaction & { lastOffset: bigint })[] = [];
  const expected: string[] = [];
  let offset = 0n;
  // each producer's open transaction: [first offset, its values]
  const open = new Map<bigint, { first: bigint | null; txn: Txn; values: string[] }>();
  const queue = txns.map((t, i) => ({ t, i }));
  let step = 0;
  const end = (p: bigint) => {
    const o = open.get(p)!;
    batches.push(marker(offset, p, o.txn.commit));
    if (!o.txn.commit && o.first !== null)
      entries.push({ producerId: p, firstOffset: o.first, lastOffset: offset });
    if (o.txn.commit) expected.push(...o.values);
    offset++;
    open.delete(p);
  };
  while (queue.length || open.size) {
    const pick = interleave[step++ % interleave.length]!;
    if (queue.length && (open.size === 0 || pick % 2 === 0)) {
      const { t, i } = queue[0]!;
      if (open.has(t.producer)) end(t.producer);
      queue.shift();
      const vals = Array.from({ length: t.size }, (_, k) => `t${i}.${k}`);
      open.set(t.producer, { first: null, txn: t, values: vals });
      // its records in one or two batches, maybe later
      let k = 0;
      while (k < vals.length) {
        const n = Math.max(1, Math.min(vals.length - k, (pick % 3) + 1));
        const o = open.get(t.producer)!;
        o.first ??= offset;
        batches.push(batch(offset, t.producer, vals.slice(k, k + n)));
        offset += BigInt(n);
        k += n;
      }
    } else {
      const producers = [...open.keys()];
      end(producers[pick % producers.length]!);
    }
  }
  return { batches, entries, expected };
}

/** Reads the log as CommittedReader does: fetches from `next`, each cut after `cut` batches. */
function readInFetches(
  batches: RecordsBatch[],
  entries: (AbortedTransaction & { lastOffset: bigint })[],
  cuts: number[],
): string[] {
  const out: string[] = [];
  let next = 0n;
  let i = 0;
  for (let f = 0; i < batches.length; f++) {
    const start = batches.findIndex((b) => b.firstOffset + BigInt(b.lastOffsetDelta) >= next);
    const got = batches.slice(start, start + Math.max(1, cuts[f % cuts.length]!));
    const upper = got.at(-1)!.firstOffset + BigInt(got.at(-1)!.lastOffsetDelta) + 1n;
    // the broker's list: aborted transactions overlapping [fetch offset, upper bound)
    const aborted = entries
      .filter((e) => e.lastOffset >= next && e.firstOffset < upper)
      .map(({ producerId, firstOffset }) => ({ producerId, firstOffset }));
    for (const { offset, record } of committedRecords(got, aborted)) {
      if (offset >= next) out.push(record.value!.toString());
    }
    next = upper;
    i = start + got.length;
  }
  return out;
}

describe('committedRecords over generated logs, read in fetches that end anywhere', () => {
  it('returns exactly the records of committed transactions, in log order', () => {
    const txn = fc.record({
      producer: fc.constantFrom(7n, 7n, 7n, 8n),
      size: fc.integer({ min: 0, max: 4 }),
      commit: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(txn, { minLength: 1, maxLength: 30 }),
        fc.array(fc.nat(20), { minLength: 1, maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
        (txns, interleave, cuts) => {
          const { batches, entries, expected } = buildLog(txns, interleave);
          const inOrder = (vals: string[]) =>
            [...vals].sort((a, b) => {
              const oa = batches.findIndex((x) => x.records.some((r) => r.value!.toString() === a));
              const ob = batches.findIndex((x) => x.records.some((r) => r.value!.toString() === b));
              return oa - ob;
            });
          expect(readInFetches(batches, entries, cuts)).toEqual(inOrder(expected));
        },
      ),
      { numRuns: 300 },
    );
  });
});
