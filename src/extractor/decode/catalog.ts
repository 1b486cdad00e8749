import type { Db } from '../../state/db.ts';
import { isToastable } from './values.ts';

export interface ColumnInfo {
  name: string;
  type: string;
  toastable: boolean;
}

export interface TableInfo {
  /** schema.table as the plugin names it (a partition, possibly). */
  name: string;
  /** schema.table of the partition root (the table itself when not partitioned). */
  root: string;
  columns: ColumnInfo[];
  pk: string[];
  replicaIdentity: 'd' | 'n' | 'f' | 'i';
}

/**
 * Table metadata the plugins don't carry on every change: the full column list (wal2json omits
 * unchanged TOAST columns, so we must know which are missing), primary keys, and partition roots
 * (pg-boss partitions its job table per queue; changes arrive under the partitions' names).
 * It reads the current catalog, not the historic one: after ALTER TABLE the cache is refreshed.
 */
export class Catalog {
  private readonly db: Db;
  private readonly cache = new Map<string, TableInfo>();

  constructor(db: Db) {
    this.db = db;
  }

  cached(schema: string, table: string): TableInfo | undefined {
    return this.cache.get(`${schema}.${table}`);
  }

  invalidate(schema: string, table: string): void {
    this.cache.delete(`${schema}.${table}`);
  }

  async load(schema: string, table: string): Promise<TableInfo> {
    const name = `${schema}.${table}`;
    const { rows } = await this.db.query<{
      oid: number;
      relreplident: TableInfo['replicaIdentity'];
      root_schema: string;
      root_table: string;
    }>(
      `SELECT c.oid::int AS oid, c.relreplident,
              coalesce(rn.nspname, n.nspname) AS root_schema, coalesce(r.relname, c.relname) AS root_table
         FROM pg_class c
         JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_class r ON r.oid = pg_partition_root(c.oid)
         LEFT JOIN pg_namespace rn ON rn.oid = r.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2`,
      [schema, table],
    );
    const rel = rows[0];
    if (!rel) {
      // Dropped since: keep what the change itself tells.
      const info: TableInfo = { name, root: name, columns: [], pk: [], replicaIdentity: 'd' };
      this.cache.set(name, info);
      return info;
    }
    // pk_pos: position in the primary key index (key order, as wal2json's include-pk lists it).
    const cols = await this.db.query<{ name: string; type: string; pk_pos: number | null }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
              array_position(i.indkey::int2[], a.attnum) AS pk_pos
         FROM pg_attribute a
         LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [rel.oid],
    );
    const info: TableInfo = {
      name,
      root: `${rel.root_schema}.${rel.root_table}`,
      columns: cols.rows.map((c) => ({ name: c.name, type: c.type, toastable: isToastable(c.type) })),
      pk: cols.rows
        .filter((c) => c.pk_pos !== null)
        .sort((a, b) => a.pk_pos! - b.pk_pos!)
        .map((c) => c.name),
      replicaIdentity: rel.relreplident,
    };
    this.cache.set(name, info);
    return info;
  }
}
