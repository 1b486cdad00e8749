import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClientError, GraphQLClient } from 'graphql-request';
import type { TokenSource } from './token.ts';

/**
 * Reads the workspace from its GraphQL API one page at a time (an async iterator of pages, so memory
 * stays bounded by the page size however many items there are). Paging by cursor (`$first`/`$after`,
 * a connection `{nodes, pageInfo{hasNextPage endCursor}}`) or by offset (`$limit`/`$offset`, a list).
 * 5xx, 429, timeouts and network errors are retried with exponential backoff and jitter; a 401 drops
 * the token and retries once with a fresh one.
 */

export type Item = Record<string, unknown>;

export interface WorkspaceReaderOptions {
  url: string;
  query: string;
  paging: 'cursor' | 'offset';
  /** Dotted path of the page (connection or list) inside `data`. */
  itemsPath: string;
  idField: string;
  pageSize: number;
  timeoutMs: number;
  retries: number;
  retryBaseMs: number;
  token?: TokenSource;
  /** Extra variables for every page (e.g. a workspace id). */
  variables?: Record<string, unknown>;
  onRetry?: (info: { attempt: number; delayMs: number; error: string }) => void;
}

export interface Page {
  items: Item[];
  /** Index of the page, from 0. */
  index: number;
}

export const DEFAULT_CURSOR_QUERY = `query WorkspaceItems($first: Int!, $after: String) {
  items(first: $first, after: $after) {
    nodes { id type name status data updatedAt }
    pageInfo { hasNextPage endCursor }
  }
}`;

export const DEFAULT_OFFSET_QUERY = `query WorkspaceItems($limit: Int!, $offset: Int!) {
  itemList(limit: $limit, offset: $offset) { id type name status data updatedAt }
}`;

/** `--ws-query`: the query text, or `@path` of a file holding it; defaults by paging mode. */
export function resolveQuery(option: string | undefined, paging: 'cursor' | 'offset'): string {
  if (!option) return paging === 'cursor' ? DEFAULT_CURSOR_QUERY : DEFAULT_OFFSET_QUERY;
  return option.startsWith('@') ? readFileSync(option.slice(1), 'utf8') : option;
}

/** Thrown when the API keeps failing after all retries, or fails in a way retrying cannot fix. */
export class WorkspaceError extends Error {
  readonly status?: number;
  readonly retryable: boolean;
  constructor(message: string, opts: { status?: number; retryable: boolean; cause?: unknown }) {
    super(message, { cause: opts.cause });
    this.name = 'WorkspaceError';
    this.status = opts.status;
    this.retryable = opts.retryable;
  }
}

export class WorkspaceReader {
  /** Requests sent, retries made (tests, metrics). */
  requests = 0;
  retries = 0;
  private readonly opts: WorkspaceReaderOptions;
  private readonly client: GraphQLClient;

  constructor(opts: WorkspaceReaderOptions) {
    this.opts = opts;
    this.client = new GraphQLClient(opts.url);
  }

  async *pages(signal?: AbortSignal): AsyncGenerator<Page> {
    const { pageSize, paging } = this.opts;
    let after: string | null = null;
    let offset = 0;
    for (let index = 0; ; index++) {
      signal?.throwIfAborted();
      const vars: Record<string, unknown> =
        paging === 'cursor' ? { first: pageSize, after } : { limit: pageSize, offset };
      const data = await this.request({ ...this.opts.variables, ...vars }, signal);
      const page = pathGet(data, this.opts.itemsPath);
      if (paging === 'cursor') {
        const conn = page as { nodes?: Item[]; edges?: { node: Item }[]; pageInfo?: PageInfo } | null;
        if (!conn || typeof conn !== 'object')
          throw new WorkspaceError(`no connection at data.${this.opts.itemsPath}`, { retryable: false });
        const items = conn.nodes ?? conn.edges?.map((e) => e.node) ?? [];
        yield { items: this.checked(items), index };
        const info = conn.pageInfo;
        if (!info?.hasNextPage || !info.endCursor || items.length === 0) return;
        after = info.endCursor;
      } else {
        if (!Array.isArray(page))
          throw new WorkspaceError(`no list at data.${this.opts.itemsPath}`, { retryable: false });
        yield { items: this.checked(page as Item[]), index };
        if (page.length < pageSize) return;
        offset += page.length;
      }
    }
  }

