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
    name: 'leader epochs',
    sql: `
      -- Bumped by each daemon that takes a slot's leader lock: a daemon that lost the lock and gets it
      -- back sees whether another one led meanwhile (its sinks' checkpoints are then stale).
      CREATE TABLE {{schema}}.leader_epochs (
        slot text PRIMARY KEY,
        epoch bigint NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/** Internal tables never streamed (our own writes would otherwise loop back). */
export const INTERNAL_TABLES = ['checkpoints', 'slots', 'migrations', 'heartbeat', 'leader_epochs'] as const;
