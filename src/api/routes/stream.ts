import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { scopeTables, scopeWorkspaces } from '../auth.ts';
import type { AppDeps } from '../app.ts';
import { httpError } from '../http-errors.ts';
import { ConcurrencyLimit } from '../limits.ts';
import { EVENT_ID_PATTERN, filterQueryProperties, LSN_PATTERN } from '../stream/query-schema.ts';
import { parseFilter, parseResume } from '../stream/filters.ts';
import { StreamSession } from '../stream/session.ts';
import { sseTransport, wsTransport } from '../stream/transports.ts';

const querySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterQueryProperties,
    fromLsn: {
      type: 'string',
      maxLength: 40,
      pattern: LSN_PATTERN,
      description: 'replay every transaction committed at or after this LSN',
    },
  },
} as const;

type Query = { table?: string; type?: string; workspace?: string; fromLsn?: string };

export async function streamRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor, config } = deps;
  const maxBufferedBytes = config.streamClientBufferBytes;
  /** From the extractor's catalog, which has every table an event came from (undefined: unknown). */
  const hasWorkspaceColumn = (schema: string, table: string): boolean | undefined => {
    const info = extractor.catalog.cached(schema, table);
    if (!info || info.columns.length === 0) return undefined;
    return info.columns.some((c) => c.name === config.workspaceColumn);
  };
  const clients = new ConcurrencyLimit(config.streamMaxClients);
  const full = () =>
    httpError(429, `${clients.max} Stream clients are connected (--stream-max-clients); retry later`, {
      retryAfter: 5,
    });

  function prepare(req: FastifyRequest) {
    const q = req.query as Query;
    const filter = parseFilter(q);
    filter.workspaces = scopeWorkspaces(req.scope, filter.workspaces);
    filter.tables = scopeTables(req.scope, filter.tables);
    const lastEventId = req.headers['last-event-id'];
    const after = parseResume(q.fromLsn, Array.isArray(lastEventId) ? lastEventId[0] : lastEventId);
    const log = extractor.streamLog;
    if (!log)
      throw Object.assign(new Error('the stream retention is off (--stream-retention-bytes 0)'), {
        statusCode: 503,
      });
    if (after && !log.covers(after)) {
      extractor.metrics.streamResumeExpired.inc();
      throw Object.assign(
        new Error(
          'the resume point is older than the stream retention: take a new Snapshot (GET /v1/api/ws/Snapshot) and resume from its LSN',
        ),
        { statusCode: 410, code: 'resume_point_expired' },
      );
    }
    const release = clients.tryAcquire();
    if (!release) throw full();
    return { filter, after, log, release };
  }

  app.route({
    method: 'GET',
    url: '/v1/api/ws/Stream',
    config: { role: 'stream' },
    // An endless response has no HEAD: it would hold the connection without sending the headers.
    exposeHeadRoute: false,
    // Refused before a WebSocket upgrade too, as an HTTP 429 (prepare() takes the slot).
    preHandler: async () => {
      if (clients.active >= clients.max) throw full();
    },
    schema: {
      summary: 'Live CloudEvents as Server-Sent Events (or WebSocket on upgrade)',
      querystring: querySchema,
      headers: {
        type: 'object',
        properties: { 'last-event-id': { type: 'string', maxLength: 60, pattern: EVENT_ID_PATTERN } },
      },
    },
    handler: async (req: FastifyRequest, reply: FastifyReply) => {
      const { filter, after, log, release } = prepare(req);
      reply.hijack();
      const res = reply.raw;
      res.on('close', release);
      extractor.metrics.streamClients.inc();
      const transport = sseTransport(res, () => extractor.metrics.streamClients.dec());
      void new StreamSession(transport, {
        log,
        filter,
        after,
        workspaceColumn: config.workspaceColumn,
        hasWorkspaceColumn,
        maxBufferedBytes,
      }).run();
    },
    wsHandler: (socket: WebSocket, req: FastifyRequest) => {
      let prepared;
      try {
        prepared = prepare(req);
      } catch (err) {
        const e = err as Error & { statusCode?: number };
        const code = e.statusCode === 410 ? 4410 : e.statusCode === 429 ? 4429 : 4400;
        socket.close(code, e.message.slice(0, 120));
        return;
      }
      const { release, ...session } = prepared;
      socket.on('close', release);
      extractor.metrics.streamClients.inc();
      const transport = wsTransport(socket, () => extractor.metrics.streamClients.dec());
      void new StreamSession(transport, {
        ...session,
        workspaceColumn: config.workspaceColumn,
        hasWorkspaceColumn,
        maxBufferedBytes,
      }).run();
    },
  } as never);
}
