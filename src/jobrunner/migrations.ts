import type { Migration } from '../state/migrate.ts';

/**
 * The job runner's tables in the state schema (docs/design.md §5): one ETL context per task, an append-only
 * event store of Flux Standard Actions. The rules of a context's life are enforced here, in the
 * database, so that every writer (the daemon, a detached `run-task` process, psql) obeys them:
 *
 * - the first event of a context is `<queue>:INITIAL`, and there is only one;
 * - `<queue>:FINAL` (never an error) sets DONE, an error event sets ERROR, any other event OPEN
 *   (a retry resuming an errored context);
 * - a DONE context rejects further events;
 * - `initial_event_id` / `latest_event_id` / `modified_at` follow the events;
 * - events are never updated or deleted.
 *
 * REPLICA IDENTITY FULL: the extractor maps both tables to `etl_context.*` events and needs old rows.
 */
export const jobrunnerMigrations: Migration[] = [
  {
    version: 1,
    name: 'etl_context and event_store',
    sql: `
      CREATE TABLE {{schema}}.etl_context (
        etl_context_id serial PRIMARY KEY,
        parent_context_id int NULL REFERENCES {{schema}}.etl_context (etl_context_id),
        queue text NOT NULL,
        worker text NULL,
        idempotency_key text NULL,
        etl_status text NOT NULL DEFAULT 'OPEN' CHECK (etl_status IN ('OPEN', 'DONE', 'ERROR')),
        initial_event_id int NULL,
        latest_event_id int NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        modified_at timestamptz NOT NULL DEFAULT now()
      );
      -- A retried parent (or a retried scheduled job) finds its child instead of creating another.
      CREATE UNIQUE INDEX etl_context_idempotency
        ON {{schema}}.etl_context (coalesce(parent_context_id, 0), idempotency_key)
        WHERE idempotency_key IS NOT NULL;
      CREATE INDEX etl_context_parent ON {{schema}}.etl_context (parent_context_id);
      CREATE INDEX etl_context_unfinished ON {{schema}}.etl_context (etl_status) WHERE etl_status <> 'DONE';

      CREATE TABLE {{schema}}.event_store (
        event_id serial PRIMARY KEY,
        etl_context_id int NOT NULL REFERENCES {{schema}}.etl_context (etl_context_id),
        type text NOT NULL,
        payload jsonb NULL,
        meta jsonb NULL,
        error boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX event_store_context ON {{schema}}.event_store (etl_context_id, event_id);

      ALTER TABLE {{schema}}.etl_context REPLICA IDENTITY FULL;
      ALTER TABLE {{schema}}.event_store REPLICA IDENTITY FULL;

      CREATE FUNCTION {{schema}}.event_store_before_insert() RETURNS trigger LANGUAGE plpgsql AS $fn$
      DECLARE
        ctx record;
        next_status text;
      BEGIN
        -- NO KEY UPDATE: serializes writers of one context without conflicting with the KEY SHARE
        -- locks that foreign-key checks (this insert's, a child context's) take on the same row.
        SELECT * INTO ctx FROM {{schema}}.etl_context
          WHERE etl_context_id = NEW.etl_context_id FOR NO KEY UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'etl_context % does not exist', NEW.etl_context_id
            USING ERRCODE = 'foreign_key_violation';
        END IF;
        IF ctx.etl_status = 'DONE' THEN
          RAISE EXCEPTION 'etl_context % is DONE: it accepts no further events (got %)', ctx.etl_context_id, NEW.type
            USING ERRCODE = 'check_violation';
        END IF;
        IF ctx.initial_event_id IS NULL THEN
          IF NEW.type IS DISTINCT FROM ctx.queue || ':INITIAL' THEN
            RAISE EXCEPTION 'the first event of etl_context % must be %:INITIAL, got %', ctx.etl_context_id, ctx.queue, NEW.type
              USING ERRCODE = 'check_violation';
          END IF;
          IF NEW.error THEN
            RAISE EXCEPTION 'an :INITIAL event cannot be an error' USING ERRCODE = 'check_violation';
          END IF;
        ELSIF NEW.type LIKE '%:INITIAL' THEN
          RAISE EXCEPTION 'etl_context % already has its :INITIAL event', ctx.etl_context_id
            USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.type LIKE '%:FINAL' THEN
          IF NEW.type <> ctx.queue || ':FINAL' THEN
            RAISE EXCEPTION 'the final event of etl_context % must be %:FINAL, got %', ctx.etl_context_id, ctx.queue, NEW.type
              USING ERRCODE = 'check_violation';
          END IF;
          IF NEW.error THEN
            RAISE EXCEPTION 'a :FINAL event cannot be an error (dispatch an error event instead)'
              USING ERRCODE = 'check_violation';
          END IF;
          next_status := 'DONE';
        ELSIF NEW.error THEN
          next_status := 'ERROR';
        ELSE
          next_status := 'OPEN';
        END IF;
        UPDATE {{schema}}.etl_context SET
            etl_status = next_status,
            initial_event_id = coalesce(initial_event_id, NEW.event_id),
            latest_event_id = NEW.event_id,
            modified_at = now()
          WHERE etl_context_id = ctx.etl_context_id;
        RETURN NEW;
      END
      $fn$;
      CREATE TRIGGER event_store_rules BEFORE INSERT ON {{schema}}.event_store
        FOR EACH ROW EXECUTE FUNCTION {{schema}}.event_store_before_insert();

      CREATE FUNCTION {{schema}}.event_store_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        RAISE EXCEPTION 'event_store is append-only (% refused)', TG_OP USING ERRCODE = 'check_violation';
      END
      $fn$;
      CREATE TRIGGER event_store_append_only BEFORE UPDATE OR DELETE ON {{schema}}.event_store
        FOR EACH ROW EXECUTE FUNCTION {{schema}}.event_store_append_only();
    `,
  },
];

/** Tables of the job runner, for the extractor's role mapping (preset 'etl'). */
export const JOBRUNNER_TABLES = ['etl_context', 'event_store'] as const;
