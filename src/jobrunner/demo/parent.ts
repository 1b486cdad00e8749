import { dispatch, getContext, queueSubtask, waitForSubtasks } from '../context.ts';
import type { FsaEvent } from '../events.ts';

export interface DemoParentPayload {
  subtasks: number;
  failureRate: number;
  detachedRatio: number;
  childQueue: string;
}

/**
 * The chaos demo's parent: queues its subtasks (idempotently: a retry finds the same children),
 * waits for them, then may fail at random itself, after which a retry finds them all DONE.
 */
export default async function demoParent(initial: FsaEvent<DemoParentPayload>): Promise<unknown> {
  const { subtasks, failureRate, detachedRatio, childQueue } = initial.payload!;
  const { attempt } = getContext();
  const handles = [];
  for (let i = 0; i < subtasks; i++) {
    handles.push(
      await queueSubtask(
        childQueue,
        { i, failureRate },
        { idempotencyKey: `subtask-${i}`, detached: Math.random() < detachedRatio },
      ),
    );
  }
  await dispatch({
    type: `${getContext().queue}:QUEUED`,
    payload: { subtasks: handles.length, new: handles.filter((h) => h.created).length, attempt },
  });
  const results = await waitForSubtasks(handles);
  if (Math.random() < failureRate / 2)
    throw new Error(`chaos: parent attempt ${attempt} failed after its subtasks`);
  const sum = results.reduce((acc, r) => acc + ((r.payload as { value?: number } | null)?.value ?? 0), 0);
  return { subtasks: results.length, sum };
}
