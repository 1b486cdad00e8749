export { extractorMigrations, INTERNAL_TABLES } from './migrations.ts';
export { PgCheckpointStore } from './checkpoint-store.ts';
