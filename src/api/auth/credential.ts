/**
 * What a caller may do and see. A credential carries roles (which routes), and optionally workspaces
 * and tables (which rows): null means unscoped. Pure data, built by a token source (static-tokens.ts,
 * jwt.ts) and read by the route hook (hook.ts) and the row filters (scope.ts).
 */

export const ROLES = ['stream', 'snapshot', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/**
 * What a route asks of the caller, declared per route as fastify `config: { role }`:
 * `public` (no token at all, e.g. /healthz), `authenticated` (any valid credential), or a role.
 */
export type RouteRole = 'public' | 'authenticated' | Role;

export interface Credential {
  /** Who it is, for logs: a token's `name`, a JWT's `sub`/client. Never the token itself. */
  subject: string;
  kind: 'anonymous' | 'static' | 'jwt';
  roles: ReadonlySet<Role>;
  /** Workspace values (of --workspace-column) the caller may read; null = every workspace. */
  workspaces: readonly string[] | null;
  /** `schema.table` names the caller may read; null = every tracked table. */
  tables: readonly string[] | null;
}

/** What every request gets while no auth is configured (loopback only, or --insecure-listen). */
export const ANONYMOUS: Credential = Object.freeze({
  subject: 'anonymous',
  kind: 'anonymous',
  roles: new Set(ROLES),
  workspaces: null,
  tables: null,
});

/** Whether the credential is limited to some rows: such a credential is never admin. */
export function isScoped(c: Pick<Credential, 'workspaces' | 'tables'>): boolean {
  return c.workspaces !== null || c.tables !== null;
}

/**
 * Roles a credential gets when its source names none: everything for an unscoped one (a plain token
 * line, a JWT without role claims), stream + snapshot for a scoped one. A scoped credential never
 * holds admin: admin routes (/info, backfills, jobs) show every workspace and table.
 */
export function defaultRoles(scoped: boolean): ReadonlySet<Role> {
  return new Set<Role>(scoped ? ['stream', 'snapshot'] : ROLES);
}

export function allows(c: Credential, need: RouteRole): boolean {
  if (need === 'public' || need === 'authenticated') return true;
  return c.roles.has(need);
}

/** An auth failure answered as 401 (no valid credential) or 403 (valid, but not allowed this). */
export class AuthError extends Error {
  readonly statusCode: 401 | 403 | 503;
  readonly code: string;
  constructor(statusCode: 401 | 403 | 503, code: string, message: string) {
    super(message);
    this.name = 'AuthError';
    this.statusCode = statusCode;
    this.code = code;
  }
}
