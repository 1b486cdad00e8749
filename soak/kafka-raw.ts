import { Consumer, FetchIsolationLevels } from '@platformatic/kafka';
import { decodeMessage } from '../src/sinks/encode.ts';

/** Batch attribute bits (Kafka record batch v2). */
const IS_TRANSACTIONAL = 1 << 4;
const IS_CONTROL = 1 << 5;

/** Where an id sits in the topic's log, whatever its transaction's outcome. */
export interface RawPlacement {
  partition: number;
  offset: bigint;
  producerId: bigint;
  producerEpoch: number;
  /** The outcome of its transaction by the markers in the log: undecided = no marker yet. */
  outcome: 'committed' | 'aborted' | 'undecided' | 'not transactional';
}

/**
 * A diagnosis for ids the read_committed reader did not find: reads the whole topic read_uncommitted
 * (every batch, aborted ones too) and decides each transactional record by the COMMIT or ABORT marker
 * of its producer that follows it in the partition, independently of the broker's aborted-transaction
 * index and of the product's own filter (src/sinks/kafka/txn.ts). Tells a loss (the id is in no batch,
 * or only in aborted ones) from a reader problem (the id is there, committed).
 */
export async function placeIds(
  brokers: string,
  topic: string,
  ids: ReadonlySet<string>,
  timeoutMs = 120_000,
): Promise<Map<string, RawPlacement[]>> {
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
    clientId: 'tagc-soak-raw',
    bootstrapBrokers: [brokers],
    groupId: 'tagc-soak-raw',
    isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
  });
  const found = new Map<string, RawPlacement[]>();
  const started = Date.now();
  try {
    const meta = (await consumer.metadata({ topics: [topic], forceUpdate: true })).topics.get(topic);
    if (!meta) return found;
    const offsets = await consumer.listOffsets({
      topics: [topic],
      isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
    }); // high watermarks
    const ends = offsets.get(topic) ?? [];
    for (let p = 0; p < meta.partitionsCount; p++) {
      const end = ends[p] ?? 0n;
      let next = 0n;
      // per producer id, the placements awaiting their marker
      const open = new Map<bigint, RawPlacement[]>();
      while (next < end && Date.now() - started < timeoutMs) {
        const res = await consumer.fetch({
          node: meta.partitions[p]!.leader,
          topics: [
            {
              topicId: meta.id,
              partitions: [
                {
                  partition: p,
                  fetchOffset: next,
                  currentLeaderEpoch: -1,
                  lastFetchedEpoch: -1,
                  partitionMaxBytes: 4 << 20,
                },
              ],
            },
          ],
          maxWaitTime: 200,
          maxBytes: 8 << 20,
          isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
        });
        const part = res.responses.flatMap((r) => r.partitions).find((x) => x.partitionIndex === p);
        const batches = part?.records ?? [];
        if (part?.errorCode === 1) {
          next = part.logStartOffset;
          continue;
        }
        if (batches.length === 0) break;
        for (const b of batches) {
          const last = b.firstOffset + BigInt(b.lastOffsetDelta);
          if (last < next) continue;
          if (b.attributes & IS_CONTROL) {
            const key = b.records[0]?.key;
            const commit = key && key.length >= 4 && key.readInt16BE(2) === 1;
            for (const pl of open.get(b.producerId) ?? []) pl.outcome = commit ? 'committed' : 'aborted';
            open.delete(b.producerId);
          } else {
            const transactional = (b.attributes & IS_TRANSACTIONAL) !== 0;
            for (const r of b.records) {
              const offset = b.firstOffset + BigInt(r.offsetDelta);
              if (offset < next) continue;
              const headers = Object.fromEntries(
                r.headers.map(([k, v]) => [k?.toString() ?? '', v?.toString() ?? '']),
              );
              let id: string;
              try {
                id = decodeMessage(headers, r.value?.toString() ?? '').id;
              } catch {
                continue;
              }
              if (!ids.has(id)) continue;
              const pl: RawPlacement = {
                partition: p,
                offset,
                producerId: b.producerId,
                producerEpoch: b.producerEpoch,
                outcome: transactional ? 'undecided' : 'not transactional',
              };
              (found.get(id) ?? found.set(id, []).get(id)!).push(pl);
              if (transactional)
                (open.get(b.producerId) ?? open.set(b.producerId, []).get(b.producerId)!).push(pl);
            }
          }
          next = last + 1n;
        }
      }
    }
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
  return found;
}

/** A short account of where the missing ids are: counts per outcome, and a few examples. */
export function describePlacements(missing: readonly string[], found: Map<string, RawPlacement[]>): string {
  const counts: Record<string, number> = {};
  const examples: string[] = [];
  for (const id of missing) {
    const pls = found.get(id) ?? [];
    const kind = pls.length === 0 ? 'in no batch' : [...new Set(pls.map((p) => p.outcome))].sort().join('+');
    counts[kind] = (counts[kind] ?? 0) + 1;
    if (examples.length < 8)
      examples.push(
        `${id}: ${pls.map((p) => `p${p.partition}@${p.offset} pid ${p.producerId}/${p.producerEpoch} ${p.outcome}`).join(', ') || 'in no batch'}`,
      );
  }
  return `${JSON.stringify(counts)}; ${examples.join('; ')}`;
}
