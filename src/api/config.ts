import { PG_CONNECTION_KEYS, type Config } from '../config/index.ts';
import type { AuthOptions } from './auth.ts';

/**
 * What extract-tasks' HTTP API reads of the config. The Snapshot route opens connections of its own,
 * hence the PostgreSQL keys; nothing of the sinks, the job runner or start-job.
 */
export const API_CONFIG_KEYS = [
  ...PG_CONNECTION_KEYS,
  'serverHost',
  'serverPort',
  'metricsPublic',
  'slot',
  'plugin',
  'publication',
  'stateSchema',
  'workspaceColumn',
  'streamClientBufferBytes',
  'streamMaxClients',
  'snapshotMaxConcurrent',
] as const;

export type ApiConfig = Pick<Config, (typeof API_CONFIG_KEYS)[number]> & {
  /** Who may call which route (authOptions of the config). */
  auth: AuthOptions;
  /** The effective config as GET /info shows it: secrets redacted (redactConfig), built once. */
  shown: Readonly<Record<string, unknown>>;
};
