import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './errors.ts';
import { configSchema, SECRET_KEYS, type Config } from './schema.ts';

type Layer = Record<string, unknown>;
type Sources = Record<string, string>;

const KEYS = Object.keys(configSchema.shape) as (keyof typeof configSchema.shape)[];

export const ENV_PREFIX = 'TAG_CONNECTOR_';

export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

export function flagName(key: string): string {
  return `--${key}`;
}

/** Env layer: TAG_CONNECTOR_<KEY>, or TAG_CONNECTOR_<KEY>_FILE naming a file that holds the value. */
export function envLayer(env: NodeJS.ProcessEnv, sources: Sources): Layer {
  const layer: Layer = {};
  for (const key of KEYS) {
    const name = envName(key);
    const fileVar = `${name}_FILE`;
    if (env[name] !== undefined && env[name] !== '') {
      layer[key] = env[name];
      sources[key] = `env ${name}`;
    } else if (env[fileVar]) {
      try {
        layer[key] = readFileSync(env[fileVar], 'utf8').trim();
      } catch (err) {
        throw new ConfigError(
          key,
          `env ${fileVar}`,
          `cannot read ${env[fileVar]}: ${(err as Error).message}`,
        );
      }
      sources[key] = `env ${fileVar}`;
    }
  }
  return layer;
}

export function fileLayer(path: string, sources: Sources): Layer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('config', `--config ${path}`, `cannot read the file: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError('config', `--config ${path}`, `not valid YAML: ${(err as Error).message}`);
  }
  if (doc == null) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('config', `--config ${path}`, 'expected a YAML mapping of option: value');
  }
  const layer: Layer = {};
  for (const [key, value] of Object.entries(doc as Layer)) {
    // `tables:` is a list of tracked tables, or a mapping of per-table rules (governance).
    if (key === 'tables' && value && typeof value === 'object' && !Array.isArray(value)) {
      layer.tableRules = value;
      sources.tableRules = `config file ${path}`;
      continue;
    }
    if (!(KEYS as string[]).includes(key)) {
      throw new ConfigError(key, `--config ${path}`, `unknown option (known: ${KEYS.join(', ')})`);
    }
    layer[key] = value;
    sources[key] = `config file ${path}`;
  }
  return layer;
}

export function flagLayer(flags: Record<string, unknown>, sources: Sources): Layer {
  const layer: Layer = {};
  for (const key of KEYS) {
    const value = flags[key];
    if (value === undefined) continue;
    layer[key] = value;
    sources[key] = `flag ${flagName(key)}`;
  }
  return layer;
}

export interface LoadOptions {
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Path of a YAML config file; defaults to flags.config, then TAG_CONNECTOR_CONFIG. */
  configFile?: string;
}

/**
 * Effective configuration with precedence flags > env TAG_CONNECTOR_* > YAML file > defaults.
 * Validated once and frozen; a bad value throws a ConfigError naming the field and where it came from.
 */
export function loadConfig(options: LoadOptions = {}): Config {
  const env = options.env ?? process.env;
  const flags = options.flags ?? {};
  const sources: Sources = {};
  const configFile =
    options.configFile ?? (flags.config as string | undefined) ?? env[`${ENV_PREFIX}CONFIG`] ?? undefined;
  const merged: Layer = {
    ...(configFile ? fileLayer(configFile, sources) : {}),
    ...envLayer(env, sources),
    ...flagLayer(flags, sources),
  };
  if (typeof merged.maskKeyFile === 'string') {
    try {
      merged.maskKey = readFileSync(merged.maskKeyFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(
        'maskKeyFile',
        sources.maskKeyFile ?? 'default',
        `cannot read ${merged.maskKeyFile}: ${(err as Error).message}`,
      );
    }
    sources.maskKey = sources.maskKeyFile!;
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? 'config');
    const got = merged[key];
    // Secrets are never shown; rules are shown by their path only (a filter may hold a value).
    const shown =
      (SECRET_KEYS as readonly string[]).includes(key) || key === 'tableRules'
        ? ''
        : `, got ${JSON.stringify(got)}`;
    const name = key === 'tableRules' ? 'tables' : key;
    const where = issue.path.length > 1 ? `${name}.${issue.path.slice(1).join('.')}` : name;
    throw new ConfigError(
      where,
      sources[key] ?? 'default',
      `${issue.message}${got === undefined ? '' : shown}`,
    );
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
