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
    name: 'backfills and signals',
    // docs/backfill.md. A backfill and its tables' progress; the signal table's rows travel through
    // the WAL as logical messages (a trigger), so a request made with SQL alone reaches the daemon in
    // stream order whatever the publication or wal2json's add-tables cover.
    sql: `
      CREATE TABLE {{schema}}.backfills (
        id text PRIMARY KEY,
        slot text NOT NULL,
        state text NOT NULL DEFAULT 'queued'
          CHECK (state IN ('queued', 'running', 'done', 'failed', 'canceled')),
        where_sql text,
        chunk_size int NOT NULL CHECK (chunk_size > 0),
        origin text NOT NULL,
        signal_id bigint,
        error text,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz,
        UNIQUE (slot, signal_id)
      );
      CREATE INDEX ON {{schema}}.backfills (slot, state, created_at);
      CREATE TABLE {{schema}}.backfill_tables (
        backfill_id text NOT NULL REFERENCES {{schema}}.backfills (id) ON DELETE CASCADE,
        position int NOT NULL,
        table_name text NOT NULL,
        key_columns text[] NOT NULL,
        key_types text[] NOT NULL,
        state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')),
        last_key text[],
        rows bigint NOT NULL DEFAULT 0,
        chunks int NOT NULL DEFAULT 0,
        estimated_rows bigint,
        started_at timestamptz,
        finished_at timestamptz,
        PRIMARY KEY (backfill_id, table_name)
      );
      CREATE TABLE {{schema}}.signals (
        id bigserial PRIMARY KEY,
        type text NOT NULL,
        data jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE FUNCTION {{schema}}.signal_to_wal() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        PERFORM pg_logical_emit_message(true, 'tag-connector.signal',
          json_build_object('schema', TG_TABLE_SCHEMA, 'id', NEW.id, 'type', NEW.type, 'data', NEW.data)::text);
        RETURN NEW;
      END
      $fn$;
      CREATE TRIGGER signal_to_wal AFTER INSERT ON {{schema}}.signals
        FOR EACH ROW EXECUTE FUNCTION {{schema}}.signal_to_wal();
    `,
  },
  {
    version: 3,
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
  {
    version: 4,
    name: 'checkpoint origins, slot incarnations, sink resets',
    sql: `
      -- Where each checkpoint came from (src/sinks/origin.ts); null: written before this migration.
      ALTER TABLE {{schema}}.checkpoints ADD COLUMN origin jsonb;
      -- Which life of a slot this is: minted when we create the slot, or adopted (recorded on first
      -- sight) for a slot somebody else created; see src/extractor/replication/slot-incarnation.ts.
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
  {
    version: 5,
    name: 'backfill chunks, initial snapshots',
    sql: `
      -- docs/backfill.md. A chunk's rows, kept until the slot is confirmed past its high watermark: the
      -- runner hands them to the stream in memory, this copy is what a replay after a daemon crash
      -- reads. UNLOGGED: nothing of it goes through the WAL (that is the point); a PostgreSQL crash
      -- empties it, and a backfill whose chunk is then missing fails rather than skip rows.
      CREATE UNLOGGED TABLE {{schema}}.backfill_chunks (
        nonce text PRIMARY KEY,
        backfill_id text NOT NULL,
        lsn pg_lsn NOT NULL,
        columns json NOT NULL,
        types json NOT NULL,
        rows json NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      -- Stored out of line uncompressed: compressing a chunk costs more than it saves here.
      ALTER TABLE {{schema}}.backfill_chunks ALTER COLUMN rows SET STORAGE EXTERNAL;
      CREATE INDEX ON {{schema}}.backfill_chunks (backfill_id);
      -- --snapshot-mode initial: written before the slot is created, cleared once its backfill is
      -- queued, so a daemon that dies in between queues it at its next start.
      CREATE TABLE {{schema}}.initial_snapshots (
        slot text PRIMARY KEY,
        token text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 6,
    name: 'table shapes',
    sql: `
      -- docs/governance.md "Schema changes": per tracked table, its columns from the change that first
      -- showed them on (commit_lsn, seq: the position of its schema.changed event, or of the first change
      -- seen). Written before that change is handed to the sinks, so a replay from the confirmed position
      -- knows each table's columns before it and emits the same schema.changed events at the same ids.
      CREATE TABLE {{schema}}.table_shapes (
        slot text NOT NULL,
        incarnation text NOT NULL,
        table_name text NOT NULL,
        commit_lsn pg_lsn NOT NULL,
        seq int NOT NULL,
        columns jsonb NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (slot, incarnation, table_name, commit_lsn, seq)
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
  'backfills',
  'backfill_tables',
  'signals',
  'leader_epochs',
  'backfill_chunks',
  'initial_snapshots',
  'table_shapes',
] as const;
