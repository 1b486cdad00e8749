import { envName } from '../config/load.ts';
import { ENV_ALIASES } from '../config/schema.ts';

/**
 * Copies the seed's environment names (START_INITIAL_SYNC, CRON_PATTERN_HEALING_JOB, ...) onto their
 * TAG_CONNECTOR_* names when those are unset, so the one config loader sees them with the usual
 * precedence (flags > env > file > defaults). Returns the aliases it applied.
 */
export function applyEnvAliases(env: NodeJS.ProcessEnv): string[] {
  const applied: string[] = [];
  for (const [alias, key] of Object.entries(ENV_ALIASES)) {
    const target = envName(key);
    if (env[alias] !== undefined && env[alias] !== '' && (env[target] === undefined || env[target] === '')) {
      env[target] = env[alias];
      applied.push(alias);
    }
  }
  return applied;
}
