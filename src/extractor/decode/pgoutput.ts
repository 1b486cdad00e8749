import { formatLsn, parseLsn, type Lsn } from '../../util/lsn.ts';
import {
  DecodeError,
  type BeginChange,
  type ChangeShape,
  type Change,
  type CommitChange,
  type MessageChange,
  type Row,
  type RowChange,
  type TruncateChange,
} from './changes.ts';
import type { Decoder } from '../pipeline/index.ts';
import { jsonString } from './row-json.ts';
import { jsonStringFromUtf8 } from './utf8-json.ts';
import { textToJsonFor, type TextToJson } from './value-json.ts';

/**
 * Decoder for pgoutput, logical replication protocol version 1 (START_REPLICATION options
 * `proto_version '1'`, `publication_names`, `messages 'true'`). Pure apart from the caches the protocol
 * asks for: Relation messages describe a table once per session and later messages name it by OID, so
 * `createPgoutputDecoder()` returns a closure over that cache.
 *
 * It produces what the wal2json decoder produces for the same WAL, so everything downstream (ids, seq,
 * `data`) is identical whichever plugin runs:
 * - BEGIN carries the commit LSN (`final_lsn`). pgoutput's Begin has no end LSN: `endLsn` is
 *   `final_lsn` there (a lower bound), and the real end comes with Commit's `end_lsn`, which is the only
 *   end the pipeline ever confirms.
 * - `old` keeps only the replica identity columns of a `K` tuple (pgoutput sends the others as nulls);
 *   an UPDATE that did not change the identity has no old tuple, and, as wal2json does, we take the
 *   identity columns from the new row.
 * - `pk` comes from the key flags only under REPLICA IDENTITY DEFAULT (there they are the primary key);
 *   under FULL every column is flagged, under USING INDEX the index's columns, so we leave it to the
 *   catalog's primary key.
 * - Unchanged TOAST columns (kind `u`) are left out of `new` and listed in `unchangedToast`.
 * - TRUNCATE of several tables yields one change per table, in the order Postgres lists them.
 */

/** Built-in type OIDs → names `converterFor` knows (values.ts). Anything else converts as text. */
const SCALAR_TYPES: Record<number, string> = {
  16: 'bool',
  17: 'bytea',
  18: '"char"',
  19: 'name',
  20: 'int8',
  21: 'int2',
  23: 'int4',
  25: 'text',
  26: 'oid',
  28: 'xid',
  114: 'json',
  142: 'xml',
  650: 'cidr',
  700: 'float4',
  701: 'float8',
  790: 'money',
  829: 'macaddr',
  869: 'inet',
  1042: 'bpchar',
  1043: 'varchar',
  1082: 'date',
  1083: 'time',
  1114: 'timestamp',
  1184: 'timestamptz',
  1186: 'interval',
  1266: 'timetz',
  1560: 'bit',
  1562: 'varbit',
  1700: 'numeric',
  2950: 'uuid',
  3220: 'pg_lsn',
  3802: 'jsonb',
};

/** Built-in array type OIDs → element type name (PostgreSQL 15 `pg_type`, typcategory 'A'). */
const ARRAY_TYPES: Record<number, string> = {
  143: 'xml',
  199: 'json',
  271: 'xid8',
  629: 'line',
  651: 'cidr',
  719: 'circle',
  775: 'macaddr8',
  791: 'money',
  1000: 'bool',
  1001: 'bytea',
  1002: '"char"',
  1003: 'name',
  1005: 'int2',
  1006: 'int2vector',
  1007: 'int4',
  1008: 'regproc',
  1009: 'text',
  1010: 'tid',
  1011: 'xid',
  1012: 'cid',
  1013: 'oidvector',
  1014: 'bpchar',
  1015: 'varchar',
  1016: 'int8',
  1017: 'point',
  1018: 'lseg',
  1019: 'path',
  1020: 'box',
  1021: 'float4',
  1022: 'float8',
  1027: 'polygon',
  1028: 'oid',
  1034: 'aclitem',
  1040: 'macaddr',
  1041: 'inet',
  1115: 'timestamp',
  1182: 'date',
  1183: 'time',
  1185: 'timestamptz',
  1187: 'interval',
  1231: 'numeric',
  1270: 'timetz',
  1561: 'bit',
  1563: 'varbit',
  2201: 'refcursor',
  2951: 'uuid',
  3221: 'pg_lsn',
  3643: 'tsvector',
  3645: 'tsquery',
  3807: 'jsonb',
  3905: 'int4range',
  3907: 'numrange',
  3909: 'tsrange',
  3911: 'tstzrange',
  3913: 'daterange',
  3927: 'int8range',
  4073: 'jsonpath',
  6150: 'int4multirange',
  6151: 'nummultirange',
  6152: 'tsmultirange',
  6153: 'tstzmultirange',
  6155: 'datemultirange',
  6157: 'int8multirange',
};

