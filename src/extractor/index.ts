// The extractor's public face: the composition root (src/app/extract-tasks.ts) builds it, the API reads it.
export { Extractor } from './extractor.ts';
export { EXTRACTOR_CONFIG_KEYS, type ExtractorConfig } from './config.ts';
