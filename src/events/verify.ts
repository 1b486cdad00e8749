import { comparePosition, parseEventId, type Position } from '../util/lsn.ts';
import type { ChangeData, CloudEvent } from './envelope.ts';

/**
 * Checks a stream of events as a subscriber received it (`tag-connector tail --verify`), per partition
 * key, where commit order is promised:
 * - duplicate: an id (`<commitLsn>/<seq>`) seen before (expected after crashes on at-least-once sinks);
 * - out_of_order: an event whose position is below one already seen for its key;
 * - gap: a change missing from the stream. Ids are sparse (seq counts every change of a transaction,
 *   also of untracked tables), so a gap shows either as a broken row chain (an update's `before` does
 *   not match the `after` of the previous event of the same row, columns of both compared) or, when the
 *   expected ids are known (`--expect FILE`), as an id never received.
 */

export type IssueKind = 'duplicate' | 'out_of_order' | 'gap';

export interface VerifyIssue {
  kind: IssueKind;
  key: string;
  id: string;
  detail: string;
}

export interface VerifyReport {
  events: number;
  unique: number;
  keys: number;
  duplicates: number;
  outOfOrder: number;
  gaps: number;
  /** The first issues (at most `maxIssues`). */
  issues: VerifyIssue[];
  ok: boolean;
}

interface KeyState {
  last: Position;
  lastId: string;
  /** Last `after` row per table, for the chain check. */
  rows: Map<string, Record<string, unknown> | null>;
}

function sameOnCommonColumns(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  skip: readonly string[] = [],
): string | null {
  for (const col of Object.keys(b)) {
    if (!(col in a) || skip.includes(col)) continue;
    if (JSON.stringify(a[col]) !== JSON.stringify(b[col])) return col;
  }
  return null;
}

export class StreamVerifier {
  private readonly seen = new Set<string>();
  private readonly keys = new Map<string, KeyState>();
  private readonly issues: VerifyIssue[] = [];
  private counts = { events: 0, duplicates: 0, outOfOrder: 0, gaps: 0 };
  private readonly maxIssues: number;

  constructor(maxIssues = 100) {
    this.maxIssues = maxIssues;
  }

  private issue(i: VerifyIssue): VerifyIssue {
    if (this.issues.length < this.maxIssues) this.issues.push(i);
    return i;
  }

  /** Adds one received event; returns the issues it revealed. */
  add(event: CloudEvent): VerifyIssue[] {
    this.counts.events++;
    const key = event.partitionkey;
    const found: VerifyIssue[] = [];
    if (this.seen.has(event.id)) {
      this.counts.duplicates++;
      found.push(this.issue({ kind: 'duplicate', key, id: event.id, detail: 'id received before' }));
      return found;
    }
    this.seen.add(event.id);
    const pos = parseEventId(event.id);
    const state = this.keys.get(key);
    if (!state) {
      const rows = new Map<string, Record<string, unknown> | null>();
      this.keys.set(key, { last: pos, lastId: event.id, rows });
      this.trackRow(rows, event);
      return found;
    }
    if (comparePosition(pos, state.last) < 0) {
      this.counts.outOfOrder++;
      found.push(
        this.issue({
          kind: 'out_of_order',
          key,
          id: event.id,
          detail: `after ${state.lastId} of the same key`,
        }),
      );
      return found;
    }
    const d = event.data as Partial<ChangeData>;
    const table = d.schema && d.table ? `${d.schema}.${d.table}` : undefined;
    if (table && d.before && state.rows.has(table)) {
      const prev = state.rows.get(table);
      const col = prev ? sameOnCommonColumns(prev, d.before, d.unchanged_toast) : null;
      if (prev && col !== null) {
        this.counts.gaps++;
        found.push(
          this.issue({
            kind: 'gap',
            key,
            id: event.id,
            detail: `before.${col} differs from the after of ${state.lastId}: a change in between is missing`,
          }),
        );
      }
    }
    state.last = pos;
    state.lastId = event.id;
    this.trackRow(state.rows, event);
    return found;
  }

  private trackRow(rows: Map<string, Record<string, unknown> | null>, event: CloudEvent): void {
    const d = event.data as Partial<ChangeData>;
    if (!d.schema || !d.table || !('after' in d)) return;
    rows.set(`${d.schema}.${d.table}`, d.after ?? null);
  }

  /** The summary; with `expectedIds`, every expected id never received counts as a gap. */
  report(expectedIds?: Iterable<string>): VerifyReport {
    let gaps = this.counts.gaps;
    if (expectedIds) {
      for (const id of expectedIds) {
        if (this.seen.has(id)) continue;
        gaps++;
        this.issue({ kind: 'gap', key: '?', id, detail: 'expected id never received' });
      }
    }
    const r: VerifyReport = {
      events: this.counts.events,
      unique: this.seen.size,
      keys: this.keys.size,
      duplicates: this.counts.duplicates,
      outOfOrder: this.counts.outOfOrder,
      gaps,
      issues: [...this.issues],
      ok: false,
    };
    r.ok = r.duplicates === 0 && r.outOfOrder === 0 && r.gaps === 0;
    return r;
  }
}

/** One line per issue and a summary line, for the CLI. */
export function formatReport(r: VerifyReport): string {
  const lines = r.issues.map((i) => `${i.kind}\tkey=${i.key}\tid=${i.id}\t${i.detail}`);
  lines.push(
    `verify: ${r.events} events, ${r.unique} unique ids, ${r.keys} keys: ` +
      `${r.duplicates} duplicates, ${r.outOfOrder} out of order, ${r.gaps} gaps -> ${r.ok ? 'OK' : 'PROBLEMS'}`,
  );
  return lines.join('\n');
}
