import type { Migration } from '../../state/migrate.ts';

/** The extractor's own tables in the state schema (never tracked as changes). */
export const extractorMigrations: Migration[] = [
  {
    version: 1,
    name: 'checkpoints and slots',
    sql: `
      CREATE TABLE {{schema}}.checkpoints (
        slot text NOT NULL,
        sink text NOT NULL,
        commit_lsn pg_lsn NOT NULL,
        seq int NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (slot, sink)
      );
      -- Slots this daemon created: the only ones it (or 'slot drop') may drop without --force.
      CREATE TABLE {{schema}}.slots (
        slot_name text PRIMARY KEY,
        plugin text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL
      );
      CREATE TABLE {{schema}}.heartbeat (
        slot text PRIMARY KEY,
        beat_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 2,
    name: 'checkpoint origins, slot incarnations, sink resets',
    sql: `
      -- Where each checkpoint came from (src/sinks/origin.ts); null: written before this migration.
      ALTER TABLE {{schema}}.checkpoints ADD COLUMN origin jsonb;
      -- Which life of a slot this is: minted when we create the slot, or adopted (recorded on first
      -- sight) for a slot somebody else created; see src/extractor/slot-incarnation.ts.
      CREATE TABLE {{schema}}.slot_incarnations (
        slot_name text PRIMARY KEY,
        incarnation text NOT NULL,
        how text NOT NULL CHECK (how IN ('created', 'adopted')),
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      -- Every --reset-sink-checkpoints, for the sinks whose checkpoint lives here (stdout, Pub/Sub, ...).
      CREATE TABLE {{schema}}.sink_resets (
        slot text NOT NULL,
        sink text NOT NULL,
        reset_at timestamptz NOT NULL DEFAULT now(),
        reason text NOT NULL,
        previous jsonb NOT NULL,
        origin jsonb NOT NULL
      );
    `,
  },
];

/** Internal tables never streamed (our own writes would otherwise loop back). */
export const INTERNAL_TABLES = [
  'checkpoints',
  'slots',
  'migrations',
  'heartbeat',
  'slot_incarnations',
  'sink_resets',
] as const;
