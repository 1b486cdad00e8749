export { BackfillRunner, type BackfillRunnerOptions, type BackfillMetrics } from './runner.ts';
export { BackfillService, BackfillRequestError, MAX_CHUNK_SIZE, type BackfillRequest } from './service.ts';
export { BackfillStream, type ChunkReads } from './stream.ts';
export {
  BACKFILL_STATES,
  progressLine,
  remainingEstimate,
  type BackfillState,
  type BackfillTableState,
} from './state.ts';
export { SIGNAL_PREFIX, WATERMARK_PREFIX } from './messages.ts';
export { initialBackfillQueued, owedInitialBackfill, oweInitialBackfill } from './initial.ts';
