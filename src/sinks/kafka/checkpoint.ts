import type { BaseOptions } from '@platformatic/kafka';
import { comparePosition, formatLsn, formatPosition, parseLsn, type Position } from '../../util/lsn.ts';
import { KafkaSinkError } from './errors.ts';
import { CommittedReader } from './reader.ts';

export interface KafkaCheckpointValue {
  commitLsn: string;
  seq: number;
  id: string;
  slot: string;
  at: string;
}

export function checkpointValue(slot: string, p: Position, now = new Date()): KafkaCheckpointValue {
  return {
    commitLsn: formatLsn(p.commitLsn),
    seq: p.seq,
    id: formatPosition(p),
    slot,
    at: now.toISOString(),
  };
}

export function parseCheckpointValue(value: string): Position {
  const v = JSON.parse(value) as Partial<KafkaCheckpointValue>;
  if (typeof v.commitLsn !== 'string' || typeof v.seq !== 'number') {
    throw new KafkaSinkError(`bad checkpoint record: ${value.slice(0, 200)}`);
  }
  return { commitLsn: parseLsn(v.commitLsn), seq: v.seq };
}

/** The transactional id of a slot's Kafka sink: stable across restarts, one writer per slot. */
export function transactionalIdFor(clientId: string, slot: string): string {
  return `${clientId}.${slot}`;
}

/**
 * Reads the compacted checkpoint topic from its start to the last stable offset (read_committed, aborted
 * transactions filtered by us) and returns the latest committed value for `key`, or null.
 */
export async function readKafkaCheckpoint(
  base: BaseOptions,
  topic: string,
  key: string,
): Promise<Position | null> {
  const reader = new CommittedReader(base, topic);
  try {
    if (!(await reader.init('beginning'))) return null;
    let found: Position | null = null;
    await reader.readToEnd((records) => {
      for (const r of records) {
        if (r.key !== key || !r.value) continue;
        const pos = parseCheckpointValue(r.value);
        if (!found || comparePosition(pos, found) > 0) found = pos;
      }
    });
    return found;
  } finally {
    await reader.close();
  }
}
