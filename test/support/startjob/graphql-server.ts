/**
 * A real GraphQL server (graphql-yoga) with a synthetic workspace schema, for the start-job tests.
 * Every test uses its own workspace: `/ws/<name>/graphql`. Tests drive it over HTTP:
 *   POST /control/<name>/reset   {count}                 items item-000001..count
 *   POST /control/<name>/mutate  {create, change, delete} (numbers) → the ids touched
 *   POST /control/<name>/fail    {status, times}          next `times` requests answer `status` (-1: until cleared);
 *                                 status 0 = hang (timeouts), status -1 = drop the connection
 *   POST /control/<name>/auth    {issuer, clientId, clientSecret} bearer tokens required, checked by
 *                                 introspection at the OpenID provider; {} = no auth
 *   POST /control/<name>/delay   {ms}                    answer every request that much later
 *   POST /control/<name>/revoke                           tokens seen so far get 401 from now on
 *   GET  /control/<name>/stats                            requests, distinct tokens, 401s, failures
 * Usage: node graphql-server.ts PORT
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { GraphQLScalarType } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';

export interface Item {
  id: string;
  type: string;
  name: string;
  status: string;
  data: Record<string, unknown>;
  updatedAt: string;
}

interface Workspace {
  items: Map<string, Item>;
  sorted: string[] | null;
  nextId: number;
  version: number;
  fail: { status: number; times: number } | null;
  delayMs: number;
  auth: { issuer: string; clientId: string; clientSecret: string } | null;
  revoked: Set<string>;
  seenTokens: Set<string>;
  stats: { requests: number; unauthorized: number; failures: number };
}

const workspaces = new Map<string, Workspace>();

function ws(name: string): Workspace {
  let w = workspaces.get(name);
  if (!w) {
    w = {
      items: new Map(),
      sorted: null,
      nextId: 1,
      version: 0,
      fail: null,
      delayMs: 0,
      auth: null,
      revoked: new Set(),
      seenTokens: new Set(),
      stats: { requests: 0, unauthorized: 0, failures: 0 },
    };
    workspaces.set(name, w);
  }
  return w;
}

function makeItem(n: number, version: number): Item {
  const id = `item-${String(n).padStart(6, '0')}`;
  return {
    id,
    type: ['task', 'project', 'note'][n % 3]!,
    name: `Item ${n}`,
    status: 'open',
    data: { n, tags: [`t${n % 7}`], nested: { version } },
    updatedAt: new Date(Date.UTC(2024, 0, 1) + version * 1000).toISOString(),
  };
}

function sortedIds(w: Workspace): string[] {
  w.sorted ??= [...w.items.keys()].sort();
  return w.sorted;
}

/** Index of the first id > after (binary search). */
function firstAfter(ids: string[], after: string | null): number {
  if (!after) return 0;
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (ids[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  serialize: (v) => v,
  parseValue: (v) => v,
});

interface Ctx {
  workspace: Workspace;
}

const yoga = createYoga<Ctx>({
  graphqlEndpoint: '/graphql',
  logging: false,
  maskedErrors: false,
  schema: createSchema<Ctx>({
    typeDefs: /* GraphQL */ `
      scalar JSON
      type Item {
        id: ID!
        type: String!
        name: String!
        status: String!
        data: JSON
        updatedAt: String!
      }
      type PageInfo {
        hasNextPage: Boolean!
        endCursor: String
      }
      type ItemConnection {
        nodes: [Item!]!
        pageInfo: PageInfo!
        totalCount: Int!
      }
      type Query {
        items(first: Int!, after: String): ItemConnection!
        itemList(limit: Int!, offset: Int!): [Item!]!
      }
    `,
    resolvers: {
      JSON: JSONScalar,
      Query: {
        items: (_: unknown, args: { first: number; after?: string | null }, ctx: Ctx) => {
          const w = ctx.workspace;
          const ids = sortedIds(w);
          const after = args.after ? Buffer.from(args.after, 'base64url').toString() : null;
          const start = firstAfter(ids, after);
          const slice = ids.slice(start, start + Math.min(args.first, 5000));
          return {
            nodes: slice.map((id) => w.items.get(id)!),
            pageInfo: {
              hasNextPage: start + slice.length < ids.length,
              endCursor: slice.length ? Buffer.from(slice[slice.length - 1]!).toString('base64url') : null,
            },
            totalCount: ids.length,
          };
        },
        itemList: (_: unknown, args: { limit: number; offset: number }, ctx: Ctx) => {
          const w = ctx.workspace;
          return sortedIds(w)
            .slice(args.offset, args.offset + Math.min(args.limit, 5000))
            .map((id) => w.items.get(id)!);
        },
      },
    },
  }),
});

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? (JSON.parse(text) as Record<string, unknown>) : {};
}

