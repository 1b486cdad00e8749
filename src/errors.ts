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

export const EXIT = { config: 2, slotLost: 3, preflight: 4, fatal: 1 } as const;

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
  slotLost: (slot: string) =>
    new ConnectorError(
      'E_SLOT_LOST',
      `replication slot ${slot} disappeared while streaming (dropped by someone else?). Not recreating it: ` +
        `changes since the last confirmed LSN would be lost silently. Recovery: take a snapshot, then start again ` +
        `to create a new slot.`,
      EXIT.slotLost,
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
