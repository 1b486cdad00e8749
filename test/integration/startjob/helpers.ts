import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../../src/config/index.ts';
import { createLogger } from '../../../src/log.ts';

/** Addresses of the start-job test servers (test/support/{oidc,graphql,mongo}.ts). */
export function env(name: 'OIDC_ISSUER' | 'WORKSPACE_GRAPHQL_URL' | 'MONGO_URL'): string {
  const v = process.env[name];
  if (!v)
    throw new Error(
      `${name} is not set: run through script/test or eval "$(script/services up oidc graphql mongo)"`,
    );
  return v;
}

export const logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent', { pretty: false });

/** A fresh workspace on the GraphQL test server and a fresh Mongo database, per test. */
export function unique(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export class TestWorkspace {
  readonly name: string;
  readonly url: string;
  constructor(name = unique('ws')) {
    this.name = name;
    this.url = `${env('WORKSPACE_GRAPHQL_URL')}/ws/${name}/graphql`;
  }
  async control<T = Record<string, unknown>>(verb: string, args?: Record<string, unknown>): Promise<T> {
    const res = await fetch(`${env('WORKSPACE_GRAPHQL_URL')}/control/${this.name}/${verb}`, {
      method: args ? 'POST' : 'GET',
      headers: { 'content-type': 'application/json' },
      body: args ? JSON.stringify(args) : undefined,
    });
    if (!res.ok) throw new Error(`control ${verb}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }
  reset(count: number) {
    return this.control('reset', { count });
  }
  mutate(m: { create?: number; change?: number; delete?: number }) {
    return this.control<{ created: string[]; changed: string[]; deleted: string[]; count: number }>(
      'mutate',
      m,
    );
  }
  fail(status: number, times: number) {
    return this.control('fail', { status, times });
  }
  requireAuth() {
    return this.control('auth', {
      issuer: env('OIDC_ISSUER'),
      clientId: process.env.OIDC_WS_CLIENT_ID ?? 'tagc-ws',
      clientSecret: process.env.OIDC_WS_CLIENT_SECRET ?? 'tagc-ws-secret-0123456789abcdef',
    });
  }
  stats() {
    return this.control<{
      requests: number;
      unauthorized: number;
      failures: number;
      tokens: number;
      count: number;
    }>('stats');
  }
}

export function mongoUrl(db = unique('db').replace(/-/g, '_')): string {
  const u = new URL(env('MONGO_URL'));
  u.pathname = `/${db}`;
  return u.toString();
}

export const CLIENT_ID = () => process.env.OIDC_CLIENT_ID ?? 'tagc-test';
export const CLIENT_SECRET = () => process.env.OIDC_CLIENT_SECRET ?? 'tagc-test-secret-0123456789abcdef';

/** A validated start-job config over the test servers. */
export function testConfig(ws: TestWorkspace, overrides: Record<string, unknown> = {}): Config {
  return loadConfig({
    env: {},
    flags: {
      ws: ws.url,
      mongoAddr: mongoUrl(),
      serverPort: 0,
      logLevel: 'silent',
      wsPageSize: 200,
      wsRetries: 2,
      wsRetryBaseMs: 20,
      wsTimeoutMs: 2000,
      cronPatternHealingJob: '0 0 0 1 1 *',
      cronPatternDumpJob: '0 0 0 1 1 *',
      ...overrides,
    },
  });
}
