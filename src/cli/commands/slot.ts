import type { Argv, CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { commonOptions, connectionOptions, replicationOptions, withOptions } from '../options.ts';

const withSlot = <T>(y: Argv<T>) =>
  withOptions(
    y,
    connectionOptions,
    { slot: replicationOptions.slot!, 'state-schema': replicationOptions['state-schema']! },
    commonOptions,
  ).option('json', { type: 'boolean', describe: 'Print JSON' });

const force = {
  type: 'boolean',
  describe: 'Act on a slot tag-connector did not create (not recorded in <state-schema>.slots)',
} as const;

const status: CommandModule = {
  command: 'status',
  describe:
    'Slot position, lag, wal_status, safe_wal_size and the per-sink checkpoints (exit 3 if invalidated)',
  builder: (y) =>
    withSlot(y).option('all', { type: 'boolean', describe: 'Every replication slot on the server' }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runSlotStatus } = await import('../../ops/run.ts');
      return runSlotStatus(config, { all: Boolean(argv.all), json: Boolean(argv.json) });
    });
  },
};

const drop: CommandModule = {
  command: 'drop',
  describe: 'Drop the slot (refuses an active slot, and one tag-connector did not create unless --force)',
  builder: (y) => withSlot(y).option('force', force),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runSlotDrop } = await import('../../ops/run.ts');
      return runSlotDrop(config, { force: Boolean(argv.force), json: Boolean(argv.json) });
    });
  },
};

const advance: CommandModule = {
  command: 'advance',
  describe: 'Move the slot forward to --to LSN, skipping the changes in between (same refusals as drop)',
  builder: (y) =>
    withSlot(y)
      .option('to', {
        type: 'string',
        demandOption: true,
        describe: 'Target LSN (e.g. 0/16B3748), or "current" for the end of WAL',
      })
      .option('force', force),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runSlotAdvance } = await import('../../ops/run.ts');
      return runSlotAdvance(config, {
        to: String(argv.to),
        force: Boolean(argv.force),
        json: Boolean(argv.json),
      });
    });
  },
};

export const slotCommand: CommandModule = {
  command: 'slot <command>',
  describe: 'Operate the replication slot: status, drop, advance',
  builder: (y) => y.command([status, drop, advance]).demandCommand(1),
  handler: () => undefined,
};
