import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { envName } from '../../src/config/load.ts';
import { configSchema, ENV_ALIASES, SECRET_KEYS } from '../../src/config/schema.ts';

/**
 * No container engine runs here: docker/docker-compose.yml, docker/Dockerfile and postgres-conf/ are checked
 * by parsing them, against the config schema and the test harness's PostgreSQL (test/support/pg.ts).
 */

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  secrets?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}
interface Compose {
  services: Record<string, Service>;
  secrets: Record<string, Record<string, string>>;
}

const compose = parse(read('docker/docker-compose.yml'), { merge: true }) as Compose;
const services = compose.services;
const KEYS = Object.keys(configSchema.shape);
const ENV_TO_KEY = new Map(KEYS.map((k) => [envName(k), k]));
const isTagConnector = (s: Service) => s.command?.[0] === 'extract-tasks' || s.command?.[0] === 'start-job';

/** `key = value` lines of a postgresql.conf, without comments and quotes. */
function confSettings(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z_]+)\s*=\s*('(?:[^']*)'|[^#\s]+)/.exec(line);
    if (m) out.set(m[1]!, m[2]!.replace(/^'|'$/g, ''));
  }
  return out;
}

/** The settings test/support/pg.ts writes into the harness's postgresql.conf. */
function harnessSettings(): Map<string, string> {
  const src = read('test/support/pg.ts');
  const out = new Map<string, string>();
  for (const m of src.matchAll(/^\s+([a-z_]+): (?:"'([^']*)'"|'([^']*)'|(\d+)),$/gm)) {
    out.set(m[1]!, m[2] ?? m[3] ?? m[4]!);
  }
  const opl = /conf\.output_plugin_libraries = "'([^']*)'"/.exec(src);
  if (opl) out.set('output_plugin_libraries', opl[1]!);
  return out;
}

