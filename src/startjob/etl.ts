import pg from 'pg';
import { EventStore, finalType, errorType, jobrunnerMigrations } from '../jobrunner/index.ts';
import { migrate } from '../state/index.ts';
import type { RunHooks } from './jobs.ts';
import type { JobRunDoc } from './store.ts';

/**
 * Records every start-job run as an ETL context of the job runner's event store (docs/design.md §5): queue
 * `startjob.<kind>`, first event `:INITIAL` with the run's id, trigger and mode, last `:FINAL` with its
 * counts/result, or an `:ERROR` event (error=true) with the reason when it failed or was canceled.
 * The run id is the context's idempotency key, so a retried begin finds the same context.
 */
export const queueOf = (kind: string) => `startjob.${kind}`;

export class EtlRunHooks implements RunHooks {
  private readonly pool: pg.Pool;
  /** The event store the runs are recorded in (the console reads it through /v1/api/etl-contexts). */
  readonly events: EventStore;
  private readonly schema: string;
  private ready?: Promise<void>;

  constructor(pgConfig: pg.PoolConfig, schema: string) {
    this.pool = new pg.Pool({ ...pgConfig, max: 2, application_name: 'tag-connector start-job' });
    this.pool.on('error', () => undefined);
    this.schema = schema;
    this.events = new EventStore(this.pool, schema);
  }

  /** Applies the job runner's migrations (idempotent, advisory-locked). */
  async open(): Promise<void> {
    this.ready ??= (async () => {
      const client = await this.pool.connect();
      try {
        await migrate(client, this.schema, 'jobrunner', jobrunnerMigrations);
      } finally {
        client.release();
      }
    })();
    return this.ready;
  }

  async begin(run: Readonly<JobRunDoc>): Promise<number> {
    await this.open();
    const { context } = await this.events.createTask({
      queue: queueOf(run.kind),
      payload: { runId: run._id, kind: run.kind, trigger: run.trigger, full: run.full },
      idempotencyKey: run._id,
    });
    return context.etl_context_id;
  }

  async end(run: Readonly<JobRunDoc>): Promise<void> {
    if (typeof run.etlContextId !== 'number') return;
    const queue = queueOf(run.kind);
    if (run.status === 'success')
      await this.events.append(run.etlContextId, {
        type: finalType(queue),
        payload: { runId: run._id, counts: run.counts ?? null, result: run.result ?? null },
      });
    else
      await this.events.append(run.etlContextId, {
        type: errorType(queue),
        payload: { runId: run._id, status: run.status, message: run.error ?? run.status },
        error: true,
      });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
