/** @services pg mongo graphql */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../src/api/app.ts';
import { apiConfigOf } from '../../src/app/slices.ts';
import { listRoutes } from '../../src/api/http-errors.ts';
import { loadConfig } from '../../src/config/index.ts';
import { Extractor } from '../../src/extractor/extractor.ts';
import { MemoryPublisher } from '../../src/startjob/events.ts';
import { buildStartJob, type StartJob } from '../../src/startjob/index.ts';
import {
  CREDENTIAL_KINDS,
  ROUTE_TABLE,
  TOKENS,
  TOKENS_FILE,
  type CredentialKind,
  type RouteRow,
} from '../support/api-routes.ts';
import { runCli, waitStreaming, type Daemon } from '../support/daemon.ts';
import { sql, testDatabase } from '../support/db.ts';
import { freePort } from '../support/ports.ts';
import { logger, testConfig, TestWorkspace } from './startjob/helpers.ts';

/**
 * Every route × every kind of credential → the status test/support/api-routes.ts says. The routes
 * come from the apps themselves (fastify onRoute), so a route added without its rows fails here.
 */

const dir = mkdtempSync(join(tmpdir(), 'tagc-routes-'));
const tokensFile = join(dir, 'tokens.yaml');
writeFileSync(tokensFile, TOKENS_FILE);

const key = (r: { method: string; route?: string; url?: string }) => `${r.method} ${r.route ?? r.url}`;

function rowsOf(daemon: RouteRow['daemon']): Map<string, RouteRow> {
  return new Map(ROUTE_TABLE.filter((r) => r.daemon === daemon).map((r) => [key(r), r]));
}

