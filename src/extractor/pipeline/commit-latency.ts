import { asPacked, type SinkBatch } from '../../sinks/batch.ts';

/**
 * Epoch milliseconds of an ISO-8601 commit time, keeping the microseconds Postgres gives
 * (`Date.parse` stops at milliseconds, too coarse for a commit-to-ack figure of 1–2 ms). NaN when
 * the text is not a time.
 */
export function epochMs(iso: string): number {
  const ms = Date.parse(iso);
  // "YYYY-MM-DDTHH:MM:SS.fff|fff": digits 4–6 of the fraction are what Date.parse dropped.
  if (!(ms === ms) || iso.charCodeAt(19) !== 46) return ms;
  let extra = 0;
  let scale = 1;
  for (let i = 23; i < 26; i++) {
    const d = iso.charCodeAt(i) - 48;
    if (!(d >= 0 && d <= 9)) break;
    extra = extra * 10 + d;
    scale *= 10;
  }
  return ms + extra / scale;
}

/**
 * Commit-to-ack latency once per transaction of an acknowledged batch (its events are consecutive):
 * per event would weigh big transactions by their size, per batch would hide all but the last. A
 * backfill chunk's reads (`*.read`, at its high watermark's transaction) are left out: that is the
 * backfill's pace, not the live stream's latency (docs/backfill.md).
 */
export function observeTransactions(events: SinkBatch, nowMs: number, observe: (ms: number) => void): void {
  const batch = asPacked(events);
  let lastLsn: bigint | undefined;
  let lastTime = '';
  let lastRead = false;
  for (let r = 0; r < batch.blocks.length; r++) {
    const b = batch.blocks[r]!;
    for (let i = batch.froms[r]!; i < batch.tos[r]!; i++) {
      const lsn = b.commitLsns[i]!;
      if (lastLsn !== undefined && lsn !== lastLsn && !lastRead) observeOne(lastTime, nowMs, observe);
      lastLsn = lsn;
      lastTime = b.times[i]!;
      lastRead = b.types[i]!.endsWith('.read');
    }
  }
  if (lastLsn !== undefined && !lastRead) observeOne(lastTime, nowMs, observe);
}

function observeOne(time: string, nowMs: number, observe: (ms: number) => void): void {
  const t = epochMs(time);
  if (t === t) observe(Math.max(0, nowMs - t));
}
