import { SECRET_KEYS, URL_KEYS, type Config } from './schema.ts';

export const REDACTED = '[redacted]';

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = REDACTED;
    for (const k of [...u.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(k)) u.searchParams.set(k, REDACTED);
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]+):[^@]*@/, `//$1:${REDACTED}@`);
  }
}

/** The effective config as it may be shown (/info, logs): secrets replaced, URL passwords hidden. */
export function redactConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const key of SECRET_KEYS) if (out[key] !== undefined) out[key] = REDACTED;
  for (const key of URL_KEYS) if (typeof out[key] === 'string') out[key] = redactUrl(out[key] as string);
  return out;
}

const HEADER_PATHS = [
  'headers.authorization',
  'req.headers.authorization',
  'headers.cookie',
  'req.headers.cookie',
  'client_secret',
  '*.client_secret',
];

/**
 * pino redaction paths, derived from SECRET_KEYS and URL_KEYS so a secret added to the schema is
 * redacted in logs too (test/unit/redaction.test.ts walks the schema for secret-looking keys): each at
 * the top level, one level down (`config.password`, `opts.password`) and as a header or OAuth field.
 */
export const LOG_REDACT_PATHS = [
  ...[...SECRET_KEYS, ...URL_KEYS].flatMap((k) => [k, `*.${k}`]),
  ...HEADER_PATHS,
];

const URL_KEY_SET = new Set<string>(URL_KEYS);

/** pino's censor: URLs keep their host (useful in logs) and lose their password; the rest goes. */
export function logCensor(value: unknown, path: string[]): unknown {
  const key = path[path.length - 1] ?? '';
  if (URL_KEY_SET.has(key) && typeof value === 'string') return redactUrl(value);
  return REDACTED;
}

export { redactUrl };