/**
 * The type name for a column's type OID. User-defined types (enums, domains, composites) are announced
 * by Type messages; their values convert as text, and their arrays (`_name`, Postgres' naming of array
 * types) as text arrays, as wal2json's `name[]` does.
 */
export function pgoutputTypeName(oid: number, userTypes?: ReadonlyMap<number, string>): string {
  const scalar = SCALAR_TYPES[oid];
  if (scalar) return scalar;
  const element = ARRAY_TYPES[oid];
  if (element) return `${element}[]`;
  const user = userTypes?.get(oid);
  if (user && user.startsWith('_') && user.length > 1) return 'text[]';
  return 'text';
}

/** pgoutput's internal type names → the SQL names `format_type` prints (and wal2json shows). */
const SQL_NAMES: Record<string, string> = {
  bool: 'boolean',
  int2: 'smallint',
  int4: 'integer',
  int8: 'bigint',
  float4: 'real',
  float8: 'double precision',
  bpchar: 'character',
  varchar: 'character varying',
  varbit: 'bit varying',
  timestamp: 'timestamp without time zone',
  timestamptz: 'timestamp with time zone',
  time: 'time without time zone',
  timetz: 'time with time zone',
};

/**
 * A column's type as `format_type(oid, typmod)` prints it, for the table's shape (schema.changed):
 * built-in names with their modifier (`character varying(20)`, `numeric(10,2)`, `timestamp(3) with
 * time zone`), a user type by the name its Type message gave, anything else by OID. A modifier we do
 * not spell out is kept as a number, so that a change of it still changes the shape.
 */
export function sqlTypeName(oid: number, typmod: number, userTypes?: ReadonlyMap<number, string>): string {
  const element = ARRAY_TYPES[oid];
  const internal = SCALAR_TYPES[oid] ?? element;
  if (internal === undefined) {
    const user = userTypes?.get(oid);
    const name = user === undefined ? `oid ${oid}` : user.startsWith('_') ? `${user.slice(1)}[]` : user;
    return typmod >= 0 ? `${name} (typmod ${typmod})` : name;
  }
  const base = SQL_NAMES[internal] ?? internal;
  const suffix = element !== undefined ? '[]' : '';
  if (typmod < 0) return base + suffix;
  switch (internal) {
    case 'varchar':
    case 'bpchar':
      return `${base}(${typmod - 4})${suffix}`;
    case 'bit':
    case 'varbit':
      return `${base}(${typmod})${suffix}`;
    case 'numeric': {
      const t = typmod - 4;
      return `numeric(${(t >> 16) & 0xffff},${t & 0xffff})${suffix}`;
    }
    case 'timestamp':
    case 'timestamptz':
    case 'time':
    case 'timetz': {
      const space = base.indexOf(' '); // `timestamp(3) with time zone`
      return `${base.slice(0, space)}(${typmod})${base.slice(space)}${suffix}`;
    }
    default:
      return `${base} (typmod ${typmod})${suffix}`;
  }
}

const REPLICA_IDENTITIES = new Set(['d', 'n', 'f', 'i']);

interface RelationColumn {
  name: string;
  /** The name as JSON (row key). */
  key: string;
  /** Part of the replica identity (flag bit 1). */
  identity: boolean;
  typeOid: number;
  typeName: string;
  typmod: number;
  /** The value's text → its JSON text, spliced into the row (value-json.ts). */
  toJson: TextToJson;
  /** Its value travels as a JSON string of its text (text, varchar, int8, numeric, ...): utf8-json.ts. */
  plainText: boolean;
}

