import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The operator console (docs/console.md): static assets built by `npm run build` (script/build-console.mjs)
 * into dist/console, served at /console by both daemons. The page itself is public, like /healthz: it
 * holds no data; every data call it makes goes to the ordinary, authenticated HTTP API with the token
 * the operator typed. A strict Content-Security-Policy: scripts and styles only from this origin, no
 * inline code, calls only to this origin.
 */
export type ConsoleDaemon = 'extract-tasks' | 'start-job';

export interface ConsoleOptions {
  daemon: ConsoleDaemon;
  /** Where the built assets are (default: dist/console beside the running code). */
  dir?: string;
}

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** dist/console from dist/api/console.js, or from src/api/console.ts when run from the sources. */
export function consoleDir(): string | null {
  const here = fileURLToPath(new URL('.', import.meta.url));
  for (const dir of [join(here, '..', 'console'), join(here, '..', '..', 'dist', 'console')])
    if (existsSync(join(dir, 'extract-tasks.html'))) return dir;
  return null;
}

export const consoleRoutes: FastifyPluginAsync<ConsoleOptions> = async (app: FastifyInstance, opts) => {
  const dir = opts.dir ?? consoleDir();
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', CONSOLE_CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    return payload;
  });
  const page = dir ? readFileSync(join(dir, `${opts.daemon}.html`), 'utf8') : null;
  const sendPage = async (_req: FastifyRequest, reply: FastifyReply) => {
    if (!page)
      return reply.code(503).send({
        error: 'unavailable',
        message: 'the console is not built: run `npm run build` (it bundles src/console into dist/console)',
      });
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(page);
  };
  const publicRoute = { config: { role: 'public' as const }, schema: { hide: true } };
  app.get('/console', publicRoute, sendPage);
  app.get('/console/', publicRoute, sendPage);
  // @fastify/static sends the files (ranges, ETags, content types); the route is ours, so that it can
  // declare its role: the assets are public like the page.
  if (dir) await app.register(fastifyStatic, { root: join(dir, 'assets'), serve: false, maxAge: '1h' });
  app.get(
    '/console/assets/:file',
    {
      ...publicRoute,
      schema: {
        hide: true,
        params: {
          type: 'object',
          required: ['file'],
          properties: { file: { type: 'string', pattern: '^[A-Za-z0-9_-]+\\.(js|css|map)$' } },
        },
      },
    },
    async (req, reply) =>
      dir ? reply.sendFile((req.params as { file: string }).file) : sendPage(req, reply),
  );
};
