import type { SwaggerOptions } from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import type { RouteRole } from './auth.ts';
import { listRoutes } from './http-errors.ts';

/**
 * The OpenAPI document both daemons serve (@fastify/swagger), completed from what every route has in
 * common, so that a route documents the answers the shared parts give for it (schemathesis checks
 * the document against the API with all its checks, test/integration/api-fuzz.test.ts):
 * - the error answers of the auth hook, validation, limits and the error handler
 *   (400/401/403/404/409/410/413/429/500/503 as `{error, message}`), beside the route's own;
 * - `security`: bearer on every route but the public ones (`config.role: 'public'`), when auth is on.
 */

const errorSchema = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string' },
    message: { type: 'string' },
    requestId: { type: 'string', description: 'on a 5xx: the request id the log names the cause under' },
  },
};

const ERRORS: Record<string, string> = {
  '400': 'Bad request: a parameter, header or body the schema or the route refuses',
  '401': 'No valid bearer token (WWW-Authenticate: Bearer)',
  '403': 'The token lacks the role, workspace or table this needs',
  '404': 'No such resource',
  '409': 'Conflicts with the current state',
  '410': 'Gone: e.g. a resume point older than the Stream retention',
  '413': 'Request body over the limit',
  '429': 'Over a concurrency limit: retry after Retry-After seconds',
  '500': 'Internal error: the body names the request id only',
  '503': 'Unavailable (starting, or a dependency is down): retry later',
};

type Operation = {
  responses?: Record<string, unknown>;
  security?: unknown[];
  requestBody?: unknown;
};

/** fastify `/a/:id` → OpenAPI `/a/{id}`. */
const openapiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

export function completeDocument(
  doc: { paths?: Record<string, Record<string, Operation>> },
  routes: readonly { method: string; url: string; role: RouteRole | undefined }[],
  authEnabled: boolean,
): typeof doc {
  const roleOf = new Map(routes.map((r) => [`${r.method.toLowerCase()} ${openapiPath(r.url)}`, r.role]));
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(item)) {
      if (typeof op !== 'object' || op === null || !('responses' in op || 'summary' in op)) continue;
      const responses = (op.responses ??= {});
      for (const [status, description] of Object.entries(ERRORS)) {
        if (status === '413' && !op.requestBody) continue;
        responses[status] ??= {
          description,
          content: { 'application/json': { schema: errorSchema } },
        };
      }
      const role = roleOf.get(`${method} ${path}`) ?? 'admin';
      if (!authEnabled || role === 'public') op.security = [];
    }
  }
  return doc;
}

/** @fastify/swagger options for an app whose routes methodNotAllowed() lists. */
export function openapiOptions(
  app: FastifyInstance,
  info: { title: string; version: string; description: string },
  authEnabled: boolean,
): SwaggerOptions {
  return {
    openapi: {
      info,
      components: { securitySchemes: { bearer: { type: 'http' as const, scheme: 'bearer' } } },
      ...(authEnabled ? { security: [{ bearer: [] }] } : {}),
    },
    transformObject: (d) =>
      completeDocument(
        ('openapiObject' in d ? d.openapiObject : {}) as Parameters<typeof completeDocument>[0],
        listRoutes(app),
        authEnabled,
      ) as never,
  };
}
