import { getContext } from '../../../../src/jobrunner/index.ts';
import type { FsaEvent } from '../../../../src/jobrunner/index.ts';

/** A synchronous worker: returns its :FINAL payload; finds its context through AsyncLocalStorage. */
export default function sync(initial: FsaEvent<{ n: number }>) {
  return { doubled: initial.payload!.n * 2, etlContextId: getContext().etlContextId, pid: process.pid };
}
