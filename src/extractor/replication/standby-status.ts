import type { Lsn } from '../../util/lsn.ts';

/** Microseconds between the Unix epoch and Postgres' epoch (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n;

/**
 * A Standby Status Update ('r'): written, flushed and applied positions, client time, reply request.
 * We send the same LSN three times: the durable low watermark over all sinks. (The helper library's
 * own acknowledge() adds 1 to the LSN it is given and is driven by received LSNs; we don't use it.)
 */
export function standbyStatusUpdate(lsn: Lsn, nowMs: number, replyRequested = false): Buffer {
  const buf = Buffer.alloc(34);
  buf.write('r', 0, 'latin1');
  buf.writeBigUInt64BE(lsn, 1);
  buf.writeBigUInt64BE(lsn, 9);
  buf.writeBigUInt64BE(lsn, 17);
  buf.writeBigInt64BE(BigInt(nowMs) * 1000n - PG_EPOCH_US, 25);
  buf.writeUInt8(replyRequested ? 1 : 0, 33);
  return buf;
}
