import type pg from 'pg';

/** SQL as data: plain functions return `{ text, values }` (pg-boss plans style). */
export interface Query {
  text: string;
  values?: unknown[];
}

/** The one-method database interface the state code needs (a pg.Client or pg.Pool fits). */
export interface Db {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

export function ident(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** `schema.table` → `"schema"."table"` */
export function qualified(name: string): string {
  const at = name.indexOf('.');
  return at < 0 ? ident(name) : `${ident(name.slice(0, at))}.${ident(name.slice(at + 1))}`;
}
