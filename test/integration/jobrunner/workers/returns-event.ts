import type { FsaEvent } from '../../../../src/jobrunner/index.ts';

/** Returns its whole :FINAL event. */
export default async function returnsEvent(initial: FsaEvent) {
  const queue = initial.type.slice(0, initial.type.lastIndexOf(':'));
  return { type: `${queue}:FINAL`, payload: { returned: true }, meta: { by: 'worker' } };
}
