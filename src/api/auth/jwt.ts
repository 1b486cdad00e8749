import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { AuthError, defaultRoles, isScoped, ROLES, type Credential, type Role } from './credential.ts';

/**
 * JWT access tokens of one OpenID issuer, for this API alone (docs/security.md):
 * - the issuer's discovery document gives the JWKS and the exact `iss` to expect (a trailing slash
 *   included: the issuer is compared as discovery gives it, never normalised);
 * - `aud` must hold the configured audience, `azp`/`client_id` one of the allowed clients if any;
 * - only asymmetric algorithms: `none` and HS* (a public key used as an HMAC secret) are refused;
 * - ID tokens are refused: they prove a login to some client, they do not grant access to us;
 * - at most 60 s of clock skew;
 * - keys are cached; a token with an unknown `kid` refetches the JWKS, never within the cooldown of
 *   the last fetch (jose's remote JWK set: a flood of forged kids cannot hammer the issuer).
 */

export interface JwtOptions {
  issuer: string;
  audience: string;
  /** Allowed `azp` / `client_id` values; undefined = any client of the issuer. */
  clients?: readonly string[];
}

export const ASYMMETRIC_ALGS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;

export const CLOCK_SKEW_SECONDS = 60;
/** No JWKS refetch for an unknown kid within this long of the last fetch (docs/security.md). */
const JWKS_COOLDOWN_MS = 30_000;
/** Keys are refetched at least this often even when every kid is known (rotation, revocation). */
const JWKS_MAX_AGE_MS = 10 * 60_000;
/** A failed discovery is retried by the next request after this long, not by every request. */
const DISCOVERY_RETRY_MS = 5_000;

interface Discovered {
  issuer: string;
  keys: ReturnType<typeof createRemoteJWKSet>;
}

/** Claims that only ID tokens carry (OpenID Connect Core §2, §3.1.3.6, §3.3.2.11; Keycloak's `typ`). */
function looksLikeIdToken(header: { typ?: string }, claims: JWTPayload): boolean {
  const typ = header.typ?.toLowerCase();
  if (typ === 'at+jwt' || typ === 'application/at+jwt') return false;
  if (typ && typ !== 'jwt') return true;
  if (typeof claims.typ === 'string' && claims.typ.toLowerCase() === 'id') return true;
  return ['nonce', 'at_hash', 'c_hash', 's_hash'].some((k) => k in claims);
}

function list(v: unknown): string[] | null {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string') return v.split(/[\s,]+/).filter(Boolean);
  return null;
}

/** Roles from a `roles` claim, else the role words of `scope`; a token naming none gets the default. */
function rolesOf(claims: JWTPayload, scoped: boolean): ReadonlySet<Role> {
  const named =
    list(claims.roles) ?? list(claims.scope)?.filter((s) => (ROLES as readonly string[]).includes(s));
  const roles = (named ?? []).filter((r): r is Role => (ROLES as readonly string[]).includes(r));
  if (claims.roles === undefined && roles.length === 0) return defaultRoles(scoped);
  // A scoped token never holds admin (credential.ts).
  return new Set(scoped ? roles.filter((r) => r !== 'admin') : roles);
}

export class JwtVerifier {
  private discovered?: Promise<Discovered>;
  private readonly opts: JwtOptions;

  constructor(opts: JwtOptions) {
    this.opts = opts;
  }

  private discover(): Promise<Discovered> {
    this.discovered ??= (async () => {
      // OpenID Discovery §4: the well-known path is appended to the issuer without its trailing slash.
      const url = `${this.opts.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
      const doc = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (typeof doc.issuer !== 'string' || typeof doc.jwks_uri !== 'string')
        throw new Error(`${url} has no issuer or jwks_uri`);
      // The document must be the configured issuer's own (Discovery §4.3); a slash is all we forgive.
      if (doc.issuer.replace(/\/$/, '') !== this.opts.issuer.replace(/\/$/, ''))
        throw new Error(`${url} names the issuer ${doc.issuer}, not ${this.opts.issuer}`);
      const keys = createRemoteJWKSet(new URL(doc.jwks_uri), {
        cooldownDuration: JWKS_COOLDOWN_MS,
        cacheMaxAge: JWKS_MAX_AGE_MS,
        timeoutDuration: 5000,
      });
      return { issuer: doc.issuer, keys };
    })();
    this.discovered.catch(() => {
      setTimeout(() => (this.discovered = undefined), DISCOVERY_RETRY_MS).unref();
    });
    return this.discovered;
  }

  /** Warms the discovery document and keys (a failure is retried on the next request). */
  async warm(): Promise<void> {
    await this.discover();
  }

  async verify(token: string): Promise<Credential> {
    let header: { alg?: string; typ?: string };
    try {
      header = decodeProtectedHeader(token);
    } catch {
      throw new AuthError(401, 'invalid_token', 'invalid token');
    }
    if (!header.alg || !(ASYMMETRIC_ALGS as readonly string[]).includes(header.alg))
      throw new AuthError(401, 'invalid_token', `token algorithm ${header.alg ?? 'none'} is not accepted`);
    let discovered: Discovered;
    try {
      discovered = await this.discover();
    } catch (err) {
      throw new AuthError(
        503,
        'issuer_unavailable',
        `cannot reach the token issuer: ${(err as Error).message}`,
      );
    }
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, discovered.keys, {
        issuer: discovered.issuer,
        audience: this.opts.audience,
        algorithms: [...ASYMMETRIC_ALGS],
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof errors.JWKSTimeout)
        throw new AuthError(503, 'issuer_unavailable', 'the token issuer did not answer in time');
      const reason =
        err instanceof errors.JWTExpired
          ? 'token expired'
          : err instanceof errors.JWTClaimValidationFailed
            ? `token claim ${err.claim} is not accepted`
            : err instanceof errors.JWKSNoMatchingKey
              ? 'token signed by a key the issuer does not publish'
              : 'token signature or format is not valid';
      throw new AuthError(401, 'invalid_token', reason);
    }
    if (looksLikeIdToken(header, claims))
      throw new AuthError(401, 'invalid_token', 'an ID token is not an access token');
    const client = (claims.azp ?? claims.client_id) as unknown;
    if (this.opts.clients && !(typeof client === 'string' && this.opts.clients.includes(client)))
      throw new AuthError(401, 'invalid_token', 'token issued to a client this API does not accept');
    const scope = { workspaces: list(claims.workspaces), tables: list(claims.tables) };
    if (scope.tables?.some((t) => !/^[^.\s]+\.[^.\s]+$/.test(t)))
      throw new AuthError(401, 'invalid_token', 'token claim tables must list schema.table names');
    return Object.freeze({
      subject: String(claims.sub ?? client ?? 'jwt'),
      kind: 'jwt' as const,
      roles: rolesOf(claims, isScoped(scope)),
      ...scope,
    });
  }
}
