/**
 * The job runner's public API (issue 7). start-job builds its scheduled jobs on top of it:
 *
 * ```ts
 * const runner = new JobRunner({ pg: pgClientConfig(config), stateSchema: config.stateSchema,
 *   pgbossSchema: config.pgbossSchema, log, queues: [{ name: 'healing', worker: HEALING_WORKER_PATH }] });
 * await runner.start();
 * await runner.schedule('healing', config.cronPatternHealingJob, { full: false });
 * await runner.createTask('initial-sync', { ... }, { idempotencyKey: 'initial-sync' });
 * ...
 * await runner.stop();
 * ```
 *
 * and a worker module is `export default async (initial) => { dispatch(...); return result; }`.
 */
export {
  JobRunner,
  TaskFailedError,
  type JobRunnerOptions,
  type QueueDefinition,
  type TaskJobData,
} from './runner.ts';
export {
  dispatch,
  getContext,
  tryGetContext,
  getState,
  queueSubtask,
  waitForSubtasks,
  type TaskContext,
  type SubtaskHandle,
  type SubtaskOptions,
  type SubtaskResult,
  type WaitOptions,
} from './context.ts';
export {
  foldEvents,
  reduceTask,
  emptyState,
  finalEventFrom,
  serializeError,
  toFsa,
  initialType,
  finalType,
  errorType,
  isInitial,
  isFinal,
  queueOfType,
  type FsaEvent,
  type StoredEvent,
  type EtlStatus,
  type TaskState,
  type SerializedError,
} from './events.ts';
export { EventStore, type EtlContextRow, type NewTask, type CreatedTask, type Enqueue } from './store.ts';
export {
  runTask,
  loadWorker,
  EXIT_DONE,
  EXIT_FAILED,
  EXIT_LOCKED,
  EXIT_NOT_FOUND,
  EXIT_CODES,
  type RunOutcome,
  type RunResult,
  type WorkerMain,
} from './run-task.ts';
export { spawnRunTask, childEnv, defaultRunTaskCommand, type DetachedRun } from './detached.ts';
export { jobrunnerMigrations, JOBRUNNER_TABLES } from './migrations.ts';
export { migrateAll } from './migrate-all.ts';
