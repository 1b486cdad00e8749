import { type Row, jsonKey } from '../decode/index.ts';
import { compileFilter, FilterError, type RowFilter } from './filter.ts';
import { maskerFor, type Masker } from './mask.ts';
import { isShown, type TableRule } from './rules.ts';

/** A row change after the rules: what the event carries. */
export interface GovernedChange {
  kind: 'insert' | 'update' | 'delete' | 'read';
  before: Row | null;
  after: Row | null;
  unchangedToast: string[];
}

/** A rule could not be applied to a row (a filter evaluation error): the event goes to dead letters. */
export class GovernanceError extends Error {
  readonly table: string;
  readonly reason: string;
  /** The event as every rule but the filter makes it (set by the mapper), for the dead letter. */
  event?: { id: string; type: string; partitionkey: string; json: string };
  constructor(table: string, reason: string) {
    super(`${table}: ${reason}`);
    this.name = 'GovernanceError';
    this.table = table;
    this.reason = reason;
  }
}

/**
 * One table's rules, compiled once: which columns leave the database, how masked ones are hidden, which
 * rows pass the filter, and the partition key. Pure (no I/O), so the mapper, the Snapshot route and the
 * backfill all give the same governed view of a row.
 */
export class TableGovernor {
  readonly table: string;
  /** Partition key columns, when the rule names them. */
  readonly key?: readonly string[];
  readonly tombstones: boolean;
  readonly topic?: string;
  private readonly rule: TableRule;
  private readonly filter?: RowFilter;
  /** Per column name as a Row holds it (its JSON: `"email"`): shown or not, and its masker. */
  private readonly shownCache = new Map<string, boolean>();
  private readonly maskers = new Map<string, Masker>();
  /** Nothing to drop or mask: rows pass as they are. */
  private readonly identity: boolean;

  constructor(table: string, rule: TableRule, maskKey: Buffer | undefined) {
    this.table = table;
    this.rule = rule;
    if (rule.key) this.key = rule.key;
    this.tombstones = rule.tombstones;
    if (rule.topic) this.topic = rule.topic;
    if (rule.filter !== undefined) this.filter = compileFilter(rule.filter);
    for (const [column, spec] of Object.entries(rule.mask))
      this.maskers.set(jsonKey(column), maskerFor(spec, maskKey));
    this.identity = !rule.columns && this.maskers.size === 0;
  }

  /** Whether a column (by its name's JSON) is in the governed view. */
  private shows(nameJson: string): boolean {
    let s = this.shownCache.get(nameJson);
    if (s === undefined) {
      s = isShown(this.rule, JSON.parse(nameJson) as string);
      if (this.shownCache.size < 10_000) this.shownCache.set(nameJson, s);
    }
    return s;
  }

  /** The mask spec of a column (`hmac-sha256`, `redact`, `truncate(n)`), if it is masked. */
  maskOf(name: string): string | undefined {
    return this.rule.mask[name];
  }

  /** Whether a column (by name) is in the governed view. */
  showsColumn(name: string): boolean {
    return isShown(this.rule, name);
  }

  /** The row with excluded columns left out and masked ones masked. */
  view(row: Row): Row {
    if (this.identity) return row;
    const keys: string[] = [];
    const values: string[] = [];
    for (let i = 0; i < row.keys.length; i++) {
      const k = row.keys[i]!;
      if (!this.shows(k)) continue;
      const mask = this.maskers.get(k);
      keys.push(k);
      values.push(mask ? mask(row.values[i]!) : row.values[i]!);
    }
    return { keys, values };
  }

  /** Whether a row passes the filter (no filter: every row); throws GovernanceError when it cannot tell. */
  keeps(row: Row): boolean {
    if (!this.filter) return true;
    try {
      return this.filter(row);
    } catch (err) {
      if (err instanceof FilterError) throw new GovernanceError(this.table, err.message);
      throw err;
    }
  }

  /**
   * A change under the rules, or null when the filter drops it. The filter sees the source row (after;
   * before for deletes), so it may test columns the event leaves out. An update that moves a row out of
   * the filter becomes a delete, one that moves it in an insert, so a consumer's copy stays exact.
   * When the old row is only the replica identity (`oldFull` false) the filter cannot see where the row
   * was: a delete is passed on, an update whose new row fails becomes a delete, one that passes stays an
   * update (a consumer upserts it).
   */
  apply(
    kind: 'insert' | 'update' | 'delete' | 'read',
    old: Row | null,
    row: Row | null,
    oldFull: boolean,
    pk: readonly string[],
    unchangedToast: string[],
    filtered = true,
  ): GovernedChange | null {
    if (!filtered || !this.filter) {
      const k = kind === 'read' ? 'read' : kind;
      const shownToast = unchangedToast.filter((c) => this.showsColumn(c));
      return {
        kind: k,
        before: old ? this.view(old) : null,
        after: kind === 'delete' || !row ? null : this.view(row),
        unchangedToast: shownToast,
      };
    }
    const toast = unchangedToast.length ? unchangedToast.filter((c) => this.showsColumn(c)) : unchangedToast;
    const view = (r: Row | null) => (r ? this.view(r) : null);
    if (kind === 'delete') {
      if (old && oldFull && !this.keeps(old)) return null;
      return { kind, before: view(old), after: null, unchangedToast: toast };
    }
    if (!row) return { kind, before: view(old), after: null, unchangedToast: toast };
    if (kind !== 'update')
      return this.keeps(row) ? { kind, before: null, after: view(row), unchangedToast: toast } : null;
    const inNow = this.keeps(row);
    const wasIn = old && oldFull ? this.keeps(old) : undefined;
    if (inNow)
      return wasIn === false
        ? { kind: 'insert', before: null, after: view(row), unchangedToast: toast }
        : { kind: 'update', before: view(old), after: view(row), unchangedToast: toast };
    if (wasIn === false) return null;
    return { kind: 'delete', before: view(old ?? project(row, pk)), after: null, unchangedToast: [] };
  }
}

/** The row's key columns only (the old row of a delete made from an update under REPLICA IDENTITY DEFAULT). */
function project(row: Row, columns: readonly string[]): Row {
  const keys: string[] = [];
  const values: string[] = [];
  for (const c of columns) {
    const i = row.keys.indexOf(jsonKey(c));
    if (i >= 0) {
      keys.push(row.keys[i]!);
      values.push(row.values[i]!);
    }
  }
  return { keys, values };
}
