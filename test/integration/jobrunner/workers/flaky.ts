import { dispatch, getContext, getState } from '../../../../src/jobrunner/index.ts';
import type { FsaEvent } from '../../../../src/jobrunner/index.ts';

/** Fails its first `failTimes` attempts, each after one more :STEP; resumes from the recorded steps. */
export default async function flaky(initial: FsaEvent<{ failTimes: number }>) {
  const { queue } = getContext();
  const state = getState();
  const steps = state.progress.length;
  await dispatch({ type: `${queue}:STEP`, payload: { step: steps + 1 } });
  if (state.errors < initial.payload!.failTimes) throw new Error(`flaky attempt ${state.errors + 1}`);
  return { steps: steps + 1, errors: state.errors };
}
