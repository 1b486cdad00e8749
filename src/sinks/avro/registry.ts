import { ConnectorError } from '../../errors.ts';

/**
 * A small client of the Confluent Schema Registry REST API (the subset a producer needs), which
 * Confluent's registry, Karapace and Apicurio's ccompat API (`<apicurio>/apis/ccompat/v7`) all serve.
 * Our own rather than a library's: two calls over fetch, and the npm clients pull in a Kafka serde stack
 * we do not use.
 */

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

/** The registry refused a schema (HTTP 409: incompatible with the subject's earlier versions). */
export class SchemaIncompatibleError extends ConnectorError {
  constructor(message: string) {
    super('schema_incompatible', message);
    this.name = 'SchemaIncompatibleError';
  }
}

export interface SchemaRegistryOptions {
  /**
   * Base URL, e.g. http://registry:8081 (Confluent) or http://apicurio:8080/apis/ccompat/v7; user info
   * (`https://key:secret@host`) is sent as HTTP Basic authentication and never shown in errors.
   */
  url: string;
  /** Per request [10000]. */
  timeoutMs?: number;
}

interface RegistryErrorBody {
  error_code?: number;
  message?: string;
}

export class SchemaRegistryClient {
  private readonly base: string;
  private readonly timeoutMs: number;

  /** HTTP Basic credentials from the URL's user info (fetch refuses URLs that carry them). */
  private readonly authorization?: string;

  constructor(o: SchemaRegistryOptions) {
    const url = new URL(o.url);
    if (url.username || url.password) {
      const user = decodeURIComponent(url.username);
      const password = decodeURIComponent(url.password);
      this.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    this.base = url.toString().replace(/\/+$/, '');
    this.timeoutMs = o.timeoutMs ?? 10_000;
  }

  /**
   * Registers an Avro schema under a subject (a new version unless the subject has it already) and
   * returns its global id. A 409 (incompatible) is a SchemaIncompatibleError, other 4xx a
   * ConnectorError (retrying cannot help); 5xx and network errors are plain errors (retried).
   */
  async register(subject: string, schema: string): Promise<number> {
    const body = await this.request('POST', `/subjects/${encodeURIComponent(subject)}/versions`, {
      schema,
      schemaType: 'AVRO',
    });
    const id = (body as { id?: unknown }).id;
    if (typeof id !== 'number')
      throw new Error(`schema registry: no id in the answer to registering ${subject}`);
    return id;
  }

  /** The schema (its JSON text) with a global id. */
  async schemaById(id: number): Promise<string> {
    const body = await this.request('GET', `/schemas/ids/${id}`);
    return (body as { schema: string }).schema;
  }

  /** The compatibility level of a subject (or the global one without a subject). */
  async setCompatibility(level: string, subject?: string): Promise<void> {
    await this.request('PUT', subject ? `/config/${encodeURIComponent(subject)}` : '/config', {
      compatibility: level,
    });
  }

  private async request(method: string, path: string, payload?: unknown): Promise<unknown> {
    const url = this.base + path;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          accept: CONTENT_TYPE,
          ...(payload ? { 'content-type': CONTENT_TYPE } : {}),
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
        ...(payload ? { body: JSON.stringify(payload) } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new Error(`schema registry ${this.base}: ${method} ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { message: text.slice(0, 200) };
    }
    if (res.ok) return body;
    const e = body as RegistryErrorBody;
    const what = `schema registry ${this.base}: ${method} ${path}: HTTP ${res.status}${e.error_code ? ` (${e.error_code})` : ''}: ${e.message ?? ''}`;
    if (res.status === 409) throw new SchemaIncompatibleError(what);
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429)
      throw new ConnectorError('schema_registry', what);
    throw new Error(what);
  }
}