/** Sends a row's request as one credential kind; answers the status (an endless Stream is cut after its headers). */
async function statusOf(base: string, row: RouteRow, kind: CredentialKind): Promise<number> {
  const headers: Record<string, string> = {};
  if (kind !== 'none') headers.authorization = `Bearer ${TOKENS[kind]}`;
  if (row.request?.body !== undefined) headers['content-type'] = 'application/json';
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  try {
    const res = await fetch(`${base}${row.request?.path ?? row.route}`, {
      method: row.method,
      headers,
      body: row.request?.body === undefined ? undefined : JSON.stringify(row.request.body),
      signal: abort.signal,
    });
    return res.status;
  } catch {
    return 0; // no answer within 10 s
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

function checkTable(daemon: RouteRow['daemon'], registered: readonly { method: string; url: string }[]) {
  const rows = rowsOf(daemon);
  const missing = registered.map(key).filter((k) => !rows.has(k));
  expect({ daemon, routesWithoutRows: missing }).toEqual({ daemon, routesWithoutRows: [] });
  const stale = [...rows.keys()].filter((k) => !registered.some((r) => key(r) === k));
  expect({ daemon, rowsWithoutRoutes: stale }).toEqual({ daemon, rowsWithoutRoutes: [] });
}

async function checkStatuses(base: string, daemon: RouteRow['daemon']) {
  const got: string[] = [];
  const want: string[] = [];
  for (const row of rowsOf(daemon).values()) {
    for (const kind of CREDENTIAL_KINDS) {
      const status = await statusOf(base, row, kind);
      const expected = [row.expect[kind]].flat();
      const line = `${key(row)} as ${kind}`;
      got.push(`${line} → ${expected.includes(status) ? expected.join('|') : status}`);
      want.push(`${line} → ${expected.join('|')}`);
    }
  }
  expect(got).toEqual(want);
}

describe('route × credential table: extract-tasks', () => {
  let db: { url: string; drop: () => Promise<void> };
  let d: Daemon;
  let base: string;
  const flags = () => ({ pgUrl: db.url, slot: 'routes_slot', authTokensFile: tokensFile });

  beforeAll(async () => {
    db = await testDatabase('routes');
    await sql(db.url, `CREATE TABLE items (id int PRIMARY KEY, workspace text NOT NULL)`);
    await sql(db.url, `CREATE TABLE other (id int PRIMARY KEY, workspace text NOT NULL)`);
    await sql(db.url, `INSERT INTO items SELECT g, 'w' || (g % 2 + 1) FROM generate_series(1, 20) g`);
    await sql(db.url, `INSERT INTO other SELECT g, 'w' || (g % 2 + 1) FROM generate_series(1, 20) g`);
    await sql(db.url, `CREATE TABLE plain (id int PRIMARY KEY)`); // no workspace column
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    d = runCli([
      'extract-tasks',
      '--pg-url',
      db.url,
      '--slot',
      flags().slot,
      '--sink',
      'file',
      '--file-path',
      join(dir, 'e.ndjson'),
      '--serverPort',
      String(port),
      '--auth-tokens-file',
      tokensFile,
      '--stream-retention-dir',
      join(dir, 's'),
    ]);
    await waitStreaming(d);
  });
  afterAll(async () => {
    await d?.kill('SIGTERM');
    await db?.drop();
  });

  it('has a row for every registered route, and no row for a route that is gone', async () => {
    const config = loadConfig({ env: {}, flags: flags() });
    const extractor = new Extractor(config, logger);
    const app = await buildApp({ config: apiConfigOf(config), logger, extractor });
    await app.ready();
    try {
      checkTable('extract-tasks', listRoutes(app));
      // Every route says what it needs: none falls back to the admin default unnoticed.
      expect(listRoutes(app).filter((r) => r.role === undefined)).toEqual([]);
    } finally {
      await app.close();
      await extractor.pool.end();
    }
  });

  it('answers every route × credential with the status of the table', async () => {
    await checkStatuses(base, 'extract-tasks');
  }, 120_000);

  it("never shows a scoped credential another workspace's rows or another table's name", async () => {
    const read = async (kind: CredentialKind, query = '') => {
      const res = await fetch(`${base}/v1/api/ws/Snapshot${query}`, {
        headers: { authorization: `Bearer ${TOKENS[kind as 'admin']}` },
      });
      expect(res.status).toBe(200);
      return (await res.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    };
    const w1 = await read('workspace');
    const rows = w1.filter((l) => l.type === 'snapshot.row');
    expect(rows.length).toBe(20);
    for (const r of rows) expect(r.after.workspace).toBe('w1');
    // The header lists the tables it reads: none without the workspace column (public.plain).
    expect([...w1[0].tables].sort()).toEqual(['public.items', 'public.other']);
    const items = await read('table');
    expect(items[0].tables).toEqual(['public.items']);
    expect(
      new Set(items.filter((l) => l.type === 'snapshot.row').map((l) => `${l.schema}.${l.table}`)),
    ).toEqual(new Set(['public.items']));
    expect((await read('table', '?table=items'))[0].tables).toEqual(['public.items']);
    const other = await fetch(`${base}/v1/api/ws/Snapshot?table=other`, {
      headers: { authorization: `Bearer ${TOKENS.table}` },
    });
    expect(other.status).toBe(403);
  });

  it('lists to a scoped credential only the schemas of tables it may read', async () => {
    const tables = async (kind: CredentialKind) => {
      const res = await fetch(`${base}/v1/api/schemas`, {
        headers: { authorization: `Bearer ${TOKENS[kind as 'admin']}` },
      });
      expect(res.status).toBe(200);
      return ((await res.json()) as { tables: { table: string }[] }).tables.map((t) => t.table).sort();
    };
    expect(await tables('admin')).toEqual(['public.items', 'public.other', 'public.plain']);
    expect(await tables('workspace')).toEqual(['public.items', 'public.other']);
    expect(await tables('table')).toEqual(['public.items']);
  });
});

describe('route × credential table: start-job', () => {
  const ws = new TestWorkspace();
  let sj: StartJob;
  beforeAll(async () => {
    await ws.reset(5);
    sj = await buildStartJob(testConfig(ws, { authTokensFile: tokensFile }), {
      publisher: new MemoryPublisher(),
      logger,
    });
    await sj.start();
  });
  afterAll(async () => {
    await sj?.store.drop();
    await sj?.stop();
  });

  it('has a row for every registered route, and no row for a route that is gone', () => {
    checkTable('start-job', listRoutes(sj.app));
    expect(listRoutes(sj.app).filter((r) => r.role === undefined)).toEqual([]);
  });

  it('answers every route × credential with the status of the table', async () => {
    await checkStatuses(sj.address!, 'start-job');
  }, 60_000);

  it('refuses a request body over the limit (64 KiB) with 413 before the route runs', async () => {
    const res = await fetch(`${sj.address}/healing-jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKENS.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ x: 'y'.repeat(100 * 1024) }),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'payload_too_large' });
  });
});
