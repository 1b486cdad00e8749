import { type Row, jsonKey, rowJson } from '../../extractor/decode/index.ts';
import type { TableGovernor } from '../../extractor/governance/index.ts';
import { keyOfColumns } from '../../extractor/pipeline/index.ts';
import { CopyRowRuns, parseCopyText, type CopyField } from './copy-text.ts';
import { rowShape, type RowShape, type SnapshotTable } from './rows.ts';

/**
 * The Snapshot lines of a table with governance rules (docs/governance.md): the same rules the mapper
 * applies to the change stream (columns, masks, filter, key), so a Snapshot and the Stream after it
 * show one governed view. The string path (RowShape's emitters per value): rules need the row by
 * column anyway, so the byte-level fast path of SnapshotRowEncoder does not apply. Same interface.
 */
export class GovernedRowEncoder {
  rows = 0;
  private readonly runs = new CopyRowRuns();
  private readonly fields: CopyField[] = [];
  private readonly shape: RowShape;
  private readonly governor: TableGovernor;
  private readonly workspaces: Set<string> | undefined;
  private readonly names: string[];
  private readonly pk: string[];
  private out: string[] = [];
  private outBytes = 0;
  private done: Buffer[] = [];

  constructor(t: SnapshotTable, governor: TableGovernor, workspaceColumn: string, workspaces?: Set<string>) {
    this.shape = rowShape(t, workspaceColumn);
    this.governor = governor;
    this.workspaces = workspaces;
    this.names = this.shape.order.map((i) => jsonKey(t.columns[i]!.name));
    this.pk = t.pk;
  }

  writeRange(b: Buffer, start: number, end: number): void {
    this.write(b.subarray(start, end));
  }

  write(chunk: Uint8Array): void {
    const run = this.runs.push(chunk);
    if (!run) return;
    parseCopyText(run.toString('utf8'), this.fields, (fields) => this.row(fields));
    if (this.outBytes >= 64 * 1024) this.flush();
  }

  private row(fields: CopyField[]): void {
    if (this.workspaces && !this.shape.inWorkspaces(fields, this.workspaces)) return;
    const { order, emitters } = this.shape;
    const row: Row = { keys: this.names, values: new Array<string>(order.length) };
    for (let n = 0; n < order.length; n++) {
      const raw = fields[order[n]!];
      row.values[n] = raw === null || raw === undefined ? 'null' : emitters[n]!(raw);
    }
    // A row the filter cannot judge stops the Snapshot with an error line (never passed, never dropped).
    if (!this.governor.keeps(row)) return;
    const view = this.governor.view(row);
    const key = keyOfColumns(view, this.governor.key ?? this.pk);
    const after = rowJson(view);
    const line =
      this.shape.head +
      (key === undefined ? 'null' : JSON.stringify(key)) +
      ',"after":' +
      after +
      this.shape.middle +
      after +
      '}}\n';
    this.out.push(line);
    this.outBytes += line.length;
    this.rows++;
  }

  end(): void {
    this.runs.end();
    this.flush();
  }

  flush(): void {
    if (this.out.length) this.done.push(Buffer.from(this.out.join('')));
    this.out = [];
    this.outBytes = 0;
  }

  take(): Buffer[] {
    const done = this.done;
    this.done = [];
    return done;
  }

  release(_view: Buffer): void {}
}
