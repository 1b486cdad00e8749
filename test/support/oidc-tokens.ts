import { createHmac, createPublicKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';

/**
 * Tokens for the API auth tests, from the real OpenID provider (test/support/oidc.ts): access tokens
 * by the client-credentials grant, and, signed with the issuer's own key (its JWKS file), the tokens
 * a provider would not hand out on request (expired ones, ID tokens). Plus forgeries: another key,
 * `alg: none`, HS256 keyed with the issuer's public key.
 */

function env(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run with TEST_SERVICES including oidc`);
  return v;
}

export const issuer = () => env('OIDC_ISSUER');

/** A client-credentials access token; `resource` picks the audience (startjob/oidc-server.ts). */
export async function clientToken(
  opts: { clientId?: string; secret?: string; resource?: string; scope?: string; issuer?: string } = {},
): Promise<string> {
  const clientId = opts.clientId ?? env('OIDC_CLIENT_ID');
  const secret = opts.secret ?? env('OIDC_CLIENT_SECRET');
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  if (opts.resource) body.set('resource', opts.resource);
  if (opts.scope) body.set('scope', opts.scope);
  const res = await fetch(`${(opts.issuer ?? issuer()).replace(/\/$/, '')}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body,
  });
  const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  if (!json.access_token) throw new Error(`token request: ${res.status} ${JSON.stringify(json)}`);
  return json.access_token;
}

function issuerKey(): JWK & { kid: string } {
  return (JSON.parse(readFileSync(env('OIDC_JWKS_FILE'), 'utf8')) as { keys: (JWK & { kid: string })[] })
    .keys[0]!;
}

const now = () => Math.floor(Date.now() / 1000);

/** Claims of a well-formed access token for the API, to vary. */
export function accessClaims(extra: JWTPayload = {}): JWTPayload {
  return {
    iss: issuer(),
    aud: 'tag-connector',
    sub: 'tagc-test',
    client_id: 'tagc-test',
    iat: now(),
    exp: now() + 600,
    jti: randomUUID(),
    ...extra,
  };
}

/** Signs with the issuer's own key (as the provider would). */
export async function signedByIssuer(claims: JWTPayload, typ = 'at+jwt'): Promise<string> {
  const jwk = issuerKey();
  const key = await importJWK(jwk, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: jwk.kid, typ }).sign(key);
}

/** Signs with a key the issuer never published (its kid unknown to the JWKS). */
export async function signedByForeignKey(claims: JWTPayload): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', kid: `foreign-${randomUUID()}`, typ: 'at+jwt' })
    .sign(privateKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** An unsecured JWT (`alg: none`, empty signature). */
export function unsigned(claims: JWTPayload): string {
  return `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`;
}

/** HS256 keyed with the issuer's public key (PEM), the classic algorithm-confusion forgery. */
export function hs256WithPublicKey(claims: JWTPayload): string {
  const jwk = issuerKey();
  const pem = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e } as never, format: 'jwk' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
  const input = `${b64({ alg: 'HS256', kid: jwk.kid, typ: 'at+jwt' })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
}
