import { readFileSync } from 'node:fs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/index.ts';

/** What a caller may see: null = everything. */
export interface Scope {
  subject: string;
  workspaces: string[] | null;
  tables: string[] | null;
}

interface TokenEntry {
  token: string;
  name?: string;
  workspaces?: string[];
  tables?: string[];
}

class AuthError extends Error {
  readonly statusCode: number;
  constructor(status: number, message: string) {
    super(message);
    this.statusCode = status;
  }
}

/**
 * Bearer auth: static tokens from a file (one per line, or YAML entries `{token, name, workspaces,
 * tables}`), or JWTs checked against the OIDC issuer's JWKS (claims `workspaces` / `tables` limit
 * the scope). Without either, every request is allowed (the server then only binds loopback).
 */
export class Authenticator {
  private readonly tokens = new Map<string, TokenEntry>();
  private jwks?: JWTVerifyGetKey;
  private readonly issuer?: string;
  readonly enabled: boolean;

  constructor(config: Config) {
    if (config.authTokensFile) {
      const text = readFileSync(config.authTokensFile, 'utf8');
      const doc = /^\s*-|^\s*\w+\s*:/m.test(text) ? (parseYaml(text) as unknown) : null;
      const entries: TokenEntry[] = Array.isArray(doc)
        ? doc.map((d) => (typeof d === 'string' ? { token: d } : (d as TokenEntry)))
        : text
            .split('\n')
            .map((l) => l.trim())
            .filter((l) => l && !l.startsWith('#'))
            .map((token) => ({ token }));
      for (const e of entries) if (e.token) this.tokens.set(e.token, e);
    }
    this.issuer = config.oidc;
    this.enabled = this.tokens.size > 0 || Boolean(config.oidc);
  }

  private async keys(): Promise<JWTVerifyGetKey> {
    if (this.jwks) return this.jwks;
    const base = this.issuer!.replace(/\/$/, '');
    const res = await fetch(`${base}/.well-known/openid-configuration`);
    if (!res.ok) throw new AuthError(503, `OIDC discovery failed (${res.status})`);
    const doc = (await res.json()) as { jwks_uri: string };
    this.jwks = createRemoteJWKSet(new URL(doc.jwks_uri));
    return this.jwks;
  }

  async authenticate(header: string | undefined): Promise<Scope> {
    if (!this.enabled) return { subject: 'anonymous', workspaces: null, tables: null };
    const m = /^Bearer\s+(\S+)$/i.exec(header ?? '');
    if (!m) throw new AuthError(401, 'missing bearer token (Authorization: Bearer <token>)');
    const token = m[1]!;
    const entry = this.tokens.get(token);
    if (entry) {
      return {
        subject: entry.name ?? 'static-token',
        workspaces: entry.workspaces ?? null,
        tables: entry.tables ?? null,
      };
    }
    if (this.issuer && token.split('.').length === 3) {
      try {
        const { payload } = await jwtVerify(token, await this.keys(), {
          issuer: this.issuer.replace(/\/$/, ''),
        });
        const arr = (v: unknown) =>
          Array.isArray(v) ? v.map(String) : typeof v === 'string' ? v.split(/[ ,]/) : null;
        return {
          subject: String(payload.sub ?? payload.client_id ?? 'jwt'),
          workspaces: arr(payload.workspaces),
          tables: arr(payload.tables),
        };
      } catch (err) {
        if (err instanceof AuthError) throw err;
        throw new AuthError(401, `invalid token: ${(err as Error).message}`);
      }
    }
    throw new AuthError(401, 'invalid token');
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    scope?: Scope;
  }
}

const PUBLIC = new Set(['/healthz', '/readyz']);

export function authHook(auth: Authenticator) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const path = req.url.split('?')[0]!;
    // The console's page and assets hold no data: its data calls carry the token (docs/console.md).
    if (PUBLIC.has(path) || path === '/console' || path.startsWith('/console/')) return;
    req.scope = await auth.authenticate(req.headers.authorization);
  };
}

/** Narrows request filters to the token's scope; asking for more than the scope allows is a 403. */
export function scopeFilter(
  scope: Scope | undefined,
  requested: Set<string> | null,
  what: string,
): Set<string> | null {
  const allowed = scope?.[what === 'workspace' ? 'workspaces' : 'tables'];
  if (!allowed) return requested;
  if (!requested) return new Set(allowed);
  for (const r of requested)
    if (!allowed.includes(r)) throw new AuthError(403, `token may not read ${what} ${r}`);
  return requested;
}
