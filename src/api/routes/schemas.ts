import type { FastifyInstance, FastifyRequest } from 'fastify';
import { eventSchema, type SchemaColumn } from '../../extractor/governance/index.ts';
import { tableColumnsQuery } from '../../extractor/decode/index.ts';
import { mayReadTable } from '../auth.ts';
import type { AppDeps } from '../app.ts';

/**
 * GET /v1/api/schemas: per tracked table, the JSON Schema of its events as the rules shape them
 * (docs/governance.md): excluded columns absent, masked ones strings. Read from the current catalog.
 * The stream role: whoever reads the events may read their shape; a table-scoped token sees its tables,
 * a workspace-scoped one the tables with a workspace column.
 */
export async function schemaRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { extractor, config } = deps;
  app.get(
    '/v1/api/schemas',
    {
      config: { role: 'stream' },
      schema: { summary: 'JSON Schema of the governed events of each tracked table' },
    },
    async (req: FastifyRequest) => {
      const q = tableColumnsQuery();
      const { rows } = await extractor.pool.query<{ name: string; columns: SchemaColumn[] }>(
        q.text,
        q.values,
      );
      const governance = extractor.governance;
      const tables = rows
        .filter((r) => extractor.filter.isTracked(r.name) && mayReadTable(req.scope, r.name))
        // A workspace-scoped credential sees only tables whose rows carry a workspace (as the
        // Snapshot does): the names of the others are no workspace's to show.
        .filter((r) => !req.scope?.workspaces || r.columns.some((c) => c.name === config.workspaceColumn))
        .map((r) => ({
          table: r.name,
          governed: !!governance.for(r.name),
          schema: eventSchema(r.name, r.columns, governance.for(r.name)),
        }));
      return { tables };
    },
  );
}
