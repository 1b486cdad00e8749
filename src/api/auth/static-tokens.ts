import { createHash, timingSafeEqual } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { defaultRoles, isScoped, ROLES, type Credential, type Role } from './credential.ts';

/**
 * Static bearer tokens (--auth-tokens-file). Two formats:
 *   - one token per line (`#` comments and blank lines skipped): unscoped, every role;
 *   - a YAML list whose entries are a token string or `{token, name, workspaces, tables, roles}`.
 * A token may be written as `sha256:<64 hex>` (the hash of the token) so the file holds no secret.
 * Parsing is pure and strict: an unknown key, a string where a list belongs, a bare table name, a
 * duplicate, or a file with no token at all is a TokenFileError, which the caller turns into exit 2.
 */

export class TokenFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenFileError';
  }
}

const SHA256 = /^sha256:([0-9a-f]{64})$/i;

const tokenText = z
  .string({ error: 'expected the token (or sha256:<64 hex digits>)' })
  .min(1, { error: 'expected a non-empty token' })
  .refine((t) => !/\s/.test(t), { error: 'a token may not contain whitespace' })
  .refine((t) => !/^sha256:/i.test(t) || SHA256.test(t), {
    error: 'expected sha256: followed by 64 hex digits',
  });

const entrySchema = z.strictObject(
  {
    token: tokenText,
    name: z.string().min(1).optional(),
    workspaces: z
      .array(z.string().min(1), { error: 'expected a list of workspaces, e.g. [w1, w2]' })
      .min(1, { error: 'expected at least one workspace (omit the key for every workspace)' })
      .optional(),
    tables: z
      .array(
        z.string().regex(/^[^.\s]+\.[^.\s]+$/, {
          error: 'expected schema.table (a bare table name would match that table in every schema)',
        }),
        { error: 'expected a list of schema.table names' },
      )
      .min(1, { error: 'expected at least one table (omit the key for every table)' })
      .optional(),
    roles: z
      .array(z.enum(ROLES, { error: `expected roles among ${ROLES.join(', ')}` }), {
        error: `expected a list of roles among ${ROLES.join(', ')}`,
      })
      .min(1)
      .optional(),
  },
  { error: 'expected a token or a mapping {token, name, workspaces, tables, roles}' },
);

export type TokenEntry = z.infer<typeof entrySchema>;

/** One token as held in memory: its SHA-256 only, so neither the file text nor the token stays around. */
interface StoredToken {
  digest: Buffer;
  credential: Credential;
}

function digestOf(token: string): Buffer {
  const m = SHA256.exec(token);
  return m ? Buffer.from(m[1]!.toLowerCase(), 'hex') : createHash('sha256').update(token).digest();
}

/** Whether the text is a YAML list (its first meaningful line starts with `- `), else token lines. */
function isYamlList(text: string): boolean {
  const first = text.split('\n').find((l) => l.trim() && !l.trim().startsWith('#'));
  return first !== undefined && /^\s*-(\s|$)/.test(first);
}

export function parseTokenFile(text: string): TokenEntry[] {
  let raw: unknown[];
  if (isYamlList(text)) {
    try {
      raw = parseYaml(text) as unknown[];
    } catch (err) {
      throw new TokenFileError(`not valid YAML: ${(err as Error).message.split('\n')[0]}`);
    }
  } else {
    raw = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
  }
  const entries = raw.map((item, i) => {
    const parsed = entrySchema.safeParse(typeof item === 'string' ? { token: item } : item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const at = issue.path.length ? ` ${issue.path.join('.')}` : '';
      const keys = issue.code === 'unrecognized_keys' ? ` (${issue.keys.join(', ')})` : '';
      throw new TokenFileError(`entry ${i + 1}${at}: ${issue.message}${keys}`);
    }
    const e = parsed.data;
    if (e.roles?.includes('admin') && (e.workspaces || e.tables))
      throw new TokenFileError(
        `entry ${i + 1}: a token scoped to workspaces or tables cannot have the admin role ` +
          '(admin routes show every workspace and table)',
      );
    return e;
  });
  if (entries.length === 0) throw new TokenFileError('holds no token (only blank or comment lines)');
  const seen = new Set<string>();
  for (const [i, e] of entries.entries()) {
    const hex = digestOf(e.token).toString('hex');
    if (seen.has(hex)) throw new TokenFileError(`entry ${i + 1}: the same token appears twice`);
    seen.add(hex);
  }
  return entries;
}

export class StaticTokens {
  private readonly stored: StoredToken[];

  constructor(entries: readonly TokenEntry[]) {
    this.stored = entries.map((e, i) => {
      const scope = { workspaces: e.workspaces ?? null, tables: e.tables ?? null };
      return {
        digest: digestOf(e.token),
        credential: Object.freeze({
          subject: e.name ?? `static-token-${i + 1}`,
          kind: 'static' as const,
          roles: e.roles ? new Set<Role>(e.roles) : defaultRoles(isScoped(scope)),
          ...scope,
        }),
      };
    });
  }

  get size(): number {
    return this.stored.length;
  }

  /**
   * The credential of a presented token, or null. Constant time in the token: the token is hashed and
   * the digest compared with every stored one by timingSafeEqual, without stopping at a match.
   */
  lookup(token: string): Credential | null {
    const digest = createHash('sha256').update(token).digest();
    let found: Credential | null = null;
    for (const s of this.stored) if (timingSafeEqual(digest, s.digest) && !found) found = s.credential;
    return found;
  }
}
