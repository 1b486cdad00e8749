import type { Change } from '../../src/extractor/decode/changes.ts';
import { typedRow } from '../../src/extractor/decode/row-json.ts';

/** A decoded change with its rows as typed values (decoders emit JSON text per column). */
export function typed<C extends Change | Change[]>(c: C): C {
  if (Array.isArray(c)) return c.map((x) => typed(x)) as C;
  const ch = c as Change;
  if (ch.kind !== 'insert' && ch.kind !== 'update' && ch.kind !== 'delete') return c;
  return { ...ch, new: typedRow(ch.new), old: typedRow(ch.old) } as unknown as C;
}
