/**
 * Notices the walsender sends on the replication connection. Most are informational, but wal2json
 * reports a change it leaves out of the stream only as a WARNING: an UPDATE or DELETE of a table with
 * no replica identity (no primary key, or REPLICA IDENTITY NOTHING), or a change without tuple data.
 * The change is then simply missing from the stream, so a notice is the only trace of it: reading
 * these is what keeps such a change from being skipped silently (docs/delivery-guarantees.md).
 */

export interface ServerNotice {
  severity: string;
  message: string;
}

/** A change the output plugin reported as left out, by table and action. */
export interface SkippedChange {
  /** schema.table, or the bare table name (wal2json format-version 1 prints no schema). */
  table: string;
  action: 'INSERT' | 'UPDATE' | 'DELETE' | 'CHANGE';
  reason: string;
}

// wal2json 2.x, format-version 2: `no tuple data for UPDATE in table "public"."t"`, and
// `no tuple identifier for ...`, `no old tuple data for ...`.
// wal2json prints the names as they are (no quote doubling).
const V2 = /^no (?:old )?tuple (?:data|identifier) for (INSERT|UPDATE|DELETE) in table "(.*?)"\."(.*)"$/s;
// format-version 1: `no tuple data for INSERT in table "t"`.
const V1_DATA = /^no tuple data for (INSERT|UPDATE|DELETE) in table "(.*)"$/s;
// format-version 1: `table "t" without primary key or replica identity is nothing`.
const V1_IDENTITY = /^table "(.*)" without primary key or replica identity is nothing$/s;

/** The change a notice says was left out, or undefined for any other notice. */
export function skippedChange(notice: ServerNotice): SkippedChange | undefined {
  if (notice.severity !== 'WARNING') return undefined;
  const m = notice.message;
  let r = V2.exec(m);
  if (r) return { action: r[1] as SkippedChange['action'], table: `${r[2]}.${r[3]}`, reason: m };
  r = V1_DATA.exec(m);
  if (r) return { action: r[1] as SkippedChange['action'], table: r[2]!, reason: m };
  r = V1_IDENTITY.exec(m);
  if (r) return { action: 'CHANGE', table: r[1]!, reason: m };
  return undefined;
}
