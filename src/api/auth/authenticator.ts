import { readFileSync } from 'node:fs';
import { ConnectorError, EXIT } from '../../errors.ts';
import { ANONYMOUS, AuthError, type Credential } from './credential.ts';
import { JwtVerifier, type JwtOptions } from './jwt.ts';
import { isLoopback } from './listen.ts';
import { parseTokenFile, StaticTokens, TokenFileError } from './static-tokens.ts';

/** The API auth settings, the same for extract-tasks and start-job (never start-job's --oidc). */
export interface AuthOptions {
  tokensFile?: string;
  jwt?: JwtOptions;
  listenHost: string;
  insecureListen: boolean;
}

export function authOptions(config: {
  authTokensFile?: string;
  authJwtIssuer?: string;
  authJwtAudience?: string;
  authJwtClients?: readonly string[];
  serverHost: string;
  insecureListen: boolean;
}): AuthOptions {
  return {
    tokensFile: config.authTokensFile,
    jwt: config.authJwtIssuer
      ? {
          issuer: config.authJwtIssuer,
          // The config schema requires the audience whenever the issuer is set.
          audience: config.authJwtAudience!,
          clients: config.authJwtClients?.length ? config.authJwtClients : undefined,
        }
      : undefined,
    listenHost: config.serverHost,
    insecureListen: config.insecureListen,
  };
}

function configError(flag: string, message: string): ConnectorError {
  return new ConnectorError('E_CONFIG', `invalid configuration: ${flag}: ${message}`, EXIT.config);
}

/**
 * Turns a bearer token into a credential. Fails closed: built only from sources that yield at least
 * one credential (else a config error, exit 2, naming the flag), and refusing to exist for a
 * non-loopback listen address with no source unless --insecure-listen.
 */
export class Authenticator {
  readonly enabled: boolean;
  private readonly tokens: StaticTokens | undefined;
  private readonly jwt: JwtVerifier | undefined;

  private constructor(tokens: StaticTokens | undefined, jwt: JwtVerifier | undefined) {
    this.tokens = tokens;
    this.jwt = jwt;
    this.enabled = Boolean(tokens || jwt);
  }

  static fromOptions(opts: AuthOptions): Authenticator {
    let tokens: StaticTokens | undefined;
    if (opts.tokensFile !== undefined) {
      const flag = `--auth-tokens-file ${opts.tokensFile}`;
      let text: string;
      try {
        text = readFileSync(opts.tokensFile, 'utf8');
      } catch (err) {
        throw configError(flag, `cannot read the file: ${(err as Error).message}`);
      }
      try {
        tokens = new StaticTokens(parseTokenFile(text));
      } catch (err) {
        if (err instanceof TokenFileError) throw configError(flag, err.message);
        throw err;
      }
    }
    const jwt = opts.jwt ? new JwtVerifier(opts.jwt) : undefined;
    const auth = new Authenticator(tokens, jwt);
    if (!auth.enabled && !isLoopback(opts.listenHost) && !opts.insecureListen)
      throw configError(
        `--serverHost ${opts.listenHost}`,
        'refusing to serve a non-loopback address without auth: set --auth-tokens-file or ' +
          '--auth-jwt-issuer with --auth-jwt-audience (docs/security.md), or pass --insecure-listen',
      );
    return auth;
  }

  /** Starts fetching the issuer's discovery document and keys; failures are retried on use. */
  warm(onError: (err: Error) => void): void {
    this.jwt?.warm().catch(onError);
  }

  async authenticate(header: string | undefined): Promise<Credential> {
    if (!this.enabled) return ANONYMOUS;
    const m = /^Bearer +([\x21-\x7e]+)$/i.exec(header ?? '');
    if (!m) throw new AuthError(401, 'unauthorized', 'missing bearer token (Authorization: Bearer <token>)');
    const token = m[1]!;
    const found = this.tokens?.lookup(token);
    if (found) return found;
    if (this.jwt && token.split('.').length === 3) return this.jwt.verify(token);
    throw new AuthError(401, 'invalid_token', 'invalid token');
  }
}
