import pg from 'pg';
import type { Db } from '../../state/db.ts';
import { parseLsn, type Lsn } from '../../util/lsn.ts';
import type { ServerState } from './checkpoint-identity.ts';
import { recordSlotCreated, slotIncarnation as recordedIncarnation } from './slot-incarnation.ts';

/** What IDENTIFY_SYSTEM tells about the server, and the timelines its history went through. */
export interface ServerIdentity {
  systemId: string;
  timeline: number;
  /** The server's current WAL flush position. */
  walEnd: Lsn;
  database: string;
  /** Earlier timelines of this server's history and where each ended (TIMELINE_HISTORY). */
  history: TimelineSwitch[];
}

export interface TimelineSwitch {
  timeline: number;
  /** Where the server's history left this timeline: WAL from here on belongs to later timelines. */
  end: Lsn;
}

/**
 * Asks the server over a replication connection (the REPLICATION privilege the daemon needs anyway;
 * pg_control_system() is not granted to every role): IDENTIFY_SYSTEM for the system identifier,
 * timeline, flush position and database, and TIMELINE_HISTORY when the timeline is past 1.
 */
export async function identifyServer(config: pg.ClientConfig): Promise<ServerIdentity> {
  const client = new pg.Client({ ...config, replication: 'database' } as pg.ClientConfig);
  await client.connect();
  try {
    const { rows } = await client.query<{
      systemid: string;
      timeline: number;
      xlogpos: string;
      dbname: string;
    }>('IDENTIFY_SYSTEM');
    const r = rows[0]!;
    const timeline = Number(r.timeline);
    let history: TimelineSwitch[] = [];
    if (timeline > 1) {
      const h = await client.query<{ content: string | Buffer }>(`TIMELINE_HISTORY ${timeline}`);
      history = parseTimelineHistory(String(h.rows[0]?.content ?? ''));
    }
    return {
      systemId: String(r.systemid),
      timeline,
      walEnd: parseLsn(r.xlogpos),
      database: r.dbname,
      history,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A timeline history file: `<parent timeline>\t<switch point>\t<reason>` per line. */
export function parseTimelineHistory(content: string): TimelineSwitch[] {
  const out: TimelineSwitch[] = [];
  for (const line of content.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(line);
    if (m) out.push({ timeline: Number(m[1]), end: parseLsn(m[2]!) });
  }
  return out;
}

/**
 * The server state the sinks' checkpoints are judged against (checkpoint-identity.ts): the identity
 * above, with the slot's incarnation (recorded now when this start created the slot).
 */
export async function readServerState(
  db: Db,
  clientConfig: pg.ClientConfig,
  o: { stateSchema: string; slot: string; slotCreated: boolean },
): Promise<ServerState> {
  const id = await identifyServer(clientConfig);
  const slotIncarnation = o.slotCreated
    ? await recordSlotCreated(db, o.stateSchema, o.slot)
    : await recordedIncarnation(db, o.stateSchema, o.slot);
  return {
    origin: {
      systemId: id.systemId,
      timeline: id.timeline,
      database: id.database,
      slot: o.slot,
      slotIncarnation,
    },
    walEnd: id.walEnd,
    slotCreated: o.slotCreated,
    history: id.history,
  };
}
