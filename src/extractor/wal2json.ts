import { parseLsn, type Lsn } from '../util/lsn.ts';
import { DecodeError, type Change, type Row } from './changes.ts';
import { converterFor } from './values.ts';

/**
 * Decoder for wal2json format-version 2 (one JSON object per message; options include-lsn,
 * include-timestamp, include-xids, include-pk). Pure: bytes in, typed change out.
 *
 * wal2json prints int8 and numeric values as bare JSON numbers, which JSON.parse would round above
 * 2^53 (and numeric(20,5) 1.10000 would lose its scale). Before parsing we turn every bare number that
 * follows a `"value":` key into a string, then convert by column type. The rewrite cannot touch
 * string contents: inside a JSON string every `"` is escaped, so `,"value":` / `{"value":` with a bare
 * quote only ever occurs as a real key.
 */
const BARE_VALUE_NUMBER = /([{,]"value":)(-?\d[\d.eE+-]*)/g;

/** The options our decoder expects (pass them to START_REPLICATION). */
export const WAL2JSON_OPTIONS = {
  'format-version': '2',
  'include-lsn': '1',
  'include-timestamp': '1',
  'include-xids': '1',
  'include-pk': '1',
  'include-transaction': '1',
} as const;

interface Wal2JsonColumn {
  name: string;
  type: string;
  value: string | boolean | null;
}

interface Wal2JsonMessage {
  action: 'B' | 'C' | 'I' | 'U' | 'D' | 'T' | 'M';
  xid?: number;
  lsn?: string;
  nextlsn?: string;
  timestamp?: string;
  schema?: string;
  table?: string;
  columns?: Wal2JsonColumn[];
  identity?: Wal2JsonColumn[];
  pk?: { name: string; type: string }[];
  transactional?: boolean;
  prefix?: string;
  content?: string;
}

/** Thrown when a bare int8 number was parsed beyond 2^53: the message is re-read the exact way. */
const INEXACT = Symbol('inexact');

function row(columns: Wal2JsonColumn[] | undefined): Row | null {
  if (!columns) return null;
  const out: Row = {};
  for (const c of columns) {
    const v = c.value;
    if (typeof v === 'number') {
      // Only reached on the fast path (no numeric columns): int8 is exact while it is a safe integer.
      if (c.type === 'bigint') {
        if (!Number.isSafeInteger(v)) throw INEXACT;
        out[c.name] = String(v);
      } else out[c.name] = v;
    } else out[c.name] = v === null ? null : typeof v === 'string' ? converterFor(c.type)(v) : v;
  }
  return out;
}

/**
 * Whether the message needs its numbers as source text: numeric/money values keep their scale and
 * size only that way. int8 is checked per value instead (see row()).
 */
function needsSourceText(text: string): boolean {
  return (
    text.includes('"type":"numeric') || text.includes('"type":"money"') || text.includes('"type":"decimal')
  );
}

function need<T>(value: T | undefined, what: string, walLsn: string): T {
  if (value === undefined)
    throw new DecodeError(
      walLsn,
      `wal2json message without "${what}" (is include-lsn/include-timestamp/include-xids on?)`,
    );
  return value;
}

function isoTime(ts: string): string {
  return converterFor('timestamp with time zone')(ts) as string;
}

export function decodeWal2Json(payload: Buffer | string, walLsn: string): Change {
  const text = typeof payload === 'string' ? payload : payload.toString('utf8');
  // Fast path: plain JSON.parse (no rewritten copy of the message) when no value needs its source text.
  if (!needsSourceText(text)) {
    try {
      return decodeMessage(parseJson(text, walLsn), walLsn);
    } catch (err) {
      if (err !== INEXACT) throw err;
    }
  }
  return decodeMessage(parseJson(text.replace(BARE_VALUE_NUMBER, '$1"$2"'), walLsn), walLsn);
}

function parseJson(text: string, walLsn: string): Wal2JsonMessage {
  try {
    return JSON.parse(text) as Wal2JsonMessage;
  } catch (err) {
    throw new DecodeError(
      walLsn,
      `invalid JSON from wal2json (${(err as Error).message}): ${text.slice(0, 200)}`,
    );
  }
}

function decodeMessage(msg: Wal2JsonMessage, walLsn: string): Change {
  const lsn = (what: string): Lsn => {
    const t = need((msg as unknown as Record<string, string | undefined>)[what], what, walLsn);
    try {
      return parseLsn(t);
    } catch (err) {
      throw new DecodeError(walLsn, (err as Error).message);
    }
  };
  switch (msg.action) {
    case 'B':
      return {
        kind: 'begin',
        xid: need(msg.xid, 'xid', walLsn),
        commitLsn: lsn('lsn'),
        endLsn: lsn('nextlsn'),
        commitTime: isoTime(need(msg.timestamp, 'timestamp', walLsn)),
      };
    case 'C':
      return { kind: 'commit', commitLsn: lsn('lsn'), endLsn: lsn('nextlsn') };
    case 'I':
    case 'U':
    case 'D': {
      const kind = msg.action === 'I' ? 'insert' : msg.action === 'U' ? 'update' : 'delete';
      return {
        kind,
        lsn: lsn('lsn'),
        schema: need(msg.schema, 'schema', walLsn),
        table: need(msg.table, 'table', walLsn),
        new: kind === 'delete' ? null : row(need(msg.columns, 'columns', walLsn)),
        old: row(msg.identity),
        ...(msg.pk ? { pk: msg.pk.map((p) => p.name) } : {}),
      };
    }
    case 'T':
      return {
        kind: 'truncate',
        lsn: lsn('lsn'),
        schema: need(msg.schema, 'schema', walLsn),
        table: need(msg.table, 'table', walLsn),
      };
    case 'M':
      return {
        kind: 'message',
        lsn: lsn('lsn'),
        transactional: Boolean(msg.transactional),
        prefix: msg.prefix ?? '',
        content: msg.content ?? '',
      };
    default:
      throw new DecodeError(
        walLsn,
        `unknown wal2json action ${JSON.stringify((msg as { action?: unknown }).action)}`,
      );
  }
}
