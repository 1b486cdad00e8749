import pg from 'pg';
import { pgClientConfig, type Config } from '../config/index.ts';
import { ConnectorError } from '../errors.ts';
import {
  BackfillRequestError,
  BackfillService,
  progressLine,
  type BackfillState,
} from '../extractor/backfill/index.ts';
import { resolveRoles, TableFilter } from '../extractor/pipeline/index.ts';
import { extractorMigrations } from '../extractor/state/index.ts';
import { migrate } from '../state/migrate.ts';

/**
 * `tag-connector backfill start|status|cancel` (docs/backfill.md): they work on the state schema
 * directly, so they need database access, not the daemon's API; the daemon picks a queued backfill up
 * within its poll interval.
 */

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const FINAL = new Set(['done', 'failed', 'canceled']);

async function withService<T>(config: Config, fn: (s: BackfillService) => Promise<T>): Promise<T> {
  const client = new pg.Client({ ...pgClientConfig(config), application_name: 'tag-connector backfill' });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await migrate(client, config.stateSchema, 'extractor', extractorMigrations);
    const filter = new TableFilter(config, resolveRoles(config));
    return await fn(
      new BackfillService({
        db: client,
        stateSchema: config.stateSchema,
        slot: config.slot,
        isTracked: (t) => filter.isTracked(t),
        allowCtid: config.backfillAllowCtid,
        chunkSize: config.backfillChunkSize,
      }),
    );
  } catch (err) {
    if (err instanceof BackfillRequestError) throw new ConnectorError(err.code, err.message, 2);
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function summary(b: BackfillState): string {
  const head = `${b.id}  ${b.state}  ${b.rows} rows${b.rate !== null ? `  ${Math.round(b.rate)} rows/s` : ''}${
    b.error ? `  error: ${b.error}` : ''
  }`;
  return [head, ...b.tables.map((t) => `  ${progressLine(t)}`)].join('\n');
}

export async function runBackfillStart(
  config: Config,
  o: { tables: string[]; where?: string; chunkSize?: number; json: boolean },
): Promise<number> {
  return withService(config, async (s) => {
    const b = await s.create(
      {
        tables: o.tables,
        ...(o.where ? { where: o.where } : {}),
        ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
      },
      'cli',
    );
    out(o.json ? JSON.stringify(b, null, 2) : `queued ${summary(b!)}`);
    return 0;
  });
}

/** One backfill (watched with progress bars until it ends, on a TTY) or all of this slot's. */
export async function runBackfillStatus(
  config: Config,
  o: { id?: string; json: boolean; watch: boolean },
): Promise<number> {
  return withService(config, async (s) => {
    if (!o.id) {
      const all = await s.list();
      out(o.json ? JSON.stringify(all, null, 2) : all.length ? all.map(summary).join('\n') : 'no backfills');
      return 0;
    }
    let lines = 0;
    for (;;) {
      const b = await s.get(o.id);
      if (!b) throw new ConnectorError('E_BACKFILL_UNKNOWN', `no backfill ${o.id}`);
      if (o.json || !o.watch) {
        out(o.json ? JSON.stringify(b, null, 2) : summary(b));
        return b.state === 'failed' ? 1 : 0;
      }
      const text = summary(b);
      if (lines > 0) process.stdout.write(`\x1b[${lines}A\x1b[J`);
      out(text);
      lines = text.split('\n').length;
      if (FINAL.has(b.state)) return b.state === 'failed' ? 1 : 0;
      await new Promise((r) => setTimeout(r, 500));
    }
  });
}

export async function runBackfillCancel(config: Config, o: { id: string; json: boolean }): Promise<number> {
  return withService(config, async (s) => {
    const b = await s.cancel(o.id);
    out(o.json ? JSON.stringify(b, null, 2) : summary(b));
    return b.state === 'canceled' ? 0 : 1;
  });
}
