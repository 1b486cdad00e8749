import { fileURLToPath } from 'node:url';
import type { Logger } from '../../log.ts';
import { JobRunner, type JobRunnerOptions } from '../runner.ts';

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
export const DEMO_PARENT_WORKER = fileURLToPath(new URL(`./parent${ext}`, import.meta.url));
export const DEMO_CHILD_WORKER = fileURLToPath(new URL(`./child${ext}`, import.meta.url));
export const DEMO_PARENT_QUEUE = 'demo-parent';
export const DEMO_CHILD_QUEUE = 'demo-child';

export interface DemoOptions {
  subtasks: number;
  failureRate: number;
  /** Share of the subtasks run in detached processes [0.3]. */
  detachedRatio: number;
  /** Give up (exit 1) after this many seconds [300]. */
  timeoutSeconds: number;
  /** Subtasks worked at once in this process [4]. */
  concurrency: number;
}

export interface DemoReport {
  ok: boolean;
  parentContextId: number;
  seconds: number;
  contexts: number;
  byStatus: Record<string, number>;
  /** Contexts that do not have exactly one :INITIAL and one :FINAL. */
  bad: { etl_context_id: number; etl_status: string; initials: number; finals: number }[];
}

/**
 * The chaos demo: queue a parent with `subtasks` children that fail at random and are retried, some
 * in detached processes, and work the queues until every context in the database is DONE, including
 * leftovers of an earlier run that was killed (adopted by the orphan sweep).
 */
export async function runDemo(
  base: Omit<JobRunnerOptions, 'queues'>,
  options: DemoOptions,
  log: Logger,
): Promise<DemoReport> {
  const retry = { retryLimit: 25, retryDelay: 1, retryBackoff: true, retryDelayMax: 3 };
  const runner = new JobRunner({
    adoptIntervalMs: 2000,
    adoptGraceSeconds: 5,
    ...base,
    queues: [
      {
        name: DEMO_PARENT_QUEUE,
        worker: DEMO_PARENT_WORKER,
        concurrency: 2,
        expireInSeconds: 600,
        deadLetter: true,
        ...retry,
      },
      {
        name: DEMO_CHILD_QUEUE,
        worker: DEMO_CHILD_WORKER,
        concurrency: options.concurrency,
        expireInSeconds: 60,
        deadLetter: true,
        ...retry,
      },
    ],
  });
  const started = Date.now();
  await runner.start();
  try {
    const { context } = await runner.createTask(DEMO_PARENT_QUEUE, {
      subtasks: options.subtasks,
      failureRate: options.failureRate,
      detachedRatio: options.detachedRatio,
      childQueue: DEMO_CHILD_QUEUE,
    });
    log.info({ parentContextId: context.etl_context_id, ...options }, 'demo parent queued');
    const deadline = started + options.timeoutSeconds * 1000;
    let byStatus = await runner.store.countByStatus();
    let lastLog = 0;
    while (byStatus.OPEN + byStatus.ERROR > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      byStatus = await runner.store.countByStatus();
      if (Date.now() - lastLog > 3000) {
        lastLog = Date.now();
        log.info({ byStatus }, 'demo progress');
      }
    }
    const counts = await runner.store.initialFinalCounts();
    const bad = counts.filter((c) => c.etl_status !== 'DONE' || c.initials !== 1 || c.finals !== 1);
    return {
      ok: bad.length === 0,
      parentContextId: context.etl_context_id,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      contexts: counts.length,
      byStatus,
      bad,
    };
  } finally {
    await runner.stop();
  }
}
