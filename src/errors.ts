/**
 * User-facing errors with stable codes (fastify's lib/errors.js habit). The CLI prints
 * `tag-connector: [CODE] message` and exits with `exitCode`.
 */
export class ConnectorError extends Error {
  readonly code: string;
  readonly exitCode: number;
  constructor(code: string, message: string, exitCode = 1, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConnectorError';
    this.code = code;
    this.exitCode = exitCode;
  }
}

export const EXIT = {
  config: 2,
  slotLost: 3,
  preflight: 4,
  fatal: 1,
  /** A sink's checkpoint belongs to another cluster, slot incarnation or WAL history. */
  checkpointMismatch: 5,
  /** A sink's file cannot be trusted or repaired (torn line, failed truncate). */
  sinkData: 6,
  /** Another daemon led the slot while this one had lost the leader lock: restart to re-read the sinks. */
  leaderChanged: 7,
} as const;

/** Where a sink checkpoint came from: see docs/delivery-guarantees.md. */
export interface OriginText {
  systemId: string;
  timeline: number;
  database: string;
  slot: string;
  slotIncarnation: string;
}

const originText = (o: OriginText | null) =>
  o
    ? `system ${o.systemId}, timeline ${o.timeline}, database ${o.database}, slot ${o.slot} (incarnation ${o.slotIncarnation})`
    : 'an unknown origin (written before checkpoints recorded one)';

