#!/usr/bin/env -S node --max-semi-space-size=8
// A small young generation keeps RSS near the live set: V8 otherwise grows it to 32+ MB per
// semi-space under the allocation rate of a catch-up, tripling RSS. 8 MB, not 4: with the Kafka
// sink, events wait a transaction (tens of ms) for their acknowledgement, and a 4 MB young generation
// promoted them to the old one (bench, Kafka catch-up: +8-10% events/s; peak RSS of a 5M-row
// transaction ~10 MB higher).
//
// This file imports nothing heavy: it checks the Node version first (see node-version.ts), then
// loads the program, so an old Node gets a message instead of a module-linking error.
import { nodeVersionProblem } from './node-version.ts';

const problem = nodeVersionProblem(process.version, process.execPath);
if (problem) {
  process.stderr.write(problem);
  process.exit(1);
}
await import('./program.ts');
