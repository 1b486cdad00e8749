import type { CommandModule } from 'yargs';
import { backfillCommand } from './backfill.ts';
import { doctorCommand } from './doctor.ts';
import { extractTasksCommand } from './extract-tasks.ts';
import { migrateCommand } from './migrate.ts';
import { runTaskCommand } from './run-task.ts';
import { slotCommand } from './slot.ts';
import { startJobCommand } from './start-job.ts';
import { tailCommand } from './tail.ts';
import { tasksCommand } from './tasks.ts';
import { versionCommand } from './version.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  extractTasksCommand,
  startJobCommand,
  versionCommand,
  migrateCommand,
  runTaskCommand,
  tasksCommand,
  doctorCommand,
  slotCommand,
  tailCommand,
  backfillCommand,
];
