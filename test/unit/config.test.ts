import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envName, loadConfig, redactConfig, REDACTED } from '../../src/config/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'tagc-config-'));
function yaml(text: string): string {
  const p = join(tmp, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}

describe('config precedence', () => {
  it('applies defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.slot).toBe('tag_connector');
    expect(c.plugin).toBe('wal2json');
    expect(c.sink).toEqual(['stdout']);
    expect(c.serverHost).toBe('127.0.0.1');
  });

  it('flags > env > file > defaults', () => {
    const file = yaml('slot: from_file\npublication: pub_file\nplugin: pgoutput\nlogLevel: debug\n');
    const env = { TAG_CONNECTOR_SLOT: 'from_env', TAG_CONNECTOR_PUBLICATION: 'pub_env' };
    const c = loadConfig({ env, configFile: file, flags: { slot: 'from_flag' } });
    expect(c.slot).toBe('from_flag');
    expect(c.publication).toBe('pub_env');
    expect(c.plugin).toBe('pgoutput');
    expect(c.logLevel).toBe('debug');
    expect(c.maxInFlightEvents).toBe(5000);
  });

  it('reads a secret from a *_FILE env var', () => {
    const secret = join(tmp, 'secret');
    writeFileSync(secret, 's3cr3t\n');
    const c = loadConfig({ env: { TAG_CONNECTOR_CLIENT_SECRET_FILE: secret } });
    expect(c.clientSecret).toBe('s3cr3t');
  });

  it('names env vars after the flags', () => {
    expect(envName('pgPort')).toBe('TAG_CONNECTOR_PG_PORT');
    expect(envName('clientSecret')).toBe('TAG_CONNECTOR_CLIENT_SECRET');
  });

  it('splits repeated and comma-separated sinks', () => {
    expect(loadConfig({ env: {}, flags: { sink: ['file', 'kafka'] } }).sink).toEqual(['file', 'kafka']);
    expect(loadConfig({ env: { TAG_CONNECTOR_SINK: 'file,pubsub' } }).sink).toEqual(['file', 'pubsub']);
  });
});

describe('config validation', () => {
  const fails = (opts: Parameters<typeof loadConfig>[0]): ConfigError => {
    try {
      loadConfig(opts);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('expected a ConfigError');
  };

  it('names the field and the source of a bad port', () => {
    const e = fails({ env: {}, flags: { pgPort: 'notaport' } });
    expect(e.field).toBe('pgPort');
    expect(e.message).toMatch(/pgPort \(flag --pgPort\).*port/);
  });

  it('names the env var of a bad value', () => {
    const e = fails({ env: { TAG_CONNECTOR_PLUGIN: 'decoderbufs' } });
    expect(e.message).toContain('TAG_CONNECTOR_PLUGIN');
    expect(e.message).toContain('wal2json|pgoutput');
  });

  it('rejects unknown sinks and unknown file keys', () => {
    expect(fails({ env: {}, flags: { sink: ['nats'] } }).field).toBe('sink.0');
    expect(fails({ env: {}, configFile: yaml('slott: x\n') }).field).toBe('slott');
  });

  it('rejects a Kafka checkpoint topic that is also an event topic', () => {
    const e = fails({ env: {}, flags: { kafkaCheckpointTopic: 'tag-connector.events' } });
    expect(e.field).toBe('kafkaCheckpointTopic');
    expect(e.message).toMatch(/must differ from --topic/);
    const routed = yaml('topicRoutes:\n  task.created: cp\nkafkaCheckpointTopic: cp\n');
    expect(fails({ env: {}, configFile: routed }).field).toBe('kafkaCheckpointTopic');
  });

  it('takes --schema-registry as an http(s) URL, for structured events only, its password redacted', () => {
    const url = 'http://registry:8080/apis/ccompat/v7';
    expect(loadConfig({ env: {}, flags: { schemaRegistry: url } }).schemaRegistry).toBe(url);
    expect(loadConfig({ env: { TAG_CONNECTOR_SCHEMA_REGISTRY: url } }).schemaRegistry).toBe(url);
    expect(fails({ env: {}, flags: { schemaRegistry: 'registry:8081' } }).field).toBe('schemaRegistry');
    const e = fails({ env: {}, flags: { schemaRegistry: url, envelope: 'debezium' } });
    expect(e.field).toBe('schemaRegistry');
    expect(e.message).toMatch(/cannot be combined with --envelope debezium/);
    const c = loadConfig({ env: {}, flags: { schemaRegistry: 'https://u:s3cret@registry:8081' } });
    expect(JSON.stringify(redactConfig(c))).not.toContain('s3cret');
  });

  it('takes the Kafka producer thread switch from flags and env, and names it when bad', () => {
    expect(loadConfig({ env: {}, flags: {} }).kafkaThread).toBe(true);
    expect(loadConfig({ env: {}, flags: { kafkaThread: 'false' } }).kafkaThread).toBe(false);
    expect(loadConfig({ env: { TAG_CONNECTOR_KAFKA_THREAD: 'false' } }).kafkaThread).toBe(false);
    expect(fails({ env: {}, flags: { kafkaThread: 'sometimes' } }).field).toBe('kafkaThread');
  });

  it('rejects a bad slot name', () => {
    expect(fails({ env: {}, flags: { slot: 'Bad-Slot' } }).field).toBe('slot');
  });

  it('never echoes a secret in an error', () => {
    const e = fails({ env: {}, flags: { password: 12 as unknown as string } });
    expect(e.message).not.toContain('12');
  });

  it('returns a frozen object', () => {
    const c = loadConfig({ env: {} });
    expect(Object.isFrozen(c)).toBe(true);
  });
});

describe('secrets', () => {
  it('have no defaults', () => {
    const c = loadConfig({ env: {} });
    expect(c.password).toBeUndefined();
    expect(c.clientSecret).toBeUndefined();
  });

  it('are redacted, also inside URLs', () => {
    const c = loadConfig({
      env: {},
      flags: {
        password: 'pw',
        clientSecret: 'cs',
        pgUrl: 'postgres://u:hunter2@h:5432/db',
        mongoAddr: 'mongodb://m:pass@h/x',
      },
    });
    const r = redactConfig(c);
    expect(r.password).toBe(REDACTED);
    expect(r.clientSecret).toBe(REDACTED);
    expect(JSON.stringify(r)).not.toMatch(/hunter2|"pw"|"cs"|:pass@/);
  });
});
