import { changedColumns, sameColumns, type ShapeColumn } from '../shapes/index.ts';

/** What of a table's columns consumers may see: the governed view (docs/governance.md). */
export interface ColumnView {
  showsColumn(name: string): boolean;
  maskOf(name: string): string | undefined;
}

/** A column as a `schema.changed` event lists it: masked columns say by which rule. */
export interface EventColumn extends ShapeColumn {
  mask?: string;
}

function governed(columns: readonly ShapeColumn[], view?: ColumnView): EventColumn[] {
  if (!view) return columns.map((c) => ({ name: c.name, type: c.type }));
  const out: EventColumn[] = [];
  for (const c of columns) {
    if (!view.showsColumn(c.name)) continue;
    const mask = view.maskOf(c.name);
    out.push(mask ? { name: c.name, type: c.type, mask } : { name: c.name, type: c.type });
  }
  return out;
}

/**
 * The `data` members after `"op":"s",<schema and table>` of a `schema.changed` event, as JSON text:
 * `"before":null,"after":null,"changed":[names],"columns":{"before":[..],"after":[..]}`; the columns
 * are the governed view, so an excluded column is never named. Null when the view did not change (only
 * excluded columns did): the event's seq stays taken, as a filtered-out change's does.
 */
export function schemaChangedData(
  before: readonly ShapeColumn[],
  after: readonly ShapeColumn[],
  view?: ColumnView,
): string | null {
  const b = governed(before, view);
  const a = governed(after, view);
  if (sameColumns(b, a)) return null; // one view for both: a column's mask is the same in each
  return `"before":null,"after":null,"changed":${JSON.stringify(changedColumns(b, a))},"columns":${JSON.stringify({ before: b, after: a })}`;
}
