import { dispatch, getState } from '../context.ts';
import type { FsaEvent } from '../events.ts';

const STEPS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The chaos demo's subtask: three steps, each recorded as a `:STEP` event; a retry resumes after the
 * last recorded step (its state is the fold of its events). Fails at random with `failureRate` per
 * attempt.
 */
export default async function demoChild(
  initial: FsaEvent<{ i: number; failureRate: number }>,
): Promise<unknown> {
  const { i, failureRate } = initial.payload!;
  const queue = initial.type.slice(0, initial.type.lastIndexOf(':'));
  const done = (getState().latest[`${queue}:STEP`] as { step: number } | undefined)?.step ?? 0;
  const failAt = Math.random() < failureRate ? done + Math.floor(Math.random() * (STEPS - done)) : -1;
  for (let step = done; step < STEPS; step++) {
    await sleep(20 + Math.random() * 150);
    if (step === failAt) throw new Error(`chaos: subtask ${i} failed at step ${step + 1}`);
    await dispatch({ type: `${queue}:STEP`, payload: { step: step + 1 } });
  }
  return { i, value: i * i, resumedFrom: done };
}
