import { createHash } from 'node:crypto';

/**
 * THE route × credential table (docs/security.md): every route either daemon registers, with the
 * status each kind of caller must get. test/integration/api-routes.test.ts enumerates the registered
 * routes (fastify onRoute) and fails on any route without a row here, then sends every row's request
 * with every credential and checks the status.
 *
 * Adding a route? Declare its role in the route (`config: { role: 'admin' }`, src/api/auth.ts) and add
 * its row below. `request` gives a concrete path (for `:params`) and a body; a status list means
 * "any of these" (for answers that depend on state, e.g. a cancel that finds nothing: 404).
 */

/** The callers every route is tried with. The tokens are in TOKENS_FILE below. */
export const CREDENTIAL_KINDS = [
  'none', // no Authorization header
  'invalid', // a bearer token nobody issued
  'admin', // unscoped, every role
  'stream', // unscoped, role stream only
  'snapshot', // unscoped, role snapshot only
  'workspace', // workspaces [w1], roles stream + snapshot (the default of a scoped token)
  'table', // tables [public.items], roles stream + snapshot
] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

export const TOKENS: Record<Exclude<CredentialKind, 'none'>, string> = {
  invalid: 'nobody-issued-this-token',
  admin: 'route-table-admin-token',
  stream: 'route-table-stream-token',
  snapshot: 'route-table-snapshot-token',
  workspace: 'route-table-w1-token',
  table: 'route-table-items-token',
};

const sha256 = (t: string) => `sha256:${createHash('sha256').update(t).digest('hex')}`;

/** The --auth-tokens-file both daemons get in the route table test (admin's stored as its hash). */
export const TOKENS_FILE = `# route table credentials (test/support/api-routes.ts)
- token: ${sha256(TOKENS.admin)}
  name: admin
- token: ${TOKENS.stream}
  roles: [stream]
- token: ${TOKENS.snapshot}
  roles: [snapshot]
- token: ${TOKENS.workspace}
  workspaces: [w1]
- token: ${TOKENS.table}
  tables: [public.items]
`;

type Expect = Record<CredentialKind, number | number[]>;

export interface RouteRow {
  daemon: 'extract-tasks' | 'start-job';
  method: string;
  /** The route as registered (fastify's url pattern). */
  route: string;
  /** What to send, when the pattern alone is not a request (params, query, body). */
  request?: { path?: string; body?: unknown };
  expect: Expect;
}

const denied = { none: 401, invalid: 401 } as const;

/** Open to everyone, token or not (health checks). */
export const PUBLIC = (ok: number | number[] = 200): Expect => ({
  none: ok,
  invalid: ok,
  admin: ok,
  stream: ok,
  snapshot: ok,
  workspace: ok,
  table: ok,
});
/** Any valid credential. */
export const AUTHENTICATED = (ok: number | number[] = 200): Expect => ({
  ...denied,
  admin: ok,
  stream: ok,
  snapshot: ok,
  workspace: ok,
  table: ok,
});
/** The admin role: never a scoped credential. */
export const ADMIN = (ok: number | number[] = 200): Expect => ({
  ...denied,
  admin: ok,
  stream: 403,
  snapshot: 403,
  workspace: 403,
  table: 403,
});
/** The stream role. */
export const STREAM = (ok: number | number[] = 200): Expect => ({
  ...denied,
  admin: ok,
  stream: ok,
  snapshot: 403,
  workspace: ok,
  table: ok,
});
/** The snapshot role. */
export const SNAPSHOT = (ok: number | number[] = 200): Expect => ({
  ...denied,
  admin: ok,
  stream: 403,
  snapshot: ok,
  workspace: ok,
  table: ok,
});

