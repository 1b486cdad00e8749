import type { Db, Query } from '../../state/db.ts';
import type { Governance, SchemaColumn } from '../governance/index.ts';

/**
 * The columns of tables as the catalog has them now (name, format_type, NOT NULL), in column order:
 * one table (`schema.table`), or every ordinary or partitioned root table outside the system schemas.
 */
export function tableColumnsQuery(table?: string): Query {
  return {
    text: `SELECT n.nspname || '.' || c.relname AS name,
                coalesce(json_agg(json_build_object('name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
                                                    'notNull', a.attnotnull) ORDER BY a.attnum)
                           FILTER (WHERE a.attnum > 0), '[]') AS columns
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
          WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
            AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            ${table === undefined ? '' : `AND n.nspname || '.' || c.relname = $1`}
          GROUP BY 1 ORDER BY 1`,
    values: table === undefined ? [] : [table],
  };
}

/** A column of a table's governed view: shown columns only, with their mask. */
export interface GovernedColumn extends SchemaColumn {
  mask?: string;
}

/** The governed columns of a table now (none when the catalog has no such table). */
export async function governedColumns(
  db: Db,
  governance: Governance,
  table: string,
): Promise<GovernedColumn[]> {
  const q = tableColumnsQuery(table);
  const { rows } = await db.query<{ columns: SchemaColumn[] }>(q.text, q.values);
  const g = governance.for(table);
  return (rows[0]?.columns ?? [])
    .filter((c) => !g || g.showsColumn(c.name))
    .map((c) => {
      const mask = g?.maskOf(c.name);
      return mask ? { ...c, mask } : c;
    });
}
