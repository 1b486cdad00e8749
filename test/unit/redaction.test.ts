import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { envName, loadConfig, redactConfig, REDACTED } from '../../src/config/index.ts';
import { logCensor, LOG_REDACT_PATHS } from '../../src/config/redact.ts';
import { configSchema, SECRET_KEYS, URL_KEYS } from '../../src/config/schema.ts';

/**
 * Every secret option is redacted in /info and in logs. The schema is walked, so a secret-looking
 * option added later without its place in SECRET_KEYS fails here (docs/security.md).
 */

/** Names that hold a secret value; a *File / *Path option holds where a secret is, not the secret. */
const SECRET_LOOKING = /pass(word)?|secret|token|credential|api_?key|private_?key|[a-z]Key$|^key$/i;
const NOT_A_VALUE = /(File|Dir|Path|Column|Issuer|Audience|Clients|Mode)$/;

const keys = Object.keys(configSchema.shape);

describe('secret redaction', () => {
  it('finds every secret-looking option of the config schema in SECRET_KEYS', () => {
    const looking = keys.filter((k) => SECRET_LOOKING.test(k) && !NOT_A_VALUE.test(k));
    expect(looking).toEqual(expect.arrayContaining(['password', 'clientSecret', 'kafkaSaslPassword']));
    expect(looking.filter((k) => !(SECRET_KEYS as readonly string[]).includes(k))).toEqual([]);
    for (const k of SECRET_KEYS) expect(keys).toContain(k);
  });

  it('redacts each secret from a *_FILE variable in the effective config (/info)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagc-redact-'));
    for (const key of SECRET_KEYS) {
      const file = join(dir, key);
      writeFileSync(file, `value-of-${key}-0123456789\n`);
      const config = loadConfig({ env: { [`${envName(key)}_FILE`]: file } });
      expect((config as Record<string, unknown>)[key]).toBe(`value-of-${key}-0123456789`);
      const shown = JSON.stringify(redactConfig(config));
      expect(shown).not.toContain(`value-of-${key}`);
      expect(redactConfig(config)[key]).toBe(REDACTED);
    }
  });

  it('keeps every secret and URL password out of the log, at the top, in a config and in an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tagc-redact-log-'));
    const file = join(dir, 'log.ndjson');
    const dest = pino.destination({ dest: file, sync: true });
    const logger = pino({ redact: { paths: LOG_REDACT_PATHS, censor: logCensor } }, dest);
    const secrets = Object.fromEntries(SECRET_KEYS.map((k) => [k, `s3cr3t-${k}`]));
    const urls = Object.fromEntries(URL_KEYS.map((k) => [k, `https://user:pw-${k}@host.example/x`]));
    logger.info({ ...secrets, ...urls }, 'top level');
    logger.info({ config: { ...secrets, ...urls } }, 'in a config');
    logger.info({ opts: secrets, headers: { authorization: 'Bearer tok-123456' } }, 'in options');
    dest.flushSync();
    const text = readFileSync(file, 'utf8');
    for (const k of SECRET_KEYS) expect(text).not.toContain(`s3cr3t-${k}`);
    for (const k of URL_KEYS) {
      expect(text).not.toContain(`pw-${k}`);
      expect(text).toContain('host.example');
    }
    expect(text).not.toContain('tok-123456');
  });
});