interface Relation {
  oid: number;
  schema: string;
  table: string;
  /** d = default (primary key), n = nothing, f = full, i = index */
  replicaIdentity: string;
  columns: RelationColumn[];
  keyColumns: string[];
  /** Every column's key, in order: the keys of each tuple that sends them all (no copy per row). */
  keys: string[];
  /** The table's columns at this point of the WAL, given to each of its changes (schema.changed). */
  shape: ChangeShape;
}

/** TupleData column kinds. */
const KIND_TEXT = 116; // t
const KIND_NULL = 110; // n
const KIND_UNCHANGED = 117; // u (unchanged TOAST)
const KIND_BINARY = 98; // b
const NONE: readonly string[] = Object.freeze([]);

/** What a tuple's errors call it and its parts (made once, not per column of every row). */
interface TupleNames {
  what: string;
  count: string;
  kind: string;
}
const tupleNames = (what: string): TupleNames => ({
  what,
  count: `${what} column count`,
  kind: `${what} column kind`,
});
const NEW_TUPLE = tupleNames('new tuple');
const OLD_TUPLE = tupleNames('old tuple');
const KEY_TUPLE = tupleNames('key tuple');

/** A decoded tuple: the values it sent, and the columns it marked as unchanged TOAST. */
interface Tuple {
  row: Row;
  unchanged: readonly string[];
}

/** Microseconds between 1970-01-01 and 2000-01-01 (the PostgreSQL epoch). */
const PG_EPOCH_US = 946_684_800_000_000n;

/**
 * A PostgreSQL timestamp (µs since 2000-01-01 UTC) as ISO-8601 in UTC, as Postgres writes it under
 * `TimeZone=UTC` (wal2json's form after values.ts): microseconds kept, trailing zeros dropped.
 */
export function pgTimestampToIso(us: bigint): string {
  const unixUs = us + PG_EPOCH_US;
  let seconds = unixUs / 1_000_000n;
  let micros = unixUs % 1_000_000n;
  if (micros < 0n) {
    micros += 1_000_000n;
    seconds -= 1n;
  }
  const date = new Date(Number(seconds) * 1000).toISOString(); // 2024-01-02T03:04:05.000Z
  const fraction = micros === 0n ? '' : '.' + micros.toString().padStart(6, '0').replace(/0+$/, '');
  return `${date.slice(0, -5)}${fraction}+00:00`;
}

/** A cursor over one pgoutput message; every read is bounds-checked and fails with the LSN. */
class Reader {
  pos = 0;
  private readonly buf: Buffer;
  private readonly walLsn: string;

  constructor(buf: Buffer, walLsn: string) {
    this.buf = buf;
    this.walLsn = walLsn;
  }

  fail(message: string): never {
    // Names the place (LSN, table, column, byte offset), never a value (docs/security.md).
    const at = /offset \d/.test(message) ? '' : ` (byte offset ${this.pos})`;
    throw new DecodeError(this.walLsn, `pgoutput ${message}${at}`);
  }

  private need(n: number, what: string): number {
    const at = this.pos;
    if (at + n > this.buf.length)
      this.fail(`message ends inside ${what} (offset ${at}, length ${this.buf.length})`);
    this.pos += n;
    return at;
  }

