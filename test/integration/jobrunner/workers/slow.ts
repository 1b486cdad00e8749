import type { FsaEvent } from '../../../../src/jobrunner/index.ts';

/** Takes `ms` milliseconds. */
export default async function slow(initial: FsaEvent<{ ms: number }>) {
  await new Promise((r) => setTimeout(r, initial.payload!.ms));
  return { slept: initial.payload!.ms, pid: process.pid };
}
