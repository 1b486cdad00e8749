import type { Argv, CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { taskStoreOptions, withOptions } from '../options.ts';

const withConnection = <T>(y: Argv<T>) =>
  withOptions(y, ...taskStoreOptions).option('json', { type: 'boolean', describe: 'Print JSON' });

const idArg = (y: Argv) =>
  withConnection(y).positional('id', { type: 'number', demandOption: true, describe: 'etl_context_id' });

function contextId(argv: Record<string, unknown>): number {
  const id = Number(argv.id);
  if (!Number.isInteger(id) || id <= 0) {
    process.stderr.write(`tag-connector: expected a positive etl_context_id, got ${String(argv.id)}\n`);
    process.exit(2);
  }
  return id;
}

function fraction(argv: Record<string, unknown>, key: string, name: string): number {
  const v = Number(argv[key]);
  if (!Number.isFinite(v) || v < 0 || v > 1) {
    process.stderr.write(
      `tag-connector: --${name}: expected a number from 0 to 1, got ${String(argv[key])}\n`,
    );
    process.exit(2);
  }
  return v;
}

function positive(argv: Record<string, unknown>, key: string, name: string): number {
  const v = Number(argv[key]);
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`tag-connector: --${name}: expected a whole number, got ${String(argv[key])}\n`);
    process.exit(2);
  }
  return v;
}

const list: CommandModule = {
  command: 'list',
  describe: 'ETL contexts, newest first',
  builder: (y) =>
    withConnection(y)
      .option('status', { type: 'string', describe: 'OPEN|DONE|ERROR' })
      .option('queue', { type: 'string', describe: 'Only this queue' })
      .option('limit', { type: 'number', default: 100 }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runTasksList } = await import('../../jobrunner/commands.ts');
      return runTasksList(config, {
        status: argv.status as string | undefined,
        queue: argv.queue as string | undefined,
        limit: Number(argv.limit),
        json: Boolean(argv.json),
      });
    });
  },
};

const show: CommandModule = {
  command: 'show <id>',
  describe: 'A context: its state (the fold of its events) and its subtasks',
  builder: idArg,
  handler: async (argv) => {
    const config = configFromArgv(argv);
    const id = contextId(argv);
    await runMain(async () => {
      const { runTasksShow } = await import('../../jobrunner/commands.ts');
      return runTasksShow(config, id, Boolean(argv.json));
    });
  },
};

const events: CommandModule = {
  command: 'events <id>',
  describe: 'The events of a context, in order',
  builder: idArg,
  handler: async (argv) => {
    const config = configFromArgv(argv);
    const id = contextId(argv);
    await runMain(async () => {
      const { runTasksEvents } = await import('../../jobrunner/commands.ts');
      return runTasksEvents(config, id, Boolean(argv.json));
    });
  },
};

const demo: CommandModule = {
  command: 'demo',
  describe:
    'Chaos demo: a parent with subtasks that fail at random (some detached); works until every context is DONE',
  builder: (y) =>
    withConnection(y)
      .option('subtasks', { type: 'number', default: 20, describe: 'Subtasks of the parent' })
      .option('failure-rate', {
        type: 'number',
        default: 0.3,
        describe: 'Chance that an attempt fails (0-1)',
      })
      .option('detached-ratio', {
        type: 'number',
        default: 0.3,
        describe: 'Share of subtasks in detached processes',
      })
      .option('concurrency', { type: 'number', default: 4, describe: 'Subtasks at once in this process' })
      .option('timeout', { type: 'number', default: 300, describe: 'Give up (exit 1) after seconds' }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    const options = {
      subtasks: positive(argv, 'subtasks', 'subtasks'),
      failureRate: fraction(argv, 'failureRate', 'failure-rate'),
      detachedRatio: fraction(argv, 'detachedRatio', 'detached-ratio'),
      concurrency: Math.max(1, positive(argv, 'concurrency', 'concurrency')),
      timeoutSeconds: Math.max(1, positive(argv, 'timeout', 'timeout')),
    };
    await runMain(async () => {
      const { runTasksDemo } = await import('../../jobrunner/commands.ts');
      return runTasksDemo(config, options);
    });
  },
};

export const tasksCommand: CommandModule = {
  command: 'tasks <command>',
  describe: 'Inspect tasks (ETL contexts and their events); run the chaos demo',
  builder: (y) => y.command([list, show, events, demo]).demandCommand(1),
  handler: () => undefined,
};
