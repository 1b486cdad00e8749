import { execFile } from 'node:child_process';
import { createReadStream, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PG_BIN } from './pg.ts';
import { sql } from './db.ts';

const run = promisify(execFile);

export interface ExpectedChange {
  id: string;
  action: 'I' | 'U' | 'D' | 'T';
  table: string;
}

/**
 * The reference reading: pg_recvlogical on a second wal2json slot, up to `endpos`. Event ids are
 * derived the same way the product does (commit LSN / index of the change in its transaction).
 */
export async function recvLogical(
  url: string,
  slot: string,
  endpos: string,
  tables?: Set<string>,
  timeoutMs = 120_000,
): Promise<ExpectedChange[]> {
  const file = join(tmpdir(), `tagc-recv-${process.pid}-${Date.now()}.ndjson`);
  const u = new URL(url);
  await run(
    join(PG_BIN, 'pg_recvlogical'),
    [
      '-h',
      u.hostname,
      '-p',
      u.port,
      '-U',
      u.username || 'postgres',
      '-d',
      u.pathname.slice(1),
      '--slot',
      slot,
      '--start',
      '--endpos',
      endpos,
      '--no-loop',
      '-f',
      file,
      '-o',
      'format-version=2',
      '-o',
      'include-lsn=1',
      '-o',
      'include-transaction=1',
    ],
    { timeout: timeoutMs, maxBuffer: 64 << 20 },
  );
  const out: ExpectedChange[] = [];
  let commit = '';
  let seq = 0;
  // Line by line: a busy server's reading can pass V8's largest string (512 MB) as one text.
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (!line) continue;
    const m = JSON.parse(line) as {
      action: string;
      lsn?: string;
      schema?: string;
      table?: string;
      transactional?: boolean;
    };
    if (m.action === 'B') {
      commit = m.lsn!;
      seq = 0;
    } else if (m.action === 'C') {
      commit = '';
    } else if (m.action === 'M') {
      if (m.transactional && commit) seq++;
    } else {
      const s = seq++;
      const table = `${m.schema}.${m.table}`;
      if (!tables || tables.has(table))
        out.push({ id: `${commit}/${s}`, action: m.action as ExpectedChange['action'], table });
    }
  }
  rmSync(file, { force: true });
  return out;
}

export async function createReferenceSlot(url: string, slot: string): Promise<void> {
  await sql(url, `SELECT pg_create_logical_replication_slot($1, 'wal2json')`, [slot]);
}

export async function currentWalLsn(url: string): Promise<string> {
  const [r] = await sql<{ lsn: string }>(url, 'SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return r!.lsn;
}

/** Reads an NDJSON events file into ids, counting duplicates. */
export function readEvents(path: string): {
  ids: string[];
  events: Record<string, unknown>[];
  duplicates: string[];
} {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { ids: [], events: [], duplicates: [] };
  }
  // The daemon may be mid-write: a last line without its newline is not an event yet (the file sink
  // itself cuts such a torn tail on restart), so only whole lines count.
  const events = text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const seen = new Set<string>();
  const duplicates: string[] = [];
  for (const e of events) {
    const id = e.id as string;
    if (seen.has(id)) duplicates.push(id);
    seen.add(id);
  }
  return { ids: events.map((e) => e.id as string), events, duplicates };
}

/** Waits until the events file holds at least `n` events (or `timeoutMs` passes: the caller asserts). */
export async function waitForEvents(path: string, n: number, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (readEvents(path).ids.length < n && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 200));
}

/** The reference reading against what was delivered: changes missing, and ids the reference never saw. */
export function diffAgainstReference(
  expected: readonly ExpectedChange[],
  ids: readonly string[],
): { missing: ExpectedChange[]; extra: string[] } {
  const got = new Set(ids);
  const want = new Set(expected.map((e) => e.id));
  return { missing: expected.filter((e) => !got.has(e.id)), extra: ids.filter((id) => !want.has(id)) };
}
