import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from '../log.ts';

/** Request bodies are small JSON documents (backfill requests, job options): anything bigger is a 413. */
export const BODY_LIMIT_BYTES = 64 * 1024;

/** Options both daemons' fastify apps share: request ids, body limit, strict validation. */
export function apiServerOptions(logger: Logger) {
  return {
    // Request logs only at warn and above: a busy Stream/metrics scraper would drown the daemon's own.
    loggerInstance: logger.child({ part: 'api' }, { level: 'warn' }) as FastifyBaseLogger,
    // A 5xx answer names its request id; the id is ours (never taken from a request header).
    genReqId: () => randomUUID(),
    bodyLimit: BODY_LIMIT_BYTES,
    // A long path parameter reaches the route's schema (a 400 naming it), not a bare 414.
    maxParamLength: 512,
  };
}
