// CEL through @marcbachmann/cel-js rather than cel-js: no dependencies (cel-js pulls in chevrotain
// and ramda), maintained (releases through 2026), typed, and its parse errors carry the offset we
// report; an expression is parsed once into a function and evaluated per row.
import { Environment } from '@marcbachmann/cel-js';
import type { Row } from '../decode/index.ts';

const env = new Environment().registerVariable('row', 'map');

/** A compiled row filter: true keeps the row; throws FilterError when it cannot be evaluated. */
export type RowFilter = (row: Row) => boolean;

export class FilterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FilterError';
  }
}

/** Where in the expression an error of the library points: `line L, column C`. */
function position(err: unknown, expr: string): string {
  const pos = (err as { node?: { pos?: number } }).node?.pos;
  if (typeof pos !== 'number') return 'position unknown';
  const before = expr.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - (before.lastIndexOf('\n') + 1) + 1;
  return `line ${line}, column ${column}`;
}

/** The first line of a library message with quoted literals left out (they may hold row values). */
export function safeMessage(err: unknown): string {
  const first = String((err as Error)?.message ?? err).split('\n')[0]!;
  return first.replace(/'[^']*'|"[^"]*"/g, '…');
}

/** Why an expression cannot be a row filter (syntax, unknown names, not a boolean), or undefined. */
export function checkFilter(expr: string): string | undefined {
  try {
    env.parse(expr);
    const checked = env.check(expr);
    if (!checked.valid) return `${safeMessage(checked.error)} at ${position(checked.error, expr)}`;
    if (checked.type !== 'bool' && checked.type !== 'dyn')
      return `expected a boolean expression, this one gives ${checked.type}`;
    return undefined;
  } catch (err) {
    return `${safeMessage(err)} at ${position(err, expr)}`;
  }
}

/** Compiles a filter (checkFilter first: this throws on a bad one). `row` is the row's typed values. */
export function compileFilter(expr: string): RowFilter {
  const problem = checkFilter(expr);
  if (problem) throw new FilterError(problem);
  const run = env.parse(expr);
  return (row) => {
    let result: unknown;
    try {
      result = run({ row: celRow(row) });
    } catch (err) {
      throw new FilterError(`filter evaluation failed: ${safeMessage(err)}`);
    }
    if (typeof result !== 'boolean') throw new FilterError(`filter gave ${typeof result}, not a boolean`);
    return result;
  };
}

/** JSON integers as CEL ints (BigInt), so `row.id + 1` is int arithmetic; other values as JSON gives them. */
function reviveInt(this: unknown, _key: string, value: unknown, context?: { source?: string }): unknown {
  if (typeof value === 'number' && context?.source !== undefined && /^-?\d+$/.test(context.source))
    return BigInt(context.source);
  return value;
}

/** The row as the object CEL sees: column → typed value (the event's typing: int8/numeric are strings). */
export function celRow(row: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < row.keys.length; i++)
    out[JSON.parse(row.keys[i]!) as string] = JSON.parse(row.values[i]!, reviveInt as never);
  return out;
}
