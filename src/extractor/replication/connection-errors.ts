/**
 * Whether a query failed for want of a working connection (the server restarting, the network,
 * credentials): worth retrying. SQLSTATE classes 08 (connection exception), 28 (invalid
 * authorization), 53 (insufficient resources: too many connections), 57 (operator intervention:
 * admin/crash shutdown, cannot connect now); a Node socket error (ECONNREFUSED, ECONNRESET, ...); or
 * node-postgres's own "Connection terminated" errors, which carry no code.
 */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return /connection|terminated|timeout/i.test((err as Error).message ?? '');
  return /^(08|28|53|57)/.test(code) || /^E[A-Z]+$/.test(code);
}

/** Refused credentials (SQLSTATE class 28: 28P01 wrong password, 28000 no pg_hba entry or role). */
export function isAuthError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('28');
}
