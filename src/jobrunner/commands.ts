import pg from 'pg';
import type { Config } from '../config/index.ts';
import { pgClientConfig } from '../config/pg.ts';
import { createLogger } from '../log.ts';
import { childEnv } from './detached.ts';
import { foldEvents, toFsa } from './events.ts';
import { migrateAll } from './migrate-all.ts';
import { EXIT_CODES } from './run-task.ts';
import { JobRunner } from './runner.ts';
import { EventStore } from './store.ts';
import { runDemo, type DemoOptions } from './demo/run-demo.ts';

/** Bodies of the job runner's CLI commands (the yargs modules in src/cli/commands stay thin). */

const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');

function baseOptions(config: Config) {
  return {
    pg: pgClientConfig(config),
    stateSchema: config.stateSchema,
    pgbossSchema: config.pgbossSchema,
    log: createLogger(config.logLevel),
  };
}

export async function runMigrate(config: Config, json = false): Promise<number> {
  const result = await migrateAll({
    pg: pgClientConfig(config),
    stateSchema: config.stateSchema,
    pgbossSchema: config.pgbossSchema,
  });
  if (json) out(JSON.stringify(result));
  else
    out(
      `extractor: ${result.extractor.length ? `applied ${result.extractor.join(', ')}` : 'up to date'}\n` +
        `jobrunner: ${result.jobrunner.length ? `applied ${result.jobrunner.join(', ')}` : 'up to date'}\n` +
        `pg-boss (schema ${config.pgbossSchema}): version ${result.pgboss}`,
    );
  return 0;
}

/**
 * `run-task --etl-context-id N`: runs one task in this process (a detached run, or by hand). Exit code:
 * 0 done (also: was already done), 3 failed (an error event was stored), 4 locked by another run,
 * 5 no such context.
 */
export async function runRunTask(config: Config, etlContextId: number, attempt = 0): Promise<number> {
  const base = baseOptions(config);
  const runner = new JobRunner({ ...base, migrate: false, schedule: false, noWorkers: true });
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => abort.abort(new Error(`received ${sig}`));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    await runner.start();
    const result = await runner.runInProcess(etlContextId, { attempt, signal: abort.signal });
    base.log.info({ etlContextId, outcome: result.outcome, ran: result.ran }, 'run-task finished');
    return EXIT_CODES[result.outcome];
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await runner.stop().catch(() => undefined);
  }
}

async function withStore<T>(config: Config, fn: (r: { store: EventStore }) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ ...pgClientConfig(config), max: 2, application_name: 'tag-connector tasks' });
  try {
    return await fn({ store: new EventStore(pool, config.stateSchema) });
  } finally {
    await pool.end().catch(() => undefined);
  }
}

const iso = (d: Date | string | null) => (d ? new Date(d).toISOString() : '');

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) =>
    columns.map((c) => (r[c] === null || r[c] === undefined ? '' : String(r[c]))),
  );
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), ...cells.map(line)].join('\n');
}

export async function runTasksList(
  config: Config,
  filter: { status?: string; queue?: string; limit?: number; json?: boolean },
): Promise<number> {
  return withStore(config, async (r) => {
    const rows = await r.store.list({ status: filter.status, queue: filter.queue, limit: filter.limit });
    if (filter.json) {
      out(JSON.stringify(rows));
      return 0;
    }
    out(
      table(
        rows.map((c) => ({
          id: c.etl_context_id,
          parent: c.parent_context_id,
          queue: c.queue,
          status: c.etl_status,
          events: c.event_count,
          subtasks: c.subtask_count,
          key: c.idempotency_key,
          modified: iso(c.modified_at),
        })),
        ['id', 'parent', 'queue', 'status', 'events', 'subtasks', 'key', 'modified'],
      ),
    );
    return 0;
  });
}

/** `tasks show N`: the context, its state (the fold of its events), its subtasks. Exit 5 if none. */
export async function runTasksShow(config: Config, id: number, json = false): Promise<number> {
  return withStore(config, async (r) => {
    const context = await r.store.context(id);
    if (!context) {
      process.stderr.write(`tag-connector: no etl_context ${id}\n`);
      return EXIT_CODES.not_found;
    }
    const events = await r.store.events(id);
    const state = foldEvents(events.map(toFsa));
    const subtasks = await r.store.children(id);
    if (json) {
      out(JSON.stringify({ context, state, subtasks }));
      return 0;
    }
    out(
      [
        `etl_context ${context.etl_context_id}  queue ${context.queue}  status ${context.etl_status}`,
        `parent ${context.parent_context_id ?? '-'}  idempotency key ${context.idempotency_key ?? '-'}`,
        `created ${iso(context.created_at)}  modified ${iso(context.modified_at)}`,
        `worker ${context.worker ?? '-'}`,
        `events ${events.length} (initial ${context.initial_event_id}, latest ${context.latest_event_id}), errors ${state.errors}`,
        `initial payload ${JSON.stringify(state.initial?.payload ?? null)}`,
        state.final ? `final payload ${JSON.stringify(state.final.payload ?? null)}` : 'not final',
        state.lastError ? `last error ${JSON.stringify(state.lastError.payload)}` : '',
        `subtasks ${subtasks.length}`,
        subtasks.length
          ? table(
              subtasks.map((c) => ({
                id: c.etl_context_id,
                queue: c.queue,
                status: c.etl_status,
                key: c.idempotency_key,
                modified: iso(c.modified_at),
              })),
              ['id', 'queue', 'status', 'key', 'modified'],
            )
          : '',
      ]
        .filter(Boolean)
        .join('\n'),
    );
    return 0;
  });
}

export async function runTasksEvents(config: Config, id: number, json = false): Promise<number> {
  return withStore(config, async (r) => {
    if (!(await r.store.context(id))) {
      process.stderr.write(`tag-connector: no etl_context ${id}\n`);
      return EXIT_CODES.not_found;
    }
    const events = await r.store.events(id);
    if (json) {
      out(events.map((e) => JSON.stringify(e)).join('\n') || '');
      return 0;
    }
    out(
      table(
        events.map((e) => ({
          event_id: e.event_id,
          type: e.type,
          error: e.error ? 'error' : '',
          created: iso(e.created_at),
          payload: JSON.stringify(e.payload).slice(0, 100),
        })),
        ['event_id', 'type', 'error', 'created', 'payload'],
      ),
    );
    return 0;
  });
}

/** `tasks demo`: exit 0 when every context in the database ended DONE with one :INITIAL and one :FINAL. */
export async function runTasksDemo(config: Config, options: DemoOptions): Promise<number> {
  const base = baseOptions(config);
  const report = await runDemo(
    { ...base, shutdownTimeoutMs: config.shutdownTimeoutMs, detachedEnv: childEnv(config) },
    options,
    base.log,
  );
  out(JSON.stringify(report));
  return report.ok ? 0 : 1;
}