describe('docker/docker-compose.yml', () => {
  it('has every part: PostgreSQL + wal2json, Kafka, the Pub/Sub emulator, MongoDB and both daemons', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['extract-tasks', 'kafka', 'mongo', 'postgres', 'pubsub', 'start-job'].sort(),
    );
    expect(services.postgres!.build).toEqual({ context: '.', dockerfile: 'postgres.Dockerfile' });
    expect(services.kafka!.image).toMatch(/^apache\/kafka:/);
    expect(services.pubsub!.image).toMatch(/google-cloud-cli:emulators$/);
    expect(services.pubsub!.command).toEqual(expect.arrayContaining(['pubsub', 'start']));
    expect(services.mongo!.image).toMatch(/^mongo:/);
    expect(services['extract-tasks']!.build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(services['extract-tasks']!.command).toEqual(['extract-tasks']);
    expect(services['start-job']!.command).toEqual(['start-job']);
    expect(services['extract-tasks']!.depends_on?.postgres?.condition).toBe('service_healthy');
  });

  it('configures tag-connector only through env names of the config schema', () => {
    const unknown: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const env of Object.keys(s.environment ?? {})) {
        if (!env.startsWith('TAG_CONNECTOR_')) continue;
        // TAG_CONNECTOR_<KEY>, or TAG_CONNECTOR_<KEY>_FILE naming a file with the value (authTokensFile is both)
        if (!ENV_TO_KEY.has(env) && !ENV_TO_KEY.has(env.replace(/_FILE$/, '')))
          unknown.push(`${name}: ${env}`);
      }
      if (isTagConnector(s)) {
        for (const env of Object.keys(s.environment ?? {})) {
          if (!env.startsWith('TAG_CONNECTOR_') && !(env in ENV_ALIASES) && env !== 'PUBSUB_EMULATOR_HOST') {
            unknown.push(`${name}: ${env} (not a tag-connector setting)`);
          }
        }
      }
    }
    expect(unknown).toEqual([]);
  });

  it('gives every value a config-schema-valid type (merged with the defaults)', () => {
    for (const name of ['extract-tasks', 'start-job']) {
      const env = services[name]!.environment!;
      const layer: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(env)) {
        const key = ENV_TO_KEY.get(k);
        if (key && !/\$\{/.test(v)) layer[key] = v;
      }
      const r = configSchema.safeParse(layer);
      expect(
        r.success ? 'ok' : `${name}: ${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}`,
      ).toBe('ok');
    }
  });

  it('passes no secret inline: secrets come from files via *_FILE and compose secrets', () => {
    const secretEnv = new Set(SECRET_KEYS.map((k) => envName(k)));
    const inline: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const [env, value] of Object.entries(s.environment ?? {})) {
        if (secretEnv.has(env)) inline.push(`${name}: ${env}`);
        else if (/PASSWORD|SECRET|TOKEN/.test(env) && !env.endsWith('_FILE')) inline.push(`${name}: ${env}`);
        // URLs with credentials (user:password@) belong in a secret file too
        else if (/:\/\/[^/@\s]+:[^/@\s]+@/.test(String(value)))
          inline.push(`${name}: ${env} (credentials in a URL)`);
        if (env.endsWith('_FILE')) {
          expect(value).toMatch(/^\/run\/secrets\//);
          const secret = String(value).slice('/run/secrets/'.length);
          expect(s.secrets ?? []).toContain(secret);
        }
      }
    }
    expect(inline).toEqual([]);
    for (const [name, def] of Object.entries(compose.secrets)) {
      expect(Object.keys(def)).toEqual(['file']);
      expect(def.file).toBe(`./secrets/${name}`);
    }
    expect(read('docker/secrets/.gitignore')).toMatch(/^\*$/m);
  });

  it('gives Kafka the single-node settings transactions need (as the harness broker)', () => {
    const env = services.kafka!.environment!;
    expect(env.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    for (const k of [
      'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR',
      'KAFKA_MIN_INSYNC_REPLICAS',
    ]) {
      expect(env[k]).toBe('1');
    }
    const harness = read('test/support/kafka/pom.xml');
    const version = /<kafka\.version>([^<]+)</.exec(harness)![1];
    expect(services.kafka!.image).toBe(`apache/kafka:${version}`);
    expect(services['extract-tasks']!.environment!.TAG_CONNECTOR_KAFKA_BROKERS).toBe('kafka:9092');
    expect(env.KAFKA_ADVERTISED_LISTENERS).toContain('PLAINTEXT://kafka:9092');
  });

  it('serves the extract-tasks API beyond loopback only with auth', () => {
    const env = services['extract-tasks']!.environment!;
    expect(env.TAG_CONNECTOR_SERVER_HOST).toBe('0.0.0.0');
    expect(env.TAG_CONNECTOR_AUTH_TOKENS_FILE).toMatch(/^\/run\/secrets\//);
    expect(env.TAG_CONNECTOR_INSECURE_LISTEN).toBeUndefined();
    expect(services['start-job']!.environment!.TAG_CONNECTOR_SERVER_HOST).toBe('127.0.0.1');
  });
});

