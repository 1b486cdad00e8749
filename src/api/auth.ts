/**
 * The HTTP API's auth (docs/security.md), shared by extract-tasks and start-job. Routes declare what
 * they need as fastify route config, `config: { role: 'admin' }` (see RouteRole); one onRequest hook
 * checks it. Routes read the caller's credential as `req.scope` and narrow their rows with
 * scopeWorkspaces / scopeTables.
 */
export { Authenticator, authOptions, type AuthOptions } from './auth/authenticator.ts';
export {
  ANONYMOUS,
  AuthError,
  ROLES,
  allows,
  isScoped,
  type Credential,
  type Role,
  type RouteRole,
} from './auth/credential.ts';
export { authHook, routeRole, useAuth } from './auth/hook.ts';
export { isLoopback } from './auth/listen.ts';
export { mayReadTable, scopeFilter, scopeTables, scopeWorkspaces } from './auth/scope.ts';
export { parseTokenFile, StaticTokens, TokenFileError } from './auth/static-tokens.ts';

/** The credential type under its old name: routes read it as `req.scope`. */
export type { Credential as Scope } from './auth/credential.ts';
