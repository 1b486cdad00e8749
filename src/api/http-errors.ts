import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.ts';
import type { RouteRole } from './auth.ts';

/**
 * Error answers both daemons' APIs share: every error is `{error, message}` (4xx) or
 * `{error, message, requestId}` (5xx, whose message names the request id only: the cause goes to the
 * log, never to the client). A request for a known path with a method it lacks is a 405 with Allow.
 */

const NAMES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  409: 'conflict',
  410: 'gone',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  503: 'unavailable',
};

/** An error a route throws to answer with a status: `{statusCode, code?, retryAfter?}`. */
export function httpError(
  statusCode: number,
  message: string,
  extra: { code?: string; retryAfter?: number } = {},
): Error & { statusCode: number; code?: string; retryAfter?: number } {
  return Object.assign(new Error(message), { statusCode, ...extra });
}

type RouteError = FastifyError & { retryAfter?: number };

export function errorHandler(logger: Logger) {
  return (err: RouteError, req: FastifyRequest, reply: FastifyReply): void => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode <= 599 ? err.statusCode : 500;
    if (err.retryAfter !== undefined) void reply.header('retry-after', String(err.retryAfter));
    if (status >= 500) {
      logger.error(
        { reqId: req.id, method: req.method, url: req.url.split('?')[0], status, err: err.message },
        'request failed',
      );
      void reply.status(status).send({
        error: NAMES[status] ?? 'internal_error',
        message: `${status === 503 ? 'service unavailable' : 'internal error'}; see the log for request ${req.id}`,
        requestId: req.id,
      });
      return;
    }
    // Our own codes (resume_point_expired, ...) name the error; fastify's FST_* codes do not.
    const own = err.code && !err.code.startsWith('FST_') ? err.code : undefined;
    const error = status === 401 ? 'unauthorized' : (own ?? NAMES[status] ?? 'bad_request');
    void reply.status(status).send({ error, message: err.message });
  };
}

const METHODS: HTTPMethod[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

/** A registered route as the auth sees it. */
export interface RouteEntry {
  method: string;
  url: string;
  /** The declared role; undefined = none declared (the hook then requires admin). */
  role: RouteRole | undefined;
}

const ROUTES = new WeakMap<FastifyInstance, RouteEntry[]>();

/** Every route registered on an app set up by methodNotAllowed, with its declared role. */
export function listRoutes(app: FastifyInstance): readonly RouteEntry[] {
  return ROUTES.get(app) ?? [];
}

/**
 * Keeps a route map beside fastify's (fed by onRoute) to tell 404 (no such path) from 405 (no such
 * method on it): fastify answers both with 404. Call before registering routes.
 */
export function methodNotAllowed(app: FastifyInstance): void {
  const router = FindMyWay();
  const routes: RouteEntry[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (route) => {
    for (const m of [route.method].flat() as HTTPMethod[]) {
      routes.push({ method: m, url: route.url, role: route.config?.role });
      if (router.hasRoute(m, route.url)) continue;
      router.on(m, route.url, () => undefined);
    }
  });
  const answer = (req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0]!;
    const allowed = METHODS.filter((m) => router.find(m, path) !== null);
    if (allowed.length > 0)
      return reply
        .status(405)
        .header('allow', allowed.join(', '))
        .send({ error: 'method_not_allowed', message: `${req.method} is not allowed on ${path}` });
    return reply.status(404).send({ error: 'not_found', message: `no route ${req.method} ${path}` });
  };
  // Answered on arrival, before any body is parsed: a body method fastify knows (QUERY, PROPFIND ...)
  // on a path without it is a 405, not a complaint about its Content-Type.
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url === undefined) return answer(req, reply);
  });
  app.setNotFoundHandler(answer);
}