describe('PostgreSQL packaging', () => {
  const conf = confSettings(read('postgres-conf/postgresql.conf'));
  const harness = harnessSettings();

  it('reads the harness settings it compares with', () => {
    expect(harness.get('wal_level')).toBe('logical');
    expect(harness.get('wal_sender_timeout')).toBe('60s');
    expect(harness.get('output_plugin_libraries')).toBe('pgoutput, test_decoding, wal2json');
  });

  it('postgres-conf/postgresql.conf matches the harness where the product depends on it', () => {
    for (const k of ['wal_level', 'wal_sender_timeout', 'output_plugin_libraries']) {
      expect(`${k} = ${conf.get(k)}`).toBe(`${k} = ${harness.get(k)}`);
    }
    expect(Number(conf.get('max_wal_senders'))).toBeGreaterThanOrEqual(4);
    expect(Number(conf.get('max_replication_slots'))).toBeGreaterThanOrEqual(4);
    // a limit, not -1: a stuck sink must not fill the disk
    expect(conf.get('max_slot_wal_keep_size')).toMatch(/^\d+(MB|GB|TB)$/);
  });

  it('the compose PostgreSQL is the harness major version with wal2json, and mounts postgres-conf', () => {
    const dockerfile = read('docker/postgres.Dockerfile');
    expect(dockerfile).toMatch(/^FROM postgres:15$/m);
    expect(dockerfile).toMatch(/apt-get install .*postgresql-15-wal2json/);
    expect(read('README.md')).toContain('postgresql-15-wal2json'); // what script/bootstrap installs for the harness
    expect(services.postgres!.volumes).toContain('../postgres-conf:/etc/tag-connector/postgres-conf:ro');
    const initConf = read('docker/initdb/10-tag-connector-conf.sh');
    expect(initConf).toContain('/etc/tag-connector/postgres-conf/postgresql.conf');
    // as the harness: output_plugin_libraries only for a server that knows it
    expect(initConf).toContain('--describe-config');
    const initRole = read('docker/initdb/20-tag-connector-role.sh');
    expect(initRole).toContain('/etc/tag-connector/postgres-conf/init.sql');
    expect(initRole).toContain('/run/secrets/tag_connector_db_password');
    expect(services.postgres!.secrets).toContain('tag_connector_db_password');
    expect(services.postgres!.environment!.POSTGRES_DB).toBe(
      services['extract-tasks']!.environment!.TAG_CONNECTOR_DB,
    );
  });

  it('init.sql creates a least-privilege replication role and holds no password', () => {
    const sql = read('postgres-conf/init.sql');
    expect(sql).toMatch(/CREATE ROLE tag_connector WITH LOGIN REPLICATION PASSWORD %L/);
    const statements = sql
      .split('\n')
      .filter((l) => !l.trim().startsWith('--'))
      .join('\n');
    expect(statements).not.toMatch(/(?<!NO)SUPERUSER|CREATEDB|CREATEROLE|BYPASSRLS/);
    expect(sql).toMatch(/GRANT CONNECT, CREATE ON DATABASE/);
    expect(sql).toMatch(/GRANT SELECT ON ALL TABLES IN SCHEMA/);
    expect(sql).toMatch(/REPLICA IDENTITY FULL/);
    expect(sql).toMatch(/CREATE PUBLICATION/);
    expect(sql).not.toMatch(/PASSWORD '[^']+'/);
    expect(services['extract-tasks']!.environment!.TAG_CONNECTOR_USER).toBe('tag_connector');
  });

  it('pg_hba example admits the role to the database (logical replication matches the database column)', () => {
    const hba = read('postgres-conf/pg_hba.conf.example')
      .split('\n')
      .filter((l) => l.trim() && !l.trim().startsWith('#'));
    expect(hba.length).toBeGreaterThan(0);
    for (const l of hba) {
      const [type, database, user, , method] = l.trim().split(/\s+/);
      expect(['host', 'hostssl']).toContain(type);
      expect(database).not.toBe('replication');
      expect(user).toBe('tag_connector');
      expect(method).toBe('scram-sha-256');
    }
  });
});

describe('docker/Dockerfile', () => {
  const df = read('docker/Dockerfile');
  it('is multi-stage: npm ci + build, then a slim non-root runtime with production modules only', () => {
    expect(df).toMatch(/^FROM node:24-slim AS build$/m);
    expect(df).toMatch(/RUN npm ci/);
    expect(df).toMatch(/npm run build/);
    expect(df).toMatch(/npm prune --omit=dev/);
    expect(df).toMatch(/^FROM node:24-slim AS runtime$/m);
    expect(df).toMatch(/^USER 10001:10001$/m);
    expect(df).toMatch(/COPY --from=build .*\/src\/dist/);
    expect(df).not.toMatch(/COPY --from=build .*\/src\/src/);
    expect(df).toMatch(/^HEALTHCHECK .*$/m);
    expect(df).toMatch(/\/healthz/);
    expect(df).toMatch(/^ENTRYPOINT \["node", ("--[a-z-]+=\d+", )*"\/app\/dist\/cli\/main\.js"\]$/m);
  });
  it('copies only what the build context filter lets in', () => {
    const ignore = read('docker/Dockerfile.dockerignore');
    expect(ignore).toMatch(/^\*\*$/m);
    for (const m of df.matchAll(/^COPY (?!--from)(?:--\S+ )*(\S+)/gm)) {
      const path = m[1]!;
      expect(ignore).toMatch(new RegExp(`^!${path.replace(/[.*]/g, '\\$&')}(/\\*\\*)?$`, 'm'));
    }
  });
});
