import type { CommandModule } from 'yargs';
import { configFromArgv, runMain } from '../load.ts';
import { commonOptions, sinkOptions, withOptions } from '../options.ts';

const pick = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, sinkOptions[k]!]));

export const tailCommand: CommandModule = {
  command: 'tail',
  describe: 'Print the CloudEvents of a Kafka or Pub/Sub topic; --verify checks duplicates, order and gaps',
  builder: (y) =>
    withOptions(
      y,
      pick([
        'topic',
        'kafka-brokers',
        'kafka-client-id',
        'kafka-tls',
        'kafka-ca-file',
        'kafka-sasl-mechanism',
        'kafka-sasl-username',
        'kafka-sasl-password',
        'project-id',
        'service-account',
      ]),
      commonOptions,
    )
      .option('from', {
        choices: ['kafka', 'pubsub'] as const,
        demandOption: true,
        describe: 'Where to read',
      })
      .option('from-beginning', {
        type: 'boolean',
        default: false,
        describe: 'Kafka: from the start of the topic (default: only new events)',
      })
      .option('verify', {
        type: 'boolean',
        default: false,
        describe: 'Report duplicates, out-of-order events and gaps per partition key; exit 1 on problems',
      })
      .option('expect', { type: 'string', describe: 'With --verify: file of the ids that must arrive' })
      .option('max-events', { type: 'number', describe: 'Stop after this many events' })
      .option('idle-exit-ms', { type: 'number', describe: 'Stop after this long without an event' })
      .option('quiet', { type: 'boolean', default: false, describe: 'Do not print the events' }),
  handler: async (argv) => {
    const config = configFromArgv(argv);
    await runMain(async () => {
      const { runTail } = await import('../../sinks/tail.ts');
      return runTail(config, {
        from: argv.from as 'kafka' | 'pubsub',
        topic: argv.topic as string | undefined,
        fromBeginning: Boolean(argv['from-beginning']),
        verify: Boolean(argv.verify),
        expectFile: argv.expect as string | undefined,
        maxEvents: argv['max-events'] as number | undefined,
        idleExitMs: argv['idle-exit-ms'] as number | undefined,
        quiet: Boolean(argv.quiet),
      });
    });
  },
};