export const ROUTE_TABLE: RouteRow[] = [
  // extract-tasks (src/api/routes/)
  { daemon: 'extract-tasks', method: 'GET', route: '/healthz', expect: PUBLIC() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/healthz', expect: PUBLIC() },
  { daemon: 'extract-tasks', method: 'GET', route: '/readyz', expect: PUBLIC() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/readyz', expect: PUBLIC() },
  { daemon: 'extract-tasks', method: 'GET', route: '/metrics', expect: ADMIN() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/metrics', expect: ADMIN() },
  { daemon: 'extract-tasks', method: 'GET', route: '/info', expect: ADMIN() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/info', expect: ADMIN() },
  { daemon: 'extract-tasks', method: 'GET', route: '/openapi.json', expect: AUTHENTICATED() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/openapi.json', expect: AUTHENTICATED() },
  { daemon: 'extract-tasks', method: 'GET', route: '/v1/api/ws/Stream', expect: STREAM() },
  { daemon: 'extract-tasks', method: 'GET', route: '/v1/api/ws/Snapshot', expect: SNAPSHOT() },
  // backfills (docs/backfill.md): a table the daemon cannot backfill is a 400, an unknown id a 404
  {
    daemon: 'extract-tasks',
    method: 'POST',
    route: '/v1/api/backfills',
    request: { body: { tables: ['public.items'] } },
    expect: ADMIN([202, 400]),
  },
  { daemon: 'extract-tasks', method: 'GET', route: '/v1/api/backfills', expect: ADMIN() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/v1/api/backfills', expect: ADMIN() },
  {
    daemon: 'extract-tasks',
    method: 'GET',
    route: '/v1/api/backfills/:id',
    request: { path: '/v1/api/backfills/bf_nosuch' },
    expect: ADMIN(404),
  },
  {
    daemon: 'extract-tasks',
    method: 'HEAD',
    route: '/v1/api/backfills/:id',
    request: { path: '/v1/api/backfills/bf_nosuch' },
    expect: ADMIN(404),
  },
  {
    daemon: 'extract-tasks',
    method: 'DELETE',
    route: '/v1/api/backfills/:id',
    request: { path: '/v1/api/backfills/bf_nosuch' },
    expect: ADMIN(404),
  },
  { daemon: 'extract-tasks', method: 'GET', route: '/v1/api/schemas', expect: STREAM() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/v1/api/schemas', expect: STREAM() },
  // extract-tasks: the console (src/api/console.ts; 503 when dist/console is not built) and its data routes
  { daemon: 'extract-tasks', method: 'GET', route: '/console', expect: PUBLIC([200, 503]) },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/console', expect: PUBLIC([200, 503]) },
  { daemon: 'extract-tasks', method: 'GET', route: '/console/', expect: PUBLIC([200, 503]) },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/console/', expect: PUBLIC([200, 503]) },
  {
    daemon: 'extract-tasks',
    method: 'GET',
    route: '/console/assets/:file',
    request: { path: '/console/assets/app.js' },
    expect: PUBLIC([200, 503]),
  },
  {
    daemon: 'extract-tasks',
    method: 'HEAD',
    route: '/console/assets/:file',
    request: { path: '/console/assets/app.js' },
    expect: PUBLIC([200, 503]),
  },
  { daemon: 'extract-tasks', method: 'GET', route: '/v1/api/slot/lag-history', expect: ADMIN() },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/v1/api/slot/lag-history', expect: ADMIN() },
  { daemon: 'extract-tasks', method: 'GET', route: '/v1/api/etl-contexts', expect: ADMIN([200, 404]) },
  { daemon: 'extract-tasks', method: 'HEAD', route: '/v1/api/etl-contexts', expect: ADMIN([200, 404]) },
  {
    daemon: 'extract-tasks',
    method: 'GET',
    route: '/v1/api/etl-contexts/:id',
    request: { path: '/v1/api/etl-contexts/1' },
    expect: ADMIN([200, 404]),
  },
  {
    daemon: 'extract-tasks',
    method: 'HEAD',
    route: '/v1/api/etl-contexts/:id',
    request: { path: '/v1/api/etl-contexts/1' },
    expect: ADMIN([200, 404]),
  },
  {
    daemon: 'extract-tasks',
    method: 'GET',
    route: '/v1/api/etl-contexts/:id/events',
    request: { path: '/v1/api/etl-contexts/1/events' },
    expect: ADMIN([200, 404]),
  },
  {
    daemon: 'extract-tasks',
    method: 'HEAD',
    route: '/v1/api/etl-contexts/:id/events',
    request: { path: '/v1/api/etl-contexts/1/events' },
    expect: ADMIN([200, 404]),
  },

  // start-job (src/startjob/api.ts)
  { daemon: 'start-job', method: 'GET', route: '/healthz', expect: PUBLIC() },
  { daemon: 'start-job', method: 'HEAD', route: '/healthz', expect: PUBLIC() },
  { daemon: 'start-job', method: 'GET', route: '/readyz', expect: PUBLIC() },
  { daemon: 'start-job', method: 'HEAD', route: '/readyz', expect: PUBLIC() },
  { daemon: 'start-job', method: 'GET', route: '/jobs', expect: AUTHENTICATED() },
  { daemon: 'start-job', method: 'HEAD', route: '/jobs', expect: AUTHENTICATED() },
  { daemon: 'start-job', method: 'GET', route: '/openapi.json', expect: AUTHENTICATED() },
  { daemon: 'start-job', method: 'HEAD', route: '/openapi.json', expect: AUTHENTICATED() },
  { daemon: 'start-job', method: 'POST', route: '/initial-sync-jobs', expect: ADMIN([201, 409]) },
  { daemon: 'start-job', method: 'DELETE', route: '/initial-sync-jobs', expect: ADMIN([200, 404]) },
  { daemon: 'start-job', method: 'POST', route: '/healing-jobs', expect: ADMIN([201, 409]) },
  { daemon: 'start-job', method: 'DELETE', route: '/healing-jobs', expect: ADMIN([200, 404]) },
  { daemon: 'start-job', method: 'POST', route: '/dump-publication-graph-jobs', expect: ADMIN([201, 409]) },
  { daemon: 'start-job', method: 'DELETE', route: '/dump-publication-graph-jobs', expect: ADMIN([200, 404]) },
  // start-job: the console (src/api/console.ts; 503 when dist/console is not built) and its data routes
  { daemon: 'start-job', method: 'GET', route: '/console', expect: PUBLIC([200, 503]) },
  { daemon: 'start-job', method: 'HEAD', route: '/console', expect: PUBLIC([200, 503]) },
  { daemon: 'start-job', method: 'GET', route: '/console/', expect: PUBLIC([200, 503]) },
  { daemon: 'start-job', method: 'HEAD', route: '/console/', expect: PUBLIC([200, 503]) },
  {
    daemon: 'start-job',
    method: 'GET',
    route: '/console/assets/:file',
    request: { path: '/console/assets/app.js' },
    expect: PUBLIC([200, 503]),
  },
  {
    daemon: 'start-job',
    method: 'HEAD',
    route: '/console/assets/:file',
    request: { path: '/console/assets/app.js' },
    expect: PUBLIC([200, 503]),
  },
  { daemon: 'start-job', method: 'GET', route: '/v1/api/etl-contexts', expect: ADMIN([200, 404]) },
  { daemon: 'start-job', method: 'HEAD', route: '/v1/api/etl-contexts', expect: ADMIN([200, 404]) },
  {
    daemon: 'start-job',
    method: 'GET',
    route: '/v1/api/etl-contexts/:id',
    request: { path: '/v1/api/etl-contexts/1' },
    expect: ADMIN([200, 404]),
  },
  {
    daemon: 'start-job',
    method: 'HEAD',
    route: '/v1/api/etl-contexts/:id',
    request: { path: '/v1/api/etl-contexts/1' },
    expect: ADMIN([200, 404]),
  },
  {
    daemon: 'start-job',
    method: 'GET',
    route: '/v1/api/etl-contexts/:id/events',
    request: { path: '/v1/api/etl-contexts/1/events' },
    expect: ADMIN([200, 404]),
  },
  {
    daemon: 'start-job',
    method: 'HEAD',
    route: '/v1/api/etl-contexts/:id/events',
    request: { path: '/v1/api/etl-contexts/1/events' },
    expect: ADMIN([200, 404]),
  },
];
