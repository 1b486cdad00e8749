import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { extractorMigrations } from '../extractor/state/index.ts';
import { migrate } from '../state/migrate.ts';
import { jobrunnerMigrations } from './migrations.ts';

export interface MigrateAllResult {
  extractor: number[];
  jobrunner: number[];
  /** pg-boss's schema version after its own migrations. */
  pgboss: number | null;
}

/**
 * What `tag-connector migrate` applies: the extractor's and the job runner's numbered migrations in
 * the state schema, then pg-boss's own schema (installed or upgraded by pg-boss).
 */
export async function migrateAll(options: {
  pg: pg.ClientConfig;
  stateSchema: string;
  pgbossSchema: string;
}): Promise<MigrateAllResult> {
  const client = new pg.Client({ ...options.pg, application_name: 'tag-connector migrate' });
  await client.connect();
  let extractor: number[];
  let jobrunner: number[];
  try {
    extractor = await migrate(client, options.stateSchema, 'extractor', extractorMigrations);
    jobrunner = await migrate(client, options.stateSchema, 'jobrunner', jobrunnerMigrations);
  } finally {
    await client.end();
  }
  const boss = new PgBoss({
    ...(options.pg as object),
    schema: options.pgbossSchema,
    max: 2,
    migrate: true,
    supervise: false,
    schedule: false,
  } as ConstructorParameters<typeof PgBoss>[0]);
  boss.on('error', () => undefined);
  try {
    await boss.start();
    return { extractor, jobrunner, pgboss: await boss.schemaVersion() };
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
}
