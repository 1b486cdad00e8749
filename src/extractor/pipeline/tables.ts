import { describePgError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { Catalog, TableInfo } from '../decode/index.ts';
import { isConnectionError } from '../replication/index.ts';

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Table metadata for the pipeline: the catalog's cache with the last table checked first (changes
 * come in runs of one table), and loads that wait out a connection failure instead of failing the
 * daemon: a change of a table not cached yet can arrive just as PostgreSQL restarts, and its catalog
 * query then meets the restart window that the replication link is reconnecting through.
 */
export class TableLookup {
  private readonly catalog: Catalog;
  private readonly log: Logger;
  private readonly keepTrying: () => boolean;
  private lastInfo?: TableInfo;
  private lastSchema = '';
  private lastTable = '';
  /** The failure a load is waiting out, if any (readiness reports it). */
  failing?: Error;

  /** `keepTrying` says whether a failed load should still be retried (false once stopping). */
  constructor(catalog: Catalog, logger: Logger, keepTrying: () => boolean) {
    this.catalog = catalog;
    this.log = logger;
    this.keepTrying = keepTrying;
  }

  cached(schema: string, table: string): TableInfo | undefined {
    if (this.lastInfo && schema === this.lastSchema && table === this.lastTable) return this.lastInfo;
    const info = this.catalog.cached(schema, table);
    this.lastInfo = info;
    this.lastSchema = schema;
    this.lastTable = table;
    return info;
  }

  /**
   * `f` of the table's metadata: at once when it is cached (the stream's usual case stays synchronous),
   * else once it is loaded.
   */
  withInfo<T>(schema: string, table: string, f: (info: TableInfo) => T | Promise<T>): T | Promise<T> {
    const info = this.cached(schema, table);
    if (info) return f(info);
    return this.load(schema, table).then(f);
  }

  invalidate(schema: string, table: string): void {
    this.catalog.invalidate(schema, table);
    this.lastInfo = undefined;
  }

  async load(schema: string, table: string): Promise<TableInfo> {
    for (let attempt = 1; ; attempt++) {
      try {
        const info = await this.catalog.load(schema, table);
        if (this.failing) this.log.info({ table: `${schema}.${table}` }, 'catalog reachable again');
        this.failing = undefined;
        return info;
      } catch (err) {
        if (!isConnectionError(err) || !this.keepTrying()) throw err;
        const e = describePgError(err as Error);
        this.failing = e;
        this.log.warn(
          { err: e.message, table: `${schema}.${table}`, attempt },
          'catalog query failed; retrying',
        );
        await delay(Math.min(5000, 100 * 2 ** Math.min(attempt - 1, 6)));
      }
    }
  }
}