  private checked(items: Item[]): Item[] {
    for (const item of items) {
      const id = item?.[this.opts.idField];
      if (typeof id !== 'string' && typeof id !== 'number')
        throw new WorkspaceError(
          `an item has no ${this.opts.idField}: ${JSON.stringify(item).slice(0, 200)}`,
          {
            retryable: false,
          },
        );
    }
    return items;
  }

  /** One page request with retries; returns `data`. */
  private async request(variables: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    const { retries, retryBaseMs } = this.opts;
    let refreshedAfter401 = false;
    for (let attempt = 0; ; attempt++) {
      let token: string | undefined;
      try {
        token = this.opts.token ? await this.opts.token.get() : undefined;
        return await this.once(variables, token, signal);
      } catch (raw) {
        signal?.throwIfAborted();
        const err = classify(raw, this.opts.url);
        if (err.status === 401 && token && this.opts.token && !refreshedAfter401) {
          this.opts.token.invalidate(token);
          refreshedAfter401 = true;
          attempt--; // a refused token is not a failed attempt
          continue;
        }
        if (!err.retryable || attempt >= retries) {
          if (err.retryable)
            throw new WorkspaceError(`${err.message} (gave up after ${attempt + 1} attempts)`, {
              status: err.status,
              retryable: true,
              cause: raw,
            });
          throw err;
        }
        const delayMs = Math.round(retryBaseMs * 2 ** attempt * (0.75 + Math.random() * 0.5));
        this.retries++;
        this.opts.onRetry?.({ attempt: attempt + 1, delayMs, error: err.message });
        await sleep(delayMs, undefined, { signal });
      }
    }
  }

  private async once(variables: Record<string, unknown>, token: string | undefined, signal?: AbortSignal) {
    this.requests++;
    const timeout = AbortSignal.timeout(this.opts.timeoutMs);
    const res = await this.client.rawRequest<Record<string, unknown>>({
      query: this.opts.query,
      variables,
      requestHeaders: token ? { authorization: `Bearer ${token}` } : {},
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (res.errors?.length)
      throw new WorkspaceError(`GraphQL errors: ${res.errors.map((e) => e.message).join('; ')}`, {
        retryable: false,
      });
    return res.data;
  }
}

interface PageInfo {
  hasNextPage?: boolean;
  endCursor?: string | null;
}

function classify(err: unknown, url: string): WorkspaceError {
  if (err instanceof WorkspaceError) return err;
  if (err instanceof ClientError) {
    const status = err.response.status;
    const gqlErrors = err.response.errors?.map((e) => e.message).join('; ');
    const retryable = status >= 500 || status === 429 || status === 408;
    const what = status >= 200 && status < 300 ? 'GraphQL errors' : `HTTP ${status}`;
    return new WorkspaceError(`workspace API ${url}: ${what}${gqlErrors ? `: ${gqlErrors}` : ''}`, {
      status,
      retryable: retryable || (status >= 200 && status < 300 ? false : retryable),
      cause: err,
    });
  }
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError')
    return new WorkspaceError(`workspace API ${url}: request timed out`, { retryable: true, cause: err });
  const code = e.cause?.code ?? '';
  return new WorkspaceError(
    `workspace API ${url}: ${e.message}${code ? ` (${code})` : e.cause?.message ? ` (${e.cause.message})` : ''}`,
    { retryable: true, cause: err },
  );
}

export function pathGet(value: unknown, path: string): unknown {
  let cur = value;
  for (const key of path.split('.').filter(Boolean)) {
    if (cur == null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
