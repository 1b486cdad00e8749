import { getContext } from '../../../../src/jobrunner/index.ts';
import type { FsaEvent } from '../../../../src/jobrunner/index.ts';

export default async function child(initial: FsaEvent<{ i: number }>) {
  return { v: initial.payload!.i * 10, parent: getContext().parentContextId };
}
