import { createHmac } from 'node:crypto';
import { parseMask } from './rules.ts';

/** A value's JSON text → its masked JSON text. */
export type Masker = (valueJson: string) => string;

export const REDACTED_VALUE = '[redacted]';
const REDACTED_JSON = JSON.stringify(REDACTED_VALUE);

/**
 * The value's text as the event carries it, a string unquoted: `"a@b.c"` → `a@b.c`, `42` → `42`,
 * `{"a":1}` → `{"a":1}`. This is the HMAC input, so a consumer can compute the same digest.
 */
export function valueText(json: string): string {
  if (json.charCodeAt(0) !== 34) return json;
  return json.indexOf('\\') < 0 ? json.slice(1, -1) : (JSON.parse(json) as string);
}

/**
 * The masker of a spec (`hmac-sha256`, `redact`, `truncate(n)`). A null stays null: there is no value
 * to hide, and a digest of "null" would look like one.
 */
export function maskerFor(spec: string, key: Buffer | undefined): Masker {
  const m = parseMask(spec);
  switch (m.kind) {
    case 'hmac-sha256': {
      if (!key) throw new Error('hmac-sha256 masking needs a key (--mask-key-file)');
      return (json) =>
        json === 'null'
          ? json
          : '"' + createHmac('sha256', key).update(valueText(json), 'utf8').digest('hex') + '"';
    }
    case 'redact':
      return (json) => (json === 'null' ? json : REDACTED_JSON);
    case 'truncate': {
      const n = m.length;
      return (json) => {
        if (json === 'null') return json;
        const text = valueText(json);
        // By code points, so a surrogate pair is never cut in half.
        if (text.length <= n) return json.charCodeAt(0) === 34 ? json : JSON.stringify(text);
        return JSON.stringify(Array.from(text).slice(0, n).join(''));
      };
    }
  }
}
