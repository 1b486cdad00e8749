import * as client from 'openid-client';

/**
 * OAuth 2.0 client-credentials access token from an OpenID provider (`--oidc`: the issuer, found by
 * discovery, or the token endpoint itself). The token is cached until shortly before it expires;
 * `invalidate` drops it after a 401 so the next `get` fetches a fresh one. Concurrent callers share
 * one request.
 */
export interface TokenSource {
  get(): Promise<string>;
  /** The resource server refused this token (401): forget it unless a newer one is already cached. */
  invalidate(token: string): void;
}

export interface OidcTokenOptions {
  /** Issuer URL (discovery) or token endpoint URL. */
  oidc: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  /** Refresh this long before expiry at most (also at most 10% of the lifetime). Default 30 s. */
  skewMs?: number;
  now?: () => number;
}

interface Cached {
  token: string;
  expiresAt: number;
  refreshAt: number;
}

export class OidcTokenSource implements TokenSource {
  /** Number of token requests made (tests, metrics). */
  fetches = 0;
  private cached?: Cached;
  private inflight?: Promise<Cached>;
  private configuration?: Promise<client.Configuration>;
  private readonly opts: OidcTokenOptions;
  private readonly now: () => number;

  constructor(opts: OidcTokenOptions) {
    if (!opts.clientId) throw new Error('--client-id is required with --oidc');
    if (!opts.clientSecret)
      throw new Error('--client-secret is required with --oidc (or TAG_CONNECTOR_CLIENT_SECRET_FILE)');
    this.opts = opts;
    this.now = opts.now ?? Date.now;
  }

  async get(): Promise<string> {
    const c = this.cached;
    if (c && this.now() < c.refreshAt) return c.token;
    this.inflight ??= this.fetch().finally(() => (this.inflight = undefined));
    return (await this.inflight).token;
  }

  invalidate(token: string): void {
    if (this.cached?.token === token) this.cached = undefined;
  }

  /** When the cached token expires (ms since epoch), for /jobs and tests. */
  get expiresAt(): number | undefined {
    return this.cached?.expiresAt;
  }

  private async fetch(): Promise<Cached> {
    const config = await (this.configuration ??= this.configure().catch((err) => {
      this.configuration = undefined;
      throw err;
    }));
    this.fetches++;
    const started = this.now();
    let res;
    try {
      res = await client.clientCredentialsGrant(
        config,
        this.opts.scope ? { scope: this.opts.scope } : undefined,
      );
    } catch (err) {
      throw new Error(`the OIDC provider: token request to ${this.opts.oidc} failed: ${describe(err)}`, {
        cause: err,
      });
    }
    const lifetimeMs = (res.expires_in ?? 300) * 1000;
    const skew = Math.min(this.opts.skewMs ?? 30_000, lifetimeMs / 10);
    const cached = {
      token: res.access_token,
      expiresAt: started + lifetimeMs,
      refreshAt: started + lifetimeMs - skew,
    };
    this.cached = cached;
    return cached;
  }

  private async configure(): Promise<client.Configuration> {
    const url = new URL(this.opts.oidc);
    const insecure = url.protocol === 'http:';
    if (/\/token\/?$/.test(url.pathname)) {
      // A token endpoint given directly: no discovery.
      const config = new client.Configuration(
        { issuer: url.origin, token_endpoint: url.href },
        this.opts.clientId,
        this.opts.clientSecret,
      );
      if (insecure) client.allowInsecureRequests(config);
      return config;
    }
    try {
      return await client.discovery(
        url,
        this.opts.clientId,
        this.opts.clientSecret,
        undefined,
        insecure ? { execute: [client.allowInsecureRequests] } : undefined,
      );
    } catch (err) {
      throw new Error(`the OIDC provider: discovery at ${url.href} failed: ${describe(err)}`, { cause: err });
    }
  }
}

function describe(err: unknown): string {
  const e = err as Error & { error?: string; error_description?: string; cause?: unknown };
  if (e.error) return `${e.error}${e.error_description ? `: ${e.error_description}` : ''}`;
  const cause = e.cause as Error | undefined;
  return cause?.message ? `${e.message} (${cause.message})` : e.message;
}

/** A fixed token (tests, or a workspace API without OIDC). */
export function staticToken(token: string): TokenSource {
  return { get: async () => token, invalidate: () => undefined };
}
