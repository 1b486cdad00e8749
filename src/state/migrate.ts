import { ident, type Db } from './db.ts';

export interface Migration {
  version: number;
  name: string;
  /** SQL with `{{schema}}` standing for the (quoted) state schema. */
  sql: string;
}

/**
 * Applies numbered migrations of one namespace (e.g. 'extractor', 'jobrunner') in the state schema,
 * each once, in order, in its own transaction, serialized by an advisory lock so that several daemons
 * starting together don't race.
 */
export async function migrate(
  db: Db,
  schema: string,
  namespace: string,
  migrations: readonly Migration[],
): Promise<number[]> {
  const s = ident(schema);
  const applied: number[] = [];
  await db.query('BEGIN');
  try {
    await db.query(`SELECT pg_advisory_xact_lock(hashtext('tag_connector.migrate'))`);
    await db.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await db.query(
      `CREATE TABLE IF NOT EXISTS ${s}.migrations (namespace text NOT NULL, version int NOT NULL, name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (namespace, version))`,
    );
    const done = new Set(
      (
        await db.query<{ version: number }>(`SELECT version FROM ${s}.migrations WHERE namespace = $1`, [
          namespace,
        ])
      ).rows.map((r) => r.version),
    );
    const sorted = [...migrations].sort((a, b) => a.version - b.version);
    for (const m of sorted) {
      if (done.has(m.version)) continue;
      await db.query(m.sql.replaceAll('{{schema}}', s));
      await db.query(`INSERT INTO ${s}.migrations (namespace, version, name) VALUES ($1, $2, $3)`, [
        namespace,
        m.version,
        m.name,
      ]);
      applied.push(m.version);
    }
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return applied;
}
