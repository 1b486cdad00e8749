import { getContext, getState, queueSubtask, waitForSubtasks } from '../../../../src/jobrunner/index.ts';
import type { FsaEvent } from '../../../../src/jobrunner/index.ts';

/** Queues `n` children (default keys), fails once after queueing them, then waits and sums. */
export default async function parent(initial: FsaEvent<{ n: number; childQueue: string }>) {
  const { n, childQueue } = initial.payload!;
  const handles = [];
  for (let i = 0; i < n; i++) handles.push(await queueSubtask(childQueue, { i }));
  if (getState().errors === 0) throw new Error('parent fails once after queueing its children');
  const results = await waitForSubtasks(handles, { pollMs: 100, timeoutMs: 30000 });
  return {
    sum: results.reduce((a, r) => a + (r.payload as { v: number }).v, 0),
    created: handles.filter((h) => h.created).length,
    parent: getContext().etlContextId,
  };
}
