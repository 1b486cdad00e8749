import type { Config } from '../../config/index.ts';
import { INTERNAL_TABLES } from '../state/index.ts';

/** Which table plays which role (docs/design.md §4), resolved from the preset and explicit config. */
export interface RoleDef {
  table: string; // schema.table (partitioned tables: the root)
  idColumn: string;
  statusColumn?: string;
  contextColumn?: string;
}

export interface ResolvedRoles {
  task?: RoleDef;
  etlContext?: RoleDef;
  eventStore?: RoleDef;
}

/** What role resolution reads of the config. */
export type RolesConfig = Pick<Config, 'preset' | 'roles' | 'stateSchema'>;

/** What the table filter reads of the config. */
export type TableFilterConfig = Pick<
  Config,
  'schemas' | 'tables' | 'excludeTables' | 'tableRules' | 'stateSchema'
>;

export function resolveRoles(config: RolesConfig): ResolvedRoles {
  const s = config.stateSchema;
  const preset: ResolvedRoles =
    config.preset === 'none'
      ? {}
      : config.preset === 'pgboss'
        ? { task: { table: 'pgboss.job', idColumn: 'id', statusColumn: 'state' } }
        : {
            task: { table: 'pgboss.job', idColumn: 'id', statusColumn: 'state' },
            etlContext: { table: `${s}.etl_context`, idColumn: 'etl_context_id', statusColumn: 'etl_status' },
            eventStore: { table: `${s}.event_store`, idColumn: 'event_id', contextColumn: 'etl_context_id' },
          };
  return {
    ...preset,
    ...(config.roles.task ? { task: config.roles.task } : {}),
    ...(config.roles.etlContext ? { etlContext: config.roles.etlContext } : {}),
    ...(config.roles.eventStore ? { eventStore: config.roles.eventStore } : {}),
  };
}

/** Decides which tables (by partition root) are tracked. */
export class TableFilter {
  private readonly schemas: Set<string>;
  private readonly explicit: Set<string>;
  private readonly excluded: Set<string>;
  private readonly roleTables: Set<string>;
  readonly stateSchema: string;

  constructor(config: TableFilterConfig, roles: ResolvedRoles) {
    this.schemas = new Set(config.schemas);
    this.explicit = new Set(config.tables);
    this.excluded = new Set(config.excludeTables);
    // Role tables and tables with governance rules are tracked whatever the schemas say.
    this.roleTables = new Set([
      ...[roles.task, roles.etlContext, roles.eventStore]
        .filter((r): r is RoleDef => !!r)
        .map((r) => r.table),
      ...Object.keys(config.tableRules),
    ]);
    this.stateSchema = config.stateSchema;
  }

  isTracked(qualifiedRoot: string): boolean {
    if (this.excluded.has(qualifiedRoot)) return false;
    const dot = qualifiedRoot.indexOf('.');
    const schema = qualifiedRoot.slice(0, dot);
    if (
      schema === this.stateSchema &&
      (INTERNAL_TABLES as readonly string[]).includes(qualifiedRoot.slice(dot + 1))
    ) {
      return false;
    }
    if (this.roleTables.has(qualifiedRoot)) return true;
    if (this.explicit.size > 0) return this.explicit.has(qualifiedRoot);
    return this.schemas.has(schema);
  }

  /** wal2json `add-tables`: a coarse pre-filter (schemas of role tables whole, so partitions pass). */
  wal2jsonAddTables(): string {
    const patterns = new Set<string>();
    if (this.explicit.size > 0) for (const t of this.explicit) patterns.add(escapeWal2Json(t));
    else for (const s of this.schemas) patterns.add(`${escapeWal2Json(s)}.*`);
    for (const t of this.roleTables) {
      const schema = t.slice(0, t.indexOf('.'));
      patterns.add(schema === this.stateSchema ? escapeWal2Json(t) : `${escapeWal2Json(schema)}.*`);
    }
    return [...patterns].join(',');
  }

  /** wal2json `filter-tables`: what is excluded outright. */
  wal2jsonFilterTables(): string {
    const out = [...this.excluded].map(escapeWal2Json);
    for (const t of INTERNAL_TABLES) out.push(`${escapeWal2Json(this.stateSchema)}.${t}`);
    return out.join(',');
  }

  roleTableList(): string[] {
    return [...this.roleTables];
  }
  schemaList(): string[] {
    return [...this.schemas];
  }
  explicitList(): string[] {
    return [...this.explicit];
  }
}

/** wal2json table patterns escape `,`, `.`, `*` and spaces with a backslash. */
function escapeWal2Json(name: string): string {
  return name
    .split('.')
    .map((p) => p.replace(/([,.* \\])/g, '\\$1'))
    .join('.');
}
