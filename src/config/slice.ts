import type { Config } from './schema.ts';

/**
 * A part's own slice of the config (STYLE habit 8): exactly `keys`, copied out of the validated
 * config and frozen. A part declares its keys and its type as `Pick<Config, ...>` of them (so the
 * type still derives from the one schema); the composition root builds the slice, and the part can
 * reach nothing else: no secret of another part, no sink setting in the API.
 */
export function sliceConfig<const K extends keyof Config>(
  config: Pick<Config, K>,
  keys: readonly K[],
): Pick<Config, K> {
  const out: Partial<Pick<Config, K>> = {};
  for (const key of keys) if (key in config) out[key] = config[key];
  return Object.freeze(out) as Pick<Config, K>;
}
