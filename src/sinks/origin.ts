import type { Position } from '../util/lsn.ts';

/**
 * Where a sink checkpoint came from. A position (commit LSN, seq) means something only on the server,
 * slot and history it was read from: a replaced cluster starts its LSNs anew, a recreated slot starts
 * a new stream. Every sink records this with its checkpoint; the daemon compares it with the server on
 * start (src/extractor/replication/checkpoint-identity.ts). See docs/delivery-guarantees.md.
 */
export interface CheckpointOrigin {
  /** pg_control's system identifier (IDENTIFY_SYSTEM `systemid`): new with every initdb. */
  systemId: string;
  /** The server's timeline when the checkpoint was written (a promotion starts a new one). */
  timeline: number;
  database: string;
  slot: string;
  /** Which life of the slot: minted when the slot was created (see slot-incarnation.ts). */
  slotIncarnation: string;
}

/** A checkpoint as a sink or the state store holds it. */
export interface StoredCheckpoint {
  position: Position | null;
  /** null: written before checkpoints recorded their origin. */
  origin: CheckpointOrigin | null;
}

/** An explicit reset (--reset-sink-checkpoints), recorded in the sink that forgets its checkpoint. */
export interface SinkReset {
  at: string;
  /** Why the old checkpoint was refused. */
  reason: string;
  previous: { position: string | null; origin: CheckpointOrigin | null };
}

/** The CloudEvents type of a reset marker (a line in the file and stdout sinks). */
export const RESET_MARKER_TYPE = 'tag_connector.sink_reset';

/** A reset marker as one line of NDJSON: a CloudEvent readers may skip, never a change. */
export function resetMarkerLine(origin: CheckpointOrigin, reset: SinkReset): string {
  return (
    JSON.stringify({
      specversion: '1.0',
      id: `reset/${reset.at}`,
      source: `/tag-connector/${origin.database}/${origin.slot}`,
      type: RESET_MARKER_TYPE,
      time: reset.at,
      datacontenttype: 'application/json',
      data: { origin, reason: reset.reason, previous: reset.previous },
    }) + '\n'
  );
}

export function sameOrigin(a: CheckpointOrigin | null, b: CheckpointOrigin | null): boolean {
  if (!a || !b) return a === b;
  return (
    a.systemId === b.systemId &&
    a.timeline === b.timeline &&
    a.database === b.database &&
    a.slot === b.slot &&
    a.slotIncarnation === b.slotIncarnation
  );
}

/** Reads an origin back from JSON, or null when it is not one. */
export function parseOrigin(v: unknown): CheckpointOrigin | null {
  const o = v as Partial<CheckpointOrigin> | null;
  if (
    !o ||
    typeof o !== 'object' ||
    typeof o.systemId !== 'string' ||
    typeof o.timeline !== 'number' ||
    typeof o.database !== 'string' ||
    typeof o.slot !== 'string' ||
    typeof o.slotIncarnation !== 'string'
  )
    return null;
  return {
    systemId: o.systemId,
    timeline: o.timeline,
    database: o.database,
    slot: o.slot,
    slotIncarnation: o.slotIncarnation,
  };
}
