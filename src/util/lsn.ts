/**
 * PostgreSQL log sequence numbers. An LSN is a 64-bit WAL position written `X/Y` (two hex halves).
 * We keep them as bigint internally: comparisons and arithmetic must be exact across the 2^32 boundary.
 */
export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function isLsnText(text: string): boolean {
  return LSN_TEXT.test(text);
}

export function parseLsn(text: string): Lsn {
  // Hot path (every decoded change): no regex, two small integers.
  const slash = text.indexOf('/');
  if (slash > 0 && slash <= 8 && text.length - slash - 1 <= 8 && text.length > slash + 1) {
    const hi = parseHex(text, 0, slash);
    const lo = parseHex(text, slash + 1, text.length);
    if (hi >= 0 && lo >= 0) return (BigInt(hi) << 32n) | BigInt(lo);
  }
  throw new TypeError(`not an LSN: ${JSON.stringify(text)} (expected X/Y in hex, e.g. 0/16B3748)`);
}

function parseHex(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    const d = c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (d < 0) return -1;
    n = n * 16 + d;
  }
  return n;
}

export function formatLsn(lsn: Lsn): string {
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffffffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

export function lsnFromBuffer(buf: Buffer, offset: number): Lsn {
  return buf.readBigUInt64BE(offset);
}

export const ZERO_LSN: Lsn = 0n;

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}

/** Position of an event in the stream: its transaction's commit LSN and its index in that transaction. */
export interface Position {
  commitLsn: Lsn;
  seq: number;
}

export function comparePosition(a: Position, b: Position): number {
  if (a.commitLsn !== b.commitLsn) return a.commitLsn < b.commitLsn ? -1 : 1;
  return a.seq - b.seq;
}

export function formatPosition(p: Position): string {
  return `${formatLsn(p.commitLsn)}/${p.seq}`;
}

/** Parses an event id `<commitLsn>/<seq>` (e.g. `0/16B3748/3`) back into a position. */
export function parseEventId(id: string): Position {
  const at = id.lastIndexOf('/');
  const seq = Number(id.slice(at + 1));
  if (at <= 0 || !Number.isInteger(seq) || seq < 0) {
    throw new TypeError(
      `not an event id: ${JSON.stringify(id)} (expected <commitLsn>/<seq>, e.g. 0/16B3748/3)`,
    );
  }
  return { commitLsn: parseLsn(id.slice(0, at)), seq };
}
