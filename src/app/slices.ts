import { API_CONFIG_KEYS, type ApiConfig } from '../api/config.ts';
import { authOptions } from '../api/auth.ts';
import { redactConfig, sliceConfig, type Config } from '../config/index.ts';
import { EXTRACTOR_CONFIG_KEYS, type ExtractorConfig } from '../extractor/index.ts';

/*
 * extract-tasks' parts each get their own slice of the config (STYLE habit 8), built here, at the
 * composition root; the whole Config stops at this file.
 */

/** The extractor's slice (it hands the sinks theirs, SINK_CONFIG_KEYS, when it builds them). */
export function extractorConfigOf(config: Config): ExtractorConfig {
  return sliceConfig(config, EXTRACTOR_CONFIG_KEYS);
}

/** The API's slice: the keys it reads, its auth, and the redacted config /info shows. */
export function apiConfigOf(config: Config): ApiConfig {
  return Object.freeze({
    ...sliceConfig(config, API_CONFIG_KEYS),
    auth: authOptions(config),
    shown: Object.freeze(redactConfig(config)),
  });
}