function send(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

const introspected = new Map<string, { active: boolean; exp: number }>();

async function tokenActive(w: Workspace, token: string): Promise<boolean> {
  const auth = w.auth!;
  const cached = introspected.get(token);
  if (cached) return cached.active && cached.exp * 1000 > Date.now();
  const res = await fetch(`${auth.issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${auth.clientId}:${auth.clientSecret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ token }).toString(),
  });
  const info = (await res.json()) as { active?: boolean; exp?: number };
  const entry = { active: Boolean(info.active), exp: info.exp ?? 0 };
  introspected.set(token, entry);
  return entry.active && entry.exp * 1000 > Date.now();
}

function control(name: string, verb: string, args: Record<string, unknown>): unknown {
  const w = ws(name);
  switch (verb) {
    case 'reset': {
      w.items.clear();
      w.sorted = null;
      w.version++;
      const count = Number(args.count ?? 0);
      for (let n = 1; n <= count; n++) w.items.set(makeItem(n, 0).id, makeItem(n, 0));
      w.nextId = count + 1;
      return { count: w.items.size };
    }
    case 'mutate': {
      w.version++;
      const ids = sortedIds(w);
      const pick = (k: number, from: string[]) => {
        // Spread over the id range so changes land on many pages.
        const out: string[] = [];
        if (k <= 0 || from.length === 0) return out;
        const step = Math.max(1, Math.floor(from.length / k));
        for (let i = 0; i < from.length && out.length < k; i += step) out.push(from[i]!);
        return out;
      };
      const deleted = pick(Number(args.delete ?? 0), ids);
      const remaining = ids.filter((id) => !deleted.includes(id));
      const changed = pick(Number(args.change ?? 0), remaining.slice(1));
      for (const id of deleted) w.items.delete(id);
      for (const id of changed) {
        const item = w.items.get(id)!;
        w.items.set(id, {
          ...item,
          status: `changed-${w.version}`,
          data: { ...item.data, nested: { version: w.version } },
        });
      }
      const created: string[] = [];
      for (let i = 0; i < Number(args.create ?? 0); i++) {
        const item = makeItem(w.nextId++, w.version);
        w.items.set(item.id, item);
        created.push(item.id);
      }
      w.sorted = null;
      return { created, changed, deleted, count: w.items.size };
    }
    case 'fail':
      w.fail =
        args.times === 0 || args.status === undefined
          ? null
          : { status: Number(args.status), times: Number(args.times ?? -1) };
      return { fail: w.fail };
    case 'delay':
      w.delayMs = Number(args.ms ?? 0);
      return { delayMs: w.delayMs };
    case 'auth':
      w.auth = args.issuer ? (args as unknown as Workspace['auth']) : null;
      return { auth: Boolean(w.auth) };
    case 'revoke':
      for (const t of w.seenTokens) w.revoked.add(t);
      return { revoked: w.revoked.size };
    case 'stats':
      return { ...w.stats, tokens: w.seenTokens.size, count: w.items.size };
    default:
      throw new Error(`unknown control verb ${verb}`);
  }
}

export function createWorkspaceServer() {
  return createServer(async (req, res) => {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const c = /^\/control\/([\w-]+)\/(\w+)$/.exec(url.pathname);
      if (c) return send(res, 200, control(c[1]!, c[2]!, req.method === 'POST' ? await body(req) : {}));
      if (url.pathname === '/healthz') return send(res, 200, { ok: true });
      const m = /^\/ws\/([\w-]+)\/graphql$/.exec(url.pathname);
      if (!m) return send(res, 404, { error: 'not found' });
      const w = ws(m[1]!);
      w.stats.requests++;
      if (w.fail && w.fail.times !== 0) {
        if (w.fail.times > 0) w.fail.times--;
        w.stats.failures++;
        if (w.fail.status === 0) return; // hang: the client times out
        if (w.fail.status === -1) return req.socket.destroy();
        return send(res, w.fail.status, { error: `injected ${w.fail.status}` });
      }
      if (w.auth) {
        const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        if (token) w.seenTokens.add(token);
        if (!token || w.revoked.has(token) || !(await tokenActive(w, token))) {
          w.stats.unauthorized++;
          res.writeHead(401, {
            'content-type': 'application/json',
            'www-authenticate': 'Bearer error="invalid_token"',
          });
          return res.end(JSON.stringify({ errors: [{ message: 'invalid or expired token' }] }));
        }
      }
      if (w.delayMs) await new Promise((r) => setTimeout(r, w.delayMs));
      req.url = '/graphql' + url.search;
      return yoga.handle(req, res, { workspace: w });
    } catch (err) {
      send(res, 500, { error: (err as Error).message });
    }
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.argv[2]);
  createWorkspaceServer().listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
}