export const errors = {
  walLevel: (level: string) =>
    new ConnectorError(
      'E_WAL_LEVEL',
      `wal_level is '${level}', logical decoding needs 'logical'. Set wal_level = logical in postgresql.conf ` +
        `(see postgres-conf/postgresql.conf) and restart PostgreSQL.`,
      EXIT.preflight,
    ),
  privilege: (role: string) =>
    new ConnectorError(
      'E_PRIVILEGE',
      `role '${role}' may not use replication. Run: ALTER ROLE ${role} WITH REPLICATION; ` +
        `(and allow it in pg_hba.conf: see postgres-conf/pg_hba.conf.example)`,
      EXIT.preflight,
    ),
  noFreeSlot: (max: number) =>
    new ConnectorError(
      'E_NO_FREE_SLOT',
      `all ${max} replication slots are in use. Raise max_replication_slots in postgresql.conf and restart, ` +
        `or drop an unused slot (SELECT pg_drop_replication_slot('name')).`,
      EXIT.preflight,
    ),
  pluginNotAllowed: (plugin: string) =>
    new ConnectorError(
      'E_PLUGIN_NOT_ALLOWED',
      `this server refuses ${plugin} as an output plugin (library "${plugin}" may not be used as an output plugin). ` +
        `Either add it to output_plugin_libraries in postgresql.conf, e.g. ` +
        `output_plugin_libraries = 'pgoutput, test_decoding, ${plugin}', and reload, or run with --plugin pgoutput, ` +
        `which is allowed by default.`,
      EXIT.preflight,
    ),
  pluginMissing: (plugin: string) =>
    new ConnectorError(
      'E_PLUGIN_MISSING',
      `the output plugin ${plugin} is not installed on the server. Install it (Debian: apt-get install ` +
        `postgresql-15-wal2json) or run with --plugin pgoutput.`,
      EXIT.preflight,
    ),
  slotPluginMismatch: (slot: string, has: string, want: string) =>
    new ConnectorError(
      'E_SLOT_PLUGIN',
      `slot ${slot} uses the plugin ${has}, but --plugin is ${want}. Run with --plugin ${has}, or use another --slot.`,
      EXIT.preflight,
    ),
  slotOtherDatabase: (slot: string, db: string) =>
    new ConnectorError(
      'E_SLOT_DATABASE',
      `slot ${slot} belongs to database ${db}; connect to that database or use another --slot.`,
      EXIT.preflight,
    ),
  slotInvalidated: (slot: string, status: string) =>
    new ConnectorError(
      'E_SLOT_INVALIDATED',
      `replication slot ${slot} is invalidated (wal_status=${status}): PostgreSQL removed WAL it still needed, so ` +
        `changes were lost and streaming cannot resume exactly. Recovery: 1) take a consistent snapshot ` +
        `(GET /v1/api/ws/Snapshot) to rebuild downstream state, 2) drop the slot (tag-connector slot drop --slot ${slot}), ` +
        `3) start again (a new slot is created) and resume the stream from the snapshot's LSN. Raise ` +
        `max_slot_wal_keep_size or watch slot lag to avoid a repeat.`,
      EXIT.slotLost,
    ),
  leaderChanged: (slot: string) =>
    new ConnectorError(
      'E_LEADER_CHANGED',
      `another daemon led slot ${slot} while this one had lost the leader lock: what this process knows of ` +
        `its sinks' checkpoints is stale, and streaming on would write again what the other daemon wrote. ` +
        `Stopping; started again (by its service manager) it reads every sink's checkpoint afresh.`,
      EXIT.leaderChanged,
    ),
  slotLost: (slot: string) =>
    new ConnectorError(
      'E_SLOT_LOST',
      `replication slot ${slot} disappeared while streaming (dropped by someone else?). Not recreating it: ` +
        `changes since the last confirmed LSN would be lost silently. Recovery: take a snapshot, then start again ` +
        `to create a new slot.`,
      EXIT.slotLost,
    ),
  checkpointMismatch: (sink: string, why: string, stored: OriginText | null, server: OriginText) =>
    new ConnectorError(
      'E_CHECKPOINT_MISMATCH',
      `sink ${sink}: its checkpoint cannot be trusted on this server: ${why}. The checkpoint was written for ` +
        `${originText(stored)}; this server is ${originText(server)}. Resuming would skip changes of this ` +
        `server as "already delivered". If the database was replaced (restore, rebuilt primary, migration) ` +
        `or the slot recreated on purpose, start once with --reset-sink-checkpoints: the sink forgets its ` +
        `checkpoint (recording the reset in the sink) and receives every change of this slot from its start. ` +
        `Otherwise point the daemon back at the right database or sink. See docs/delivery-guarantees.md.`,
      EXIT.checkpointMismatch,
    ),
  serverChanged: (was: OriginText, now: { systemId: string; timeline: number }) =>
    new ConnectorError(
      'E_SERVER_CHANGED',
      `the server at this address changed while streaming (system ${was.systemId} timeline ${was.timeline} -> ` +
        `system ${now.systemId} timeline ${now.timeline}: a failover or a replaced database). Stopping: start ` +
        `again, and every sink's checkpoint is checked against this server (see docs/delivery-guarantees.md).`,
      EXIT.checkpointMismatch,
    ),
  sinkFileDamaged: (path: string, offset: number, what: string) =>
    new ConnectorError(
      'E_SINK_FILE_DAMAGED',
      `${path}: ${what} at byte ${offset}; refusing to append to a file that does not end on complete events. ` +
        `Look at the file from that byte; if what follows is garbage, cut it (truncate -s ${offset} '${path}') ` +
        `or move the file away, then start again: the sink resumes after its last complete event.`,
      EXIT.sinkData,
    ),
  changeLeftOut: (table: string, action: string, where: string, notice: string) =>
    new ConnectorError(
      'E_CHANGE_LEFT_OUT',
      `the output plugin left ${action === 'CHANGE' ? 'a change' : `an ${action}`} of tracked table ${table} out of the ` +
        `stream ${where}; it said: "${notice}". Stopping rather than skipping it silently: nothing after it is ` +
        `confirmed. wal2json leaves out UPDATE and DELETE of a table without a replica identity. Give the ` +
        `table one (a primary key, or ALTER TABLE ${table} REPLICA IDENTITY FULL; \`tag-connector doctor\` lists ` +
        `such tables); changes already written stay keyless in the WAL, so to pass them either leave the table ` +
        `out (--exclude-tables ${table}) until the slot is past them, or use --plugin pgoutput, with which ` +
        `PostgreSQL refuses such writes instead.`,
      EXIT.fatal,
    ),
  sinkTruncateFailed: (path: string, size: number, cause: Error, truncateError: Error) =>
    new ConnectorError(
      'E_SINK_TORN',
      `${path}: a write failed (${cause.message}) and cutting the file back to its ${size} bytes before that ` +
        `write failed too (${truncateError.message}); stopping rather than retrying on a torn file. Free the ` +
        `disk or fix the device, then start again: the file's torn tail is checked and cut on open.`,
      EXIT.sinkData,
    ),
} as const;

/**
 * A PostgreSQL connection error as the operator should read it: refused credentials (SQLSTATE 28P01
 * or 28000, e.g. a password rotated while the daemon runs) become E_PG_AUTH naming the way out;
 * anything else is returned as it is. The exit code stays 1: a reconnect loop keeps retrying (the
 * server may be mid-restart with its old pg_hba.conf), /readyz answers 503 meanwhile.
 */
export function describePgError(err: Error): Error {
  const code = (err as { code?: string }).code;
  if (code !== '28P01' && code !== '28000') return err;
  return new ConnectorError(
    'E_PG_AUTH',
    `PostgreSQL refused our credentials (${err.message}). Was the password rotated? Update --password, ` +
      `TAG_CONNECTOR_PASSWORD or TAG_CONNECTOR_PASSWORD_FILE (or --pg-url) and restart the daemon.`,
  );
}
