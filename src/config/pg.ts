import type { ClientConfig } from 'pg';
import type { Config } from './schema.ts';

/** What a part that opens its own PostgreSQL connections reads of the config. */
export const PG_CONNECTION_KEYS = ['pgUrl', 'pgHost', 'pgPort', 'db', 'user', 'password'] as const;
export type PgConnectionConfig = Pick<Config, (typeof PG_CONNECTION_KEYS)[number]>;

/** pg client settings from --pg-url or the discrete flags; unset fields fall back to libpq's PG* env. */
export function pgClientConfig(config: PgConnectionConfig): ClientConfig {
  if (config.pgUrl) {
    return {
      connectionString: config.pgUrl,
      ...(config.password ? { password: config.password } : {}),
      ...(config.user ? { user: config.user } : {}),
    };
  }
  return {
    host: config.pgHost,
    port: config.pgPort,
    database: config.db,
    user: config.user,
    password: config.password,
  };
}

/** Database name the daemon watches, for event sources and /info. */
export function databaseName(config: Pick<Config, 'pgUrl' | 'db'>): string {
  if (config.pgUrl) {
    try {
      const name = new URL(config.pgUrl).pathname.replace(/^\//, '');
      if (name) return decodeURIComponent(name);
    } catch {
      /* a key=value connection string: fall through */
    }
  }
  return config.db ?? process.env.PGDATABASE ?? 'postgres';
}
