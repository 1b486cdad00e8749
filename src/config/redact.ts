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

/** pino redaction paths for anything that might carry a secret. */
export const LOG_REDACT_PATHS = [
  'password',
  'clientSecret',
  'client_secret',
  '*.password',
  '*.clientSecret',
  '*.client_secret',
  'config.password',
  'config.clientSecret',
  'headers.authorization',
  'req.headers.authorization',
];
