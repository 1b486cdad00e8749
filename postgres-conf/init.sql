-- tag-connector: a least-privilege role for extract-tasks and start-job. Run it ONCE as a superuser,
-- connected to the database tag-connector watches, with psql:
--
--   psql -v ON_ERROR_STOP=1 -d tasks -f postgres-conf/init.sql \
--        -v tag_connector_password="$(cat /run/secrets/tag_connector_password)" \
--        [-v tracked_schemas=public,app] [-v publication=tag_connector]
--
-- Variables: tag_connector_password (required; never write it into this file), tracked_schemas (comma-separated,
-- default public), publication (only for --plugin pgoutput: creates the publication, see below).
-- It is safe to run again: existing objects are kept, grants are repeated. `tag-connector doctor`, run as
-- the new role, checks the result and prints any change still missing.

\set ON_ERROR_STOP on
\if :{?tag_connector_password}
\else
  DO $$ BEGIN RAISE EXCEPTION 'init.sql: set the password: psql -v tag_connector_password=... (e.g. from a secret file)'; END $$;
\endif
\if :{?tracked_schemas}
\else
  \set tracked_schemas public
\endif

-- 1. The role: LOGIN + REPLICATION (slots, the replication connection), nothing else: no SUPERUSER, no
--    CREATEDB, no CREATEROLE, no BYPASSRLS.
SELECT format('CREATE ROLE tag_connector WITH LOGIN REPLICATION PASSWORD %L', :'tag_connector_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tag_connector') \gexec
SELECT format('ALTER ROLE tag_connector WITH LOGIN REPLICATION NOSUPERUSER PASSWORD %L', :'tag_connector_password') \gexec

-- 2. The database: CONNECT, and CREATE for the schemas it owns (the state schema `tag_connector` with its
--    checkpoints/slots/heartbeat/ETL tables, and pg-boss's `pgboss` when start-job runs as this role).
--    Migrations run CREATE SCHEMA IF NOT EXISTS, which checks CREATE on the database even when the schema
--    already exists, so CREATE is needed after the first start too.
SELECT format('GRANT CONNECT, CREATE ON DATABASE %I TO tag_connector', current_database()) \gexec
CREATE SCHEMA IF NOT EXISTS tag_connector AUTHORIZATION tag_connector;

-- 3. The tracked schemas: USAGE and SELECT. Decoding itself needs neither; the Snapshot endpoint
--    (GET /v1/api/ws/Snapshot) and the initial sync read the rows. Tables created later by the
--    application's owner role get SELECT through the default privileges: run the ALTER DEFAULT PRIVILEGES
--    as (or FOR ROLE) that owner.
SELECT format('GRANT USAGE ON SCHEMA %I TO tag_connector', s),
       format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO tag_connector', s),
       format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO tag_connector', s)
  FROM unnest(string_to_array(:'tracked_schemas', ',')) AS x(s0), LATERAL (SELECT trim(s0) AS s) t
 WHERE EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = trim(s0)) \gexec

-- 4. pgoutput only (--plugin pgoutput): the publication. extract-tasks creates it on first start when it
--    runs as a superuser; a least-privilege role cannot (FOR TABLES IN SCHEMA needs a superuser, FOR TABLE
--    ownership of every table), so create it here: run with -v publication=tag_connector.
--    Tables of a schema created later are included automatically (FOR TABLES IN SCHEMA). Role tables in
--    other schemas (pg-boss's pgboss.job, tag_connector.etl_context / event_store) are added once they
--    exist:  ALTER PUBLICATION tag_connector ADD TABLE pgboss.job, tag_connector.etl_context, tag_connector.event_store;
--    wal2json (the default) needs no publication.
\if :{?publication}
SELECT format('CREATE PUBLICATION %I FOR TABLES IN SCHEMA %s WITH (publish_via_partition_root = true)',
              :'publication', string_agg(quote_ident(nspname), ', '))
  FROM pg_namespace
 WHERE nspname = ANY (SELECT trim(x) FROM unnest(string_to_array(:'tracked_schemas', ',')) AS x)
   AND NOT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = :'publication')
HAVING count(*) > 0 \gexec
\endif

-- 5. REPLICA IDENTITY. Under the default identity an UPDATE or DELETE carries only the primary key of the
--    old row: task.status_changed then lacks `from`, and an unchanged TOASTed value is only marked. The
--    task and ETL tables should be FULL (old row logged in full; costs some WAL per update). pg-boss
--    partitions its job table per queue and a new queue's partition starts with the default identity:
--    run this block again after creating queues (or after `tag-connector migrate`), and check with
--    `tag-connector doctor`. Tables without a primary key need FULL (or a key) anyway; under pgoutput their
--    UPDATE/DELETE fail otherwise. Adjust the list to your role tables (--preset / roles in the config).
DO $$
DECLARE
  t regclass;
BEGIN
  FOR t IN
    SELECT c.oid::regclass
      FROM pg_class c
      JOIN pg_class r ON r.oid = CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END
      JOIN pg_namespace rn ON rn.oid = r.relnamespace
     WHERE c.relkind = 'r' AND c.relreplident <> 'f'
       AND rn.nspname || '.' || r.relname IN ('pgboss.job', 'tag_connector.etl_context', 'tag_connector.event_store')
  LOOP
    EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', t);
    RAISE NOTICE 'REPLICA IDENTITY FULL on %', t;
  END LOOP;
END
$$;
