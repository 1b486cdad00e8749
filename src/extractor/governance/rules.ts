import { z } from 'zod';
import { checkFilter } from './filter.ts';

/**
 * Per-table governance rules (docs/governance.md): the YAML `tables:` mapping, keyed by `schema.table`
 * (a partitioned table by its root). This is a slice of the one config schema (src/config/schema.ts).
 */

const MASK = /^(hmac-sha256|redact|truncate\((\d{1,9})\))$/;

const columnList = z.array(z.string().min(1), { error: 'expected a list of column names' });

const booleanish = z.preprocess(
  (v) => (v === 'true' ? true : v === 'false' ? false : v),
  z.boolean({ error: 'expected true or false' }),
);

export const tableRuleSchema = z
  .object({
    columns: z
      .object({ include: columnList.optional(), exclude: columnList.optional() })
      .strict()
      .refine((c) => !(c.include && c.exclude), { error: 'expected include or exclude, not both' })
      .optional(),
    mask: z
      .record(
        z.string().min(1),
        z.string().regex(MASK, { error: 'expected hmac-sha256, redact or truncate(n)' }),
      )
      .default({}),
    filter: z.string().min(1, { error: 'expected a CEL expression' }).optional(),
    key: z
      .preprocess((v) => (typeof v === 'string' ? [v] : v), columnList.min(1, { error: 'expected a column' }))
      .optional(),
    topic: z
      .string()
      .min(1)
      .refine((t) => !/\{(?!schema\}|table\})/.test(t), {
        error: 'expected a topic; the only placeholders are {schema} and {table}',
      })
      .optional(),
    tombstones: booleanish.default(false),
  })
  .strict();

export const tableRulesSchema = z
  .record(z.string().regex(/^[^.]+\.[^.]+$/, { error: 'expected schema.table' }), tableRuleSchema)
  .default({})
  .superRefine((rules, ctx) => {
    for (const [table, rule] of Object.entries(rules)) {
      const shown = (name: string) => isShown(rule, name);
      for (const k of rule.key ?? [])
        if (!shown(k))
          ctx.addIssue({ code: 'custom', path: [table, 'key'], message: `key column ${k} is excluded` });
      for (const m of Object.keys(rule.mask))
        if (!shown(m))
          ctx.addIssue({
            code: 'custom',
            path: [table, 'mask', m],
            message: `masked column ${m} is excluded`,
          });
      if (rule.filter !== undefined) {
        const problem = checkFilter(rule.filter);
        if (problem) ctx.addIssue({ code: 'custom', path: [table, 'filter'], message: problem });
      }
    }
  });

export type TableRule = z.infer<typeof tableRuleSchema>;
export type TableRules = z.infer<typeof tableRulesSchema>;

/** Whether a column is in the governed view (columns.include / columns.exclude). */
export function isShown(rule: TableRule, column: string): boolean {
  const c = rule.columns;
  if (c?.include) return c.include.includes(column);
  if (c?.exclude) return !c.exclude.includes(column);
  return true;
}

export type MaskSpec = { kind: 'hmac-sha256' } | { kind: 'redact' } | { kind: 'truncate'; length: number };

export function parseMask(spec: string): MaskSpec {
  const m = MASK.exec(spec);
  if (!m) throw new Error(`unknown mask ${spec}`);
  if (m[2] !== undefined) return { kind: 'truncate', length: Number(m[2]) };
  return { kind: m[1] as 'hmac-sha256' | 'redact' };
}

/** Whether any rule masks with an HMAC (then a mask key is required). */
export function needsMaskKey(rules: TableRules): boolean {
  return Object.values(rules).some((r) => Object.values(r.mask).includes('hmac-sha256'));
}

/** A table's topic from its template: `{schema}` and `{table}` replaced. */
export function expandTopic(template: string, qualified: string): string {
  const dot = qualified.indexOf('.');
  return template
    .replaceAll('{schema}', qualified.slice(0, dot))
    .replaceAll('{table}', qualified.slice(dot + 1));
}

/** topicRoutes entries of the tables' own topics (a table's own topic wins over a route by its name). */
export function tableTopicRoutes(rules: TableRules): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [table, rule] of Object.entries(rules))
    if (rule.topic) out[table] = expandTopic(rule.topic, table);
  return out;
}
