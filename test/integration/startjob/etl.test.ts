import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, testDatabase } from '../../support/db.ts';
import { MemoryPublisher } from '../../../src/startjob/events.ts';
import { buildStartJob, type StartJob } from '../../../src/startjob/index.ts';
import { logger, testConfig, TestWorkspace } from './helpers.ts';

describe('start-job runs as ETL contexts of the job runner (real PostgreSQL)', () => {
  let db: { url: string; drop: () => Promise<void> };
  let sj: StartJob;
  const ws = new TestWorkspace();
  beforeAll(async () => {
    db = await testDatabase('startjob');
    await ws.reset(40);
    sj = await buildStartJob(testConfig(ws, { pgUrl: db.url, stateSchema: 'sj_state' }), {
      publisher: new MemoryPublisher(),
      logger,
    });
    await sj.start();
  });
  afterAll(async () => {
    await sj.store.drop();
    await sj.stop();
    await db.drop();
  });

  it('a successful run is a context with :INITIAL then :FINAL (DONE); a failed one ends in an error event', async () => {
    await sj.jobs.request('initial-sync', 'api');
    await sj.jobs.idle();
    await ws.fail(500, -1);
    await sj.jobs.request('healing', 'api');
    await sj.jobs.idle();
    await ws.fail(500, 0);
    const [heal, init] = (await sj.jobs.overview()).runs;
    expect(init).toMatchObject({ kind: 'initial-sync', status: 'success', etlContextId: expect.any(Number) });
    expect(heal).toMatchObject({ kind: 'healing', status: 'failed', etlContextId: expect.any(Number) });

    const ctx = await sql(
      db.url,
      `SELECT etl_context_id, queue, etl_status, idempotency_key FROM sj_state.etl_context ORDER BY etl_context_id`,
    );
    expect(ctx).toEqual([
      expect.objectContaining({
        etl_context_id: init!.etlContextId,
        queue: 'startjob.initial-sync',
        etl_status: 'DONE',
        idempotency_key: init!._id,
      }),
      expect.objectContaining({
        etl_context_id: heal!.etlContextId,
        queue: 'startjob.healing',
        etl_status: 'ERROR',
        idempotency_key: heal!._id,
      }),
    ]);
    const events = await sql<{
      etl_context_id: number;
      type: string;
      error: boolean;
      payload: Record<string, unknown>;
    }>(db.url, `SELECT etl_context_id, type, error, payload FROM sj_state.event_store ORDER BY event_id`);
    expect(events.map((e) => [e.type, e.error])).toEqual([
      ['startjob.initial-sync:INITIAL', false],
      ['startjob.initial-sync:FINAL', false],
      ['startjob.healing:INITIAL', false],
      ['startjob.healing:ERROR', true],
    ]);
    expect(events[1]!.payload).toMatchObject({ runId: init!._id, counts: { created: 40 } });
    expect(events[3]!.payload).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(/HTTP 500/),
    });
  });
});
