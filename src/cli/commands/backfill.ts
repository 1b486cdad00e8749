import type { Argv, CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import {
  backfillOptions,
  commonOptions,
  connectionOptions,
  replicationOptions,
  withOptions,
} from '../options.ts';

const withState = <T>(y: Argv<T>) =>
  withOptions(y, connectionOptions, replicationOptions, backfillOptions, commonOptions).option('json', {
    type: 'boolean',
    describe: 'Print JSON',
  });

const start: CommandModule = {
  command: 'start',
  describe: 'Queue a backfill of tables into the sinks (the running daemon picks it up)',
  builder: (y) =>
    withState(y)
      .option('tables', { type: 'string', demandOption: true, describe: 'schema.table, comma-separated' })
      .option('where', { type: 'string', describe: 'SQL predicate limiting the rows read' })
      .option('chunk-size', { type: 'number', describe: 'Rows per chunk [--backfill-chunk-size]' }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runBackfillStart } = await import('../../ops/backfill.ts');
      return runBackfillStart(config, {
        tables: String(argv.tables)
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
        ...(argv.where ? { where: String(argv.where) } : {}),
        ...(argv['chunk-size'] ? { chunkSize: Number(argv['chunk-size']) } : {}),
        json: Boolean(argv.json),
      });
    });
  },
};

const status: CommandModule = {
  command: 'status [id]',
  describe: 'State, rows, estimated rows and rate of one backfill (progress bars on a TTY) or all of them',
  builder: (y) => withState(y).positional('id', { type: 'string', describe: 'Backfill id' }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runBackfillStatus } = await import('../../ops/backfill.ts');
      return runBackfillStatus(config, {
        ...(argv.id ? { id: String(argv.id) } : {}),
        json: Boolean(argv.json),
        watch: Boolean(process.stdout.isTTY),
      });
    });
  },
};

const cancel: CommandModule = {
  command: 'cancel <id>',
  describe: 'Cancel a queued or running backfill',
  builder: (y) => withState(y).positional('id', { type: 'string', demandOption: true }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runBackfillCancel } = await import('../../ops/backfill.ts');
      return runBackfillCancel(config, { id: String(argv.id), json: Boolean(argv.json) });
    });
  },
};

export const backfillCommand: CommandModule = {
  command: 'backfill <command>',
  describe: 'Backfill tables into the sinks: start, status, cancel',
  builder: (y) => y.command([start, status, cancel]).demandCommand(1),
  handler: () => undefined,
};
