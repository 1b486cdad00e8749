import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from './authenticator.ts';
import { allows, AuthError, type Credential, type RouteRole } from './credential.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * What the route asks of its caller (src/api/auth/credential.ts). Every route declares it; a
     * route without it is treated as `admin` (fail closed), and the route table test
     * (test/support/api-routes.ts) fails until the route has its rows.
     */
    role?: RouteRole;
  }
  interface FastifyRequest {
    /** The caller's credential, set by the auth hook for every non-public route. */
    scope?: Credential;
  }
}

/** The role a request's route declares; unmatched requests (404/405) are public, undeclared routes admin. */
export function routeRole(req: FastifyRequest): RouteRole {
  if (req.routeOptions.url === undefined) return 'public';
  return req.routeOptions.config?.role ?? 'admin';
}

/**
 * The one onRequest hook of an app: checks the bearer token against the role the matched route
 * declares. 401 carries `WWW-Authenticate: Bearer` (RFC 6750 §3).
 */
export function authHook(auth: Authenticator) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const need = routeRole(req);
    if (need === 'public') return;
    let credential: Credential;
    try {
      credential = await auth.authenticate(req.headers.authorization);
    } catch (err) {
      if (err instanceof AuthError && err.statusCode === 401)
        void reply.header(
          'www-authenticate',
          err.code === 'invalid_token' ? 'Bearer error="invalid_token"' : 'Bearer',
        );
      throw err;
    }
    if (!allows(credential, need))
      throw new AuthError(403, 'forbidden', `this route needs the ${need} role, which this token lacks`);
    req.scope = credential;
  };
}

/** Registers the auth hook on an app (both daemons' apps call this once, before their routes). */
export function useAuth(app: FastifyInstance, auth: Authenticator): void {
  app.addHook('onRequest', authHook(auth));
}