  byte(what: string): number {
    return this.buf.readUInt8(this.need(1, what));
  }
  char(what: string): string {
    return String.fromCharCode(this.byte(what));
  }
  int16(what: string): number {
    return this.buf.readInt16BE(this.need(2, what));
  }
  int32(what: string): number {
    return this.buf.readInt32BE(this.need(4, what));
  }
  uint32(what: string): number {
    return this.buf.readUInt32BE(this.need(4, what));
  }
  int64(what: string): bigint {
    return this.buf.readBigInt64BE(this.need(8, what));
  }
  lsn(what: string): Lsn {
    return this.buf.readBigUInt64BE(this.need(8, what));
  }
  /** A NUL-terminated UTF-8 string. */
  string(what: string): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) this.fail(`message ends inside ${what} (no NUL terminator)`);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  /**
   * A tuple value (length-prefixed UTF-8) of `col` → its JSON text. The error names the column and
   * table; the message is only built on failure (two per column of every row otherwise).
   */
  value(col: RelationColumn, rel: Relation): string {
    const buf = this.buf;
    const at = this.pos;
    const n = at + 4 <= buf.length ? buf.readInt32BE(at) : -1;
    const end = at + 4 + n;
    if (n < 0 || end > buf.length) {
      const what = `value of column ${col.name} of ${rel.schema}.${rel.table}`;
      if (at + 4 > buf.length) this.fail(`message ends inside the length of ${what}`);
      if (n < 0) this.fail(`negative length ${n} for ${what}`);
      this.fail(`message ends inside ${what} (offset ${at + 4}, length ${buf.length})`);
    }
    this.pos = end;
    return col.plainText
      ? jsonStringFromUtf8(buf, at + 4, end)
      : col.toJson(buf.toString('utf8', at + 4, end));
  }
  /**
   * Whether the tuple value at the cursor has the bytes of `buf[start, end)` (the same column of the
   * old tuple); if so the cursor moves past it. Otherwise (or if it is malformed) nothing moves, and
   * value() reads it, with its checks.
   */
  sameValue(start: number, end: number): boolean {
    const buf = this.buf;
    const at = this.pos + 4;
    const n = end - start;
    if (at + n > buf.length || buf.readInt32BE(at - 4) !== n) return false;
    if (n <= 32) {
      for (let i = 0; i < n; i++) if (buf[at + i] !== buf[start + i]) return false;
    } else if (buf.compare(buf, start, end, at, at + n) !== 0) return false;
    this.pos = at + n;
    return true;
  }
  utf8(n: number, what: string): string {
    if (n < 0) this.fail(`negative length ${n} for ${what}`);
    const at = this.need(n, what);
    return this.buf.toString('utf8', at, at + n);
  }
  end(type: string): void {
    if (this.pos !== this.buf.length)
      this.fail(`${type} message has ${this.buf.length - this.pos} unexpected trailing byte(s)`);
  }
}

/**
 * Creates a decoder with its own Relation/Type cache. It may outlive a reconnection: a new walsender
 * session sends every Relation again before its first change, replacing what the cache holds.
 */
