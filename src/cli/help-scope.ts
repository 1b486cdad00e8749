import type { Options } from 'yargs';
import {
  backfillOptions,
  commonOptions,
  connectionOptions,
  jobOptions,
  jobRunnerOptions,
  replicationOptions,
  serverOptions,
  sinkOptions,
  startJobOptions,
  tuningOptions,
} from './options.ts';

/*
 * Both daemons accept every original flag, so that existing deployments (which passed one flag set to
 * both) keep starting; but each command's --help lists only the flags it reads. A flag a command
 * ignores is accepted and hidden, never refused. Where a group is allow-listed, a flag added to it
 * later stays hidden from the other command until it is listed here.
 */
type Group = Record<string, Options>;

function hide(group: Group, keep: (name: string) => boolean = () => false): Group {
  return Object.fromEntries(
    Object.entries(group).map(([name, o]) => [name, keep(name) ? o : { ...o, hidden: true }]),
  );
}

/** extract-tasks reads no workspace-client flag (--oidc, --client-id, --ws, --mongo-addr ...). */
export const extractTasksOptionGroups: Group[] = [
  connectionOptions,
  serverOptions,
  hide(jobOptions),
  sinkOptions,
  replicationOptions,
  backfillOptions,
  jobRunnerOptions,
  tuningOptions,
  commonOptions,
];

/** start-job: no replication stream, no Stream/Snapshot, no pipeline tuning. */
const startJobReads = new Set(['slot', 'state-schema', 'shutdown-timeout-ms']);
export const startJobOptionGroups: Group[] = [
  connectionOptions,
  hide(serverOptions, (name) => !/^(stream|snapshot|metrics)-/.test(name)),
  jobOptions,
  sinkOptions,
  hide(replicationOptions, (name) => startJobReads.has(name)),
  hide(backfillOptions),
  hide(jobRunnerOptions),
  hide(tuningOptions, (name) => startJobReads.has(name)),
  commonOptions,
  startJobOptions,
];
