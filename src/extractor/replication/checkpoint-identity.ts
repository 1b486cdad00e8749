import { errors } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { CheckpointOrigin, SinkReset, StoredCheckpoint } from '../../sinks/origin.ts';
import type { CheckpointIdentity } from '../../sinks/runner.ts';
import { formatLsn, formatPosition, type Lsn } from '../../util/lsn.ts';
import type { TimelineSwitch } from './server-identity.ts';

/**
 * The start-up check of every sink checkpoint against the server (docs/delivery-guarantees.md). A
 * checkpoint is a position in one server's WAL, for one life of one slot: taken to another server
 * (a restore, a rebuilt primary, a migration: their LSNs start anew) or to a recreated slot, it would
 * make the sinks skip real changes as "already delivered". So each one records its origin
 * (src/sinks/origin.ts) and is trusted only when:
 * - it was written on this system (system identifier), for this database and slot name, and this
 *   incarnation of the slot;
 * - it is not ahead of the server's WAL (a checkpoint from the future: an older backup, or a slot
 *   recreated by hand behind our back);
 * - if the timeline changed since (a promotion), it lies before the point where this server's
 *   history left the checkpoint's timeline: past it, the sink holds changes this server never had.
 *
 * A checkpoint written before origins were recorded is kept when that is safe enough: the slot was
 * not created just now (a new slot means a new stream, whatever the file says) and the checkpoint is
 * not ahead of the WAL. That keeps an upgraded deployment delivering without a reset or duplicates;
 * the next write records the origin.
 *
 * Otherwise the daemon stops with E_CHECKPOINT_MISMATCH (exit 5) naming the mismatch and the way out,
 * `--reset-sink-checkpoints`: then the sink forgets its checkpoint, records the reset in itself, and
 * gets every change of the slot from its start. Never skipped silently.
 */

export interface ServerState {
  origin: CheckpointOrigin;
  walEnd: Lsn;
  /** The slot was created by this start: a new stream. */
  slotCreated: boolean;
  history: readonly TimelineSwitch[];
}

export type Verdict = { ok: true; note?: string } | { ok: false; why: string };

/** Pure: whether a stored checkpoint can be trusted on this server. */
export function judgeCheckpoint(stored: StoredCheckpoint | null, server: ServerState): Verdict {
  const p = stored?.position;
  if (!stored || !p) return { ok: true };
  const o = stored.origin;
  const cur = server.origin;
  const ahead = p.commitLsn > server.walEnd;
  const aheadWhy = () =>
    `it is ahead of the server's WAL (${formatPosition(p)} > ${formatLsn(server.walEnd)})`;
  if (!o) {
    if (server.slotCreated)
      return {
        ok: false,
        why: `it records no origin (an older version wrote it) and slot ${cur.slot} was created just now`,
      };
    if (ahead) return { ok: false, why: aheadWhy() };
    return {
      ok: true,
      note: 'a checkpoint without origin (older version) kept: not ahead of the WAL, slot not new',
    };
  }
  if (o.systemId !== cur.systemId)
    return {
      ok: false,
      why: `it was written on another cluster (system identifier ${o.systemId}, this server is ${cur.systemId})`,
    };
  if (o.database !== cur.database)
    return { ok: false, why: `it was written for database ${o.database}, not ${cur.database}` };
  if (o.slot !== cur.slot) return { ok: false, why: `it was written for slot ${o.slot}, not ${cur.slot}` };
  if (o.slotIncarnation !== cur.slotIncarnation)
    return {
      ok: false,
      why: `slot ${cur.slot} was dropped and created again since (incarnation ${o.slotIncarnation}, now ${cur.slotIncarnation})`,
    };
  if (ahead) return { ok: false, why: aheadWhy() };
  if (o.timeline !== cur.timeline) {
    const left = server.history.find((h) => h.timeline === o.timeline);
    if (!left)
      return {
        ok: false,
        why: `it was written on timeline ${o.timeline}, which is not in this server's history (timeline ${cur.timeline})`,
      };
    if (p.commitLsn >= left.end)
      return {
        ok: false,
        why:
          `it was written on timeline ${o.timeline} past the point where this server's history left it ` +
          `(${formatPosition(p)} >= ${formatLsn(left.end)}): the sink holds changes this server does not have`,
      };
    return {
      ok: true,
      note: `timeline ${o.timeline} -> ${cur.timeline}: the checkpoint lies before the switch`,
    };
  }
  return { ok: true };
}

/**
 * The runner's side of the check: judges each sink's checkpoint, logs what it kept, throws the
 * mismatch, or (with --reset-sink-checkpoints) returns the reset the sink records.
 */
export function checkpointIdentity(
  server: ServerState,
  o: { resetMismatched: boolean; logger: Pick<Logger, 'info' | 'warn'>; now?: () => Date },
): CheckpointIdentity {
  return {
    origin: server.origin,
    judge(sink: string, stored: StoredCheckpoint | null): SinkReset | undefined {
      const verdict = judgeCheckpoint(stored, server);
      const position = stored?.position ? formatPosition(stored.position) : null;
      if (verdict.ok) {
        if (verdict.note) o.logger.info({ sink, checkpoint: position, origin: stored?.origin }, verdict.note);
        return undefined;
      }
      if (!o.resetMismatched)
        throw errors.checkpointMismatch(sink, verdict.why, stored?.origin ?? null, server.origin);
      const reset: SinkReset = {
        at: (o.now?.() ?? new Date()).toISOString(),
        reason: verdict.why,
        previous: { position, origin: stored?.origin ?? null },
      };
      o.logger.warn(
        { sink, reason: verdict.why, previous: reset.previous, origin: server.origin },
        '--reset-sink-checkpoints: this sink forgets its checkpoint and gets every change of the slot from its start',
      );
      return reset;
    },
  };
}

/**
 * Before each reconnect of a running daemon: the server must still be the one its sinks' origin was
 * judged against. A new system (a replacement) or timeline (a failover) stops the daemon (exit 5): the
 * next start checks every checkpoint against the new server, and records the new timeline, instead
 * of streaming on with checkpoints that name the old one.
 */
export function assertSameServer(
  origin: CheckpointOrigin,
  now: { systemId: string; timeline: number },
): void {
  if (origin.systemId === now.systemId && origin.timeline === now.timeline) return;
  throw errors.serverChanged(origin, now);
}