export function createPgoutputDecoder(): Decoder {
  const relations = new Map<number, Relation>();
  const userTypes = new Map<number, string>();

  function relationFor(r: Reader, oid: number): Relation {
    const rel = relations.get(oid);
    if (!rel) r.fail(`change for relation OID ${oid} that no Relation message described`);
    return rel;
  }

  /**
   * The old tuple of the Update being decoded, by column: where each text value lies in the message
   * and its JSON. Under REPLICA IDENTITY FULL an Update carries the whole old row and most of its
   * values come again, byte for byte, in the new one: those are compared instead of decoded and
   * converted again (bytea, arrays, timestamps, documents), and the new row gets the very same string.
   */
  const oldStarts: number[] = [];
  const oldEnds: number[] = [];
  const oldValues: string[] = [];

  function readTuple(r: Reader, rel: Relation, w: TupleNames, old: 'keep' | 'reuse' | 'none'): Tuple {
    const n = r.int16(w.count);
    const columns = rel.columns;
    if (n !== columns.length)
      r.fail(
        `${w.what} of ${rel.schema}.${rel.table} has ${n} columns, its Relation message ${columns.length}`,
      );
    // the relation's own keys array unless a column is left out (unchanged TOAST): rows share it
    let keys: string[] | undefined;
    const values: string[] = [];
    let unchanged: string[] | undefined;
    for (let i = 0; i < n; i++) {
      const col = columns[i]!;
      const kind = r.byte(w.kind);
      if (kind === KIND_TEXT) {
        // the value's text spliced in as JSON (value-json.ts): no typed value, no JSON.stringify
        keys?.push(col.key);
        if (old === 'reuse' && oldEnds[i]! >= 0) {
          const same = r.sameValue(oldStarts[i]!, oldEnds[i]!);
          if (same) {
            values.push(oldValues[i]!);
            continue;
          }
        }
        const start = r.pos + 4;
        const value = r.value(col, rel);
        values.push(value);
        if (old === 'keep') {
          oldStarts[i] = start;
          oldEnds[i] = r.pos;
          oldValues[i] = value;
        }
        continue;
      }
      if (old === 'keep') oldEnds[i] = -1;
      if (kind === KIND_NULL) {
        keys?.push(col.key);
        values.push('null');
      } else if (kind === KIND_UNCHANGED) {
        keys ??= rel.keys.slice(0, i);
        (unchanged ??= []).push(col.name);
      } else if (kind === KIND_BINARY) {
        r.fail(
          `binary value for column ${col.name} of ${rel.schema}.${rel.table} (binary mode is never requested)`,
        );
      } else
        r.fail(
          `unknown tuple column kind ${JSON.stringify(String.fromCharCode(kind))} for column ${col.name}`,
        );
    }
    return { row: { keys: keys ?? rel.keys, values }, unchanged: unchanged ?? NONE };
  }

  /** The replica identity columns of a tuple (K tuples send the other columns as nulls). */
  function identityOf(rel: Relation, tuple: Tuple): Row {
    const out: Row = { keys: [], values: [] };
    const { keys, values } = tuple.row;
    for (const c of rel.columns) {
      if (!c.identity) continue;
      const i = keys.indexOf(c.key);
      if (i >= 0) {
        out.keys.push(keys[i]!);
        out.values.push(values[i]!);
      }
    }
    return out;
  }

  /** The old row of an UPDATE/DELETE from its K (key) or O (whole old row) tuple. */
  function oldRow(r: Reader, rel: Relation, marker: string, keep: boolean): Row {
    const tuple = readTuple(r, rel, marker === 'K' ? KEY_TUPLE : OLD_TUPLE, keep ? 'keep' : 'none');
    return marker === 'K' ? identityOf(rel, tuple) : tuple.row;
  }

  function rowChange(
    kind: RowChange['kind'],
    rel: Relation,
    walLsn: string,
    newTuple: Tuple | null,
    old: Row | null,
  ): RowChange {
    const change: RowChange = {
      kind,
      // the source writes the XLogData start as Postgres does (X/Y, upper-case hex): no round trip
      lsn: walLsn,
      schema: rel.schema,
      table: rel.table,
      new: newTuple ? newTuple.row : null,
      old,
    };
    if (rel.replicaIdentity === 'd' && rel.keyColumns.length > 0) change.pk = rel.keyColumns;
    if (newTuple && newTuple.unchanged.length > 0) change.unchangedToast = newTuple.unchanged as string[];
    change.shape = rel.shape;
    return change;
  }

  function decode(payload: Buffer, walLsn: string): Change | Change[] {
    const r = new Reader(payload, walLsn);
    const type = r.char('message type');
    switch (type) {
      case 'B': {
        const finalLsn = r.lsn('final_lsn');
        const commitTime = pgTimestampToIso(r.int64('commit timestamp'));
        const xid = r.uint32('xid');
        r.end('Begin');
        const begin: BeginChange = { kind: 'begin', xid, commitLsn: finalLsn, endLsn: finalLsn, commitTime };
        return begin;
      }
      case 'C': {
        r.byte('flags');
        const commitLsn = r.lsn('commit lsn');
        const endLsn = r.lsn('end_lsn');
        r.int64('commit timestamp');
        r.end('Commit');
        const commit: CommitChange = { kind: 'commit', commitLsn, endLsn };
        return commit;
      }
      case 'R': {
        const oid = r.uint32('relation OID');
        const namespace = r.string('namespace');
        const table = r.string('relation name');
        const replicaIdentity = r.char('replica identity');
        if (!REPLICA_IDENTITIES.has(replicaIdentity))
          r.fail(`unknown replica identity ${JSON.stringify(replicaIdentity)} for ${namespace}.${table}`);
        const count = r.int16('column count');
        const columns: RelationColumn[] = [];
        for (let i = 0; i < count; i++) {
          const flags = r.byte('column flags');
          const name = r.string('column name');
          const typeOid = r.uint32('column type OID');
          const typmod = r.int32('column type modifier');
          const typeName = pgoutputTypeName(typeOid, userTypes);
          const toJson = textToJsonFor(typeName);
          columns.push({
            name,
            key: JSON.stringify(name),
            identity: (flags & 1) === 1,
            typeOid,
            typeName,
            typmod,
            toJson,
            plainText: toJson === jsonString,
          });
        }
        r.end('Relation');
        const keys = columns.map((c) => c.key);
        relations.set(oid, {
          oid,
          // pgoutput sends an empty namespace for pg_catalog
          schema: namespace === '' ? 'pg_catalog' : namespace,
          table,
          replicaIdentity,
          columns,
          keyColumns: columns.filter((c) => c.identity).map((c) => c.name),
          keys,
          shape: {
            keys,
            types: columns.map((c) => JSON.stringify(sqlTypeName(c.typeOid, c.typmod, userTypes))),
            partial: false,
          },
        });
        return { kind: 'noop' };
      }
      case 'Y': {
        const oid = r.uint32('type OID');
        r.string('type namespace');
        const name = r.string('type name');
        r.end('Type');
        userTypes.set(oid, name);
        return { kind: 'noop' };
      }
      case 'O': {
        r.lsn('origin commit lsn');
        r.string('origin name');
        r.end('Origin');
        return { kind: 'noop' };
      }
      case 'I': {
        const rel = relationFor(r, r.uint32('relation OID'));
        const marker = r.char('tuple marker');
        if (marker !== 'N') r.fail(`Insert without a new tuple (marker ${JSON.stringify(marker)})`);
        const tuple = readTuple(r, rel, NEW_TUPLE, 'none');
        r.end('Insert');
        return rowChange('insert', rel, walLsn, tuple, null);
      }
      case 'U': {
        const rel = relationFor(r, r.uint32('relation OID'));
        let marker = r.char('tuple marker');
        let old: Row | null = null;
        if (marker === 'K' || marker === 'O') {
          old = oldRow(r, rel, marker, true);
          marker = r.char('tuple marker');
        }
        if (marker !== 'N') r.fail(`Update without a new tuple (marker ${JSON.stringify(marker)})`);
        const tuple = readTuple(r, rel, NEW_TUPLE, old ? 'reuse' : 'none');
        r.end('Update');
        // The identity did not change: Postgres sent no old tuple; take it from the new row (wal2json does).
        if (!old && (rel.replicaIdentity === 'd' || rel.replicaIdentity === 'i') && rel.keyColumns.length)
          old = identityOf(rel, tuple);
        return rowChange('update', rel, walLsn, tuple, old);
      }
      case 'D': {
        const rel = relationFor(r, r.uint32('relation OID'));
        const marker = r.char('tuple marker');
        if (marker !== 'K' && marker !== 'O')
          r.fail(`Delete without an old tuple (marker ${JSON.stringify(marker)})`);
        const old = oldRow(r, rel, marker, false);
        r.end('Delete');
        return rowChange('delete', rel, walLsn, null, old);
      }
      case 'T': {
        const count = r.uint32('relation count');
        r.byte('truncate options');
        const oids: number[] = [];
        for (let i = 0; i < count; i++) oids.push(r.uint32('relation OID'));
        r.end('Truncate');
        const lsn = formatLsn(lsnOf(walLsn));
        return oids.map((oid): TruncateChange => {
          const rel = relationFor(r, oid);
          return { kind: 'truncate', lsn, schema: rel.schema, table: rel.table };
        });
      }
      case 'M': {
        const flags = r.byte('flags');
        const lsn = r.lsn('message lsn');
        const prefix = r.string('prefix');
        const length = r.int32('content length');
        const content = r.utf8(length, 'content');
        r.end('Message');
        const message: MessageChange = {
          kind: 'message',
          lsn,
          transactional: (flags & 1) === 1,
          prefix,
          content,
        };
        return message;
      }
      default:
        return r.fail(
          `unknown message type ${JSON.stringify(type)} (0x${payload[0]?.toString(16) ?? '??'}, ${payload.length} bytes)`,
        );
    }
  }

  return decode;
}

/** The XLogData start the change arrived with: the row change's own LSN. */
function lsnOf(walLsn: string): Lsn {
  try {
    return parseLsn(walLsn);
  } catch (err) {
    throw new DecodeError(walLsn, (err as Error).message);
  }
}
