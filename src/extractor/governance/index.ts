import { TableGovernor } from './table.ts';
import type { TableRules } from './rules.ts';

export { TableGovernor, GovernanceError, type GovernedChange } from './table.ts';
export {
  tableRulesSchema,
  tableRuleSchema,
  tableTopicRoutes,
  expandTopic,
  needsMaskKey,
  type TableRule,
  type TableRules,
} from './rules.ts';
export { checkFilter, compileFilter, celRow, FilterError } from './filter.ts';
export { maskerFor, valueText, REDACTED_VALUE } from './mask.ts';
export { eventSchema, rowSchema, valueSchema, type SchemaColumn } from './json-schema.ts';

/**
 * Every table's rules (docs/governance.md), compiled once: CEL filters parsed, maskers built. The mapper,
 * the Snapshot route and backfill ask it for a table's governor; a reload swaps the whole object.
 */
export class Governance {
  private readonly governors = new Map<string, TableGovernor>();

  constructor(rules: TableRules, maskKey?: string) {
    const key = maskKey === undefined ? undefined : Buffer.from(maskKey, 'utf8');
    for (const [table, rule] of Object.entries(rules))
      this.governors.set(table, new TableGovernor(table, rule, key));
  }

  /** The governor of a table (schema.table, a partition's root), or undefined when it has no rules. */
  for(table: string): TableGovernor | undefined {
    return this.governors.size === 0 ? undefined : this.governors.get(table);
  }

  tables(): string[] {
    return [...this.governors.keys()];
  }

  /** Tables whose deletes are followed by a Kafka tombstone. */
  tombstoneTables(): Set<string> {
    return new Set([...this.governors.values()].filter((g) => g.tombstones).map((g) => g.table));
  }
}
