import { dispatch, getContext } from '../../../../src/jobrunner/index.ts';
import type { FsaEvent } from '../../../../src/jobrunner/index.ts';

/** A library call deep inside the worker: no context id is passed to it. */
async function libraryCall(step: string) {
  await new Promise((r) => setTimeout(r, 5));
  await dispatch({ type: `${getContext().queue}:PROGRESS`, payload: { step } });
}

/** Dispatches its :FINAL itself and returns nothing. */
export default async function selfFinal(initial: FsaEvent<{ tag: string }>) {
  await Promise.all([libraryCall('a'), libraryCall('b')]);
  await dispatch({ type: `${getContext().queue}:FINAL`, payload: { tag: initial.payload!.tag } });
}
