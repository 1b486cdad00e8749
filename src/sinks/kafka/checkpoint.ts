import type { BaseOptions } from '@platformatic/kafka';
import { formatLsn, formatPosition, parseLsn, type Position } from '../../util/lsn.ts';
import { parseOrigin, type CheckpointOrigin, type SinkReset, type StoredCheckpoint } from '../origin.ts';
import { KafkaSinkError } from './errors.ts';
import { CommittedReader } from './reader.ts';

/** A checkpoint record's value: a position, or a reset (--reset-sink-checkpoints) with none. */
export interface KafkaCheckpointValue {
  commitLsn: string | null;
  seq: number | null;
  id: string | null;
  slot: string;
  at: string;
  /** Where the position comes from (origin.ts); absent in records of older versions. */
  origin?: CheckpointOrigin;
  reset?: SinkReset;
}

/** What a sink needs to find its checkpoint: the slot, and the origin (unset: the older, slot-only form). */
export interface CheckpointScope {
  slot: string;
  origin?: CheckpointOrigin;
}

export function checkpointValue(
  scope: CheckpointScope | string,
  p: Position,
  now = new Date(),
): KafkaCheckpointValue {
  const s = typeof scope === 'string' ? { slot: scope } : scope;
  return {
    commitLsn: formatLsn(p.commitLsn),
    seq: p.seq,
    id: formatPosition(p),
    slot: s.slot,
    at: now.toISOString(),
    ...(s.origin ? { origin: s.origin } : {}),
  };
}

/** The record that resets the checkpoint: the next open finds no position, and the reset is kept. */
export function resetValue(scope: CheckpointScope, reset: SinkReset): KafkaCheckpointValue {
  return {
    commitLsn: null,
    seq: null,
    id: null,
    slot: scope.slot,
    at: reset.at,
    origin: scope.origin,
    reset,
  };
}

export function parseCheckpointValue(value: string): Position {
  const cp = parseStoredCheckpoint(value);
  if (!cp.position) throw new KafkaSinkError(`a reset record has no position: ${value.slice(0, 200)}`);
  return cp.position;
}

export function parseStoredCheckpoint(value: string): StoredCheckpoint {
  const v = JSON.parse(value) as Partial<KafkaCheckpointValue>;
  const origin = parseOrigin(v.origin);
  if (v.reset) return { position: null, origin };
  if (typeof v.commitLsn !== 'string' || typeof v.seq !== 'number') {
    throw new KafkaSinkError(`bad checkpoint record: ${value.slice(0, 200)}`);
  }
  return { position: { commitLsn: parseLsn(v.commitLsn), seq: v.seq }, origin };
}

/**
 * The checkpoint record's key. With an origin: system identifier, database and slot, so two
 * deployments that share a Kafka cluster and a slot name (two clusters, or two databases) never read
 * each other's position. Without one (tests, tools): the slot alone, the form older versions wrote.
 */
export function checkpointKeyFor(scope: CheckpointScope): string {
  const o = scope.origin;
  return o ? `${o.systemId}/${o.database}/${o.slot}` : scope.slot;
}

/**
 * The transactional id of a slot's Kafka sink: stable across restarts, one writer per slot of one
 * database of one cluster, so a restarted daemon fences its predecessor and never another deployment
 * that happens to use the same slot name. (The incarnation is left out on purpose: a recreated slot's
 * daemon must still fence a predecessor of the old one.)
 */
export function transactionalIdFor(clientId: string, scope: CheckpointScope | string): string {
  const s = typeof scope === 'string' ? { slot: scope } : scope;
  const o = s.origin;
  return o ? `${clientId}.${o.systemId}.${o.database}.${o.slot}` : `${clientId}.${s.slot}`;
}

/** How long a checkpoint read waits for its topic to show in the metadata. */
const CHECKPOINT_TOPIC_PATIENCE_MS = 30_000;

/**
 * Reads the compacted checkpoint topic from its start to the last stable offset (read_committed,
 * aborted transactions filtered by us) and returns the latest committed record for our key: the
 * last one in offset order (one partition, one transactional writer per key, so the last is the
 * newest; a reset record is lower than the position before it), or null.
 *
 * Older versions keyed the record by the slot alone. Such a record is still read when there is none
 * under the new key, as a checkpoint without origin: the daemon keeps it only where that is safe
 * (checkpoint-identity.ts: an existing slot, not ahead of the WAL) and refuses it otherwise, with
 * --reset-sink-checkpoints as the way out.
 */
export async function readKafkaCheckpoint(
  base: BaseOptions,
  topic: string,
  scope: CheckpointScope | string,
): Promise<StoredCheckpoint | null> {
  const s = typeof scope === 'string' ? { slot: scope } : scope;
  const key = checkpointKeyFor(s);
  const legacyKey = s.origin ? s.slot : undefined;
  const reader = new CommittedReader(base, topic);
  try {
    // The sink created the topic before it reads (open()), so a topic that does not show is the
    // broker's metadata lagging, not an empty checkpoint: taking it as "no checkpoint" would write
    // everything above the slot's position again (fail closed, as for a checkpoint it cannot read).
    const deadline = Date.now() + CHECKPOINT_TOPIC_PATIENCE_MS;
    while (!(await reader.init('beginning'))) {
      if (Date.now() > deadline)
        throw new KafkaSinkError(
          `kafka: the checkpoint topic ${topic} does not show in the broker's metadata ` +
            `${CHECKPOINT_TOPIC_PATIENCE_MS / 1000} s after the sink created it: not reading it as empty`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
    let found: string | undefined;
    let legacy: string | undefined;
    await reader.readToEnd((records) => {
      for (const r of records) {
        if (!r.value) continue;
        if (r.key === key) found = r.value;
        else if (r.key === legacyKey) legacy = r.value;
      }
    });
    if (found !== undefined) return parseStoredCheckpoint(found);
    if (legacy !== undefined) {
      const cp = parseStoredCheckpoint(legacy);
      // A slot-keyed record of ours would carry our origin only if we wrote it: older ones carry none.
      return cp.origin ? null : cp;
    }
    return null;
  } finally {
    await reader.close();
  }
}
