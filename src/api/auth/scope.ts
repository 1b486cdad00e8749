import { AuthError, type Credential } from './credential.ts';

/**
 * Narrows a request's workspace filter to the credential's workspaces. No filter asked: all of the
 * credential's; asking for one outside them: 403. Unscoped credential: the request as asked.
 */
export function scopeWorkspaces(
  c: Credential | undefined,
  requested: Set<string> | null,
): Set<string> | null {
  const allowed = c?.workspaces;
  if (!allowed) return requested;
  if (!requested) return new Set(allowed);
  for (const w of requested)
    if (!allowed.includes(w)) throw new AuthError(403, 'forbidden', `this token may not read workspace ${w}`);
  return requested;
}

/**
 * Narrows a request's table filter to the credential's tables (always `schema.table`). A bare name in
 * the request stands for the allowed tables of that name; the result holds `schema.table` names only,
 * so a scoped caller never matches a same-named table of another schema.
 */
export function scopeTables(c: Credential | undefined, requested: Set<string> | null): Set<string> | null {
  const allowed = c?.tables;
  if (!allowed) return requested;
  if (!requested) return new Set(allowed);
  const out = new Set<string>();
  for (const r of requested) {
    const hits = r.includes('.')
      ? allowed.filter((a) => a === r)
      : allowed.filter((a) => a.endsWith(`.${r}`));
    if (hits.length === 0) throw new AuthError(403, 'forbidden', `this token may not read table ${r}`);
    for (const h of hits) out.add(h);
  }
  return out;
}

/** Whether a credential may see a table at all (for lists of table names: /info, headers, schemas). */
export function mayReadTable(c: Credential | undefined, table: string): boolean {
  return !c?.tables || c.tables.includes(table);
}

/** The old single entry point (`what` = 'workspace' | 'table'), kept for routes written against it. */
export function scopeFilter(
  c: Credential | undefined,
  requested: Set<string> | null,
  what: 'workspace' | 'table' | string,
): Set<string> | null {
  return what === 'workspace' ? scopeWorkspaces(c, requested) : scopeTables(c, requested);
}
