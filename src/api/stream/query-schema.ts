/**
 * JSON Schema of the filters Stream and Snapshot share (table, type, workspace). The patterns are the
 * ones parseFilter (filters.ts) accepts, so a request the schema allows is never refused as malformed
 * (schemathesis checks both ways); lengths stay short enough that a URL over them is still a 400, not
 * a 414/431 from the HTTP parser.
 */
const TABLE = '[A-Za-z0-9_$]+(\\.[A-Za-z0-9_$]+)?';
const TYPE = '[a-z_]+\\.[a-z_*]+';

export const filterQueryProperties = {
  table: {
    type: 'string',
    maxLength: 256,
    pattern: `^(${TABLE}(,${TABLE})*)?$`,
    description: 'table or schema.table, comma-separated',
  },
  type: {
    type: 'string',
    maxLength: 256,
    pattern: `^(${TYPE}(,${TYPE})*)?$`,
    description: 'event types, comma-separated (task.created, row.*)',
  },
  workspace: { type: 'string', maxLength: 256, description: 'workspace values, comma-separated' },
} as const;

/** An LSN as PostgreSQL prints it (util/lsn.ts isLsnText). */
export const LSN_PATTERN = '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$';
/** A Stream event id, `<commitLsn>/<seq>` (util/lsn.ts parseEventId). */
export const EVENT_ID_PATTERN = '^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}/[0-9]{1,9}$';
