import { describe, expect, it } from '@jest/globals';
import { API_CONFIG_KEYS } from '../../src/api/config.ts';
import { apiConfigOf, extractorConfigOf } from '../../src/app/slices.ts';
import { loadConfig, REDACTED, sliceConfig } from '../../src/config/index.ts';
import { EXTRACTOR_CONFIG_KEYS } from '../../src/extractor/index.ts';
import { SINK_CONFIG_KEYS } from '../../src/sinks/index.ts';

/** A config with a secret of every part: the database, start-job's client, Kafka, the mask key. */
const config = loadConfig({
  env: {},
  flags: {
    pgUrl: 'postgres://app:db-secret@127.0.0.1:5432/app',
    clientSecret: 'client-secret',
    kafkaBrokers: '127.0.0.1:9092',
    kafkaSaslMechanism: 'plain',
    kafkaSaslUsername: 'u',
    kafkaSaslPassword: 'kafka-secret',
    authTokensFile: '/etc/tokens',
    serverHost: '127.0.0.1',
  },
});

describe('each part gets its own slice of the config (docs/design.md §1)', () => {
  it('sliceConfig copies exactly the keys asked for, leaves unset ones out, and freezes', () => {
    const s = sliceConfig(config, ['slot', 'topic', 'filePath']);
    expect(Object.keys(s).sort()).toEqual(['filePath', 'slot']); // topic is unset
    expect(s.slot).toBe(config.slot);
    expect(Object.isFrozen(s)).toBe(true);
  });

  it("the API's slice: its keys, its auth, the redacted config for /info; no sink or start-job secret", () => {
    const api = apiConfigOf(config);
    const keys = new Set<string>([...API_CONFIG_KEYS, 'auth', 'shown']);
    expect(Object.keys(api).filter((k) => !keys.has(k))).toEqual([]);
    expect(api).not.toHaveProperty('kafkaSaslPassword');
    expect(api).not.toHaveProperty('clientSecret');
    expect(api.auth).toEqual({
      tokensFile: '/etc/tokens',
      jwt: undefined,
      listenHost: '127.0.0.1',
      insecureListen: false,
    });
    // What /info shows: every key, secrets replaced, the URL's password hidden.
    expect(api.shown.kafkaSaslPassword).toBe(REDACTED);
    expect(api.shown.clientSecret).toBe(REDACTED);
    expect(JSON.stringify(api.shown)).not.toMatch(/db-secret|client-secret|kafka-secret/);
    expect(Object.isFrozen(api) && Object.isFrozen(api.shown)).toBe(true);
  });

  it("the extractor's slice holds the sinks' keys and no API auth or start-job client setting", () => {
    const x = extractorConfigOf(config);
    const keys = new Set<string>(EXTRACTOR_CONFIG_KEYS);
    expect(Object.keys(x).filter((k) => !keys.has(k))).toEqual([]);
    for (const k of SINK_CONFIG_KEYS) expect(keys.has(k)).toBe(true);
    expect(x).not.toHaveProperty('clientSecret');
    expect(x).not.toHaveProperty('authTokensFile');
    expect(x).not.toHaveProperty('serverPort');
    expect(x.kafkaSaslPassword).toBe('kafka-secret'); // the sinks it builds need it
  });
});
