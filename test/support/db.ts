import pg from 'pg';
import { createDatabase, dropDatabase } from './pg.ts';

export function adminUrl(): string {
  const url = process.env.PGURL;
  if (!url)
    throw new Error(
      'PGURL is not set: run the tests through script/test (or eval "$(script/services up pg)")',
    );
  return url;
}

/** A fresh database for one test file; `drop` removes it and its slots. */
export async function testDatabase(prefix = 't'): Promise<{ url: string; drop: () => Promise<void> }> {
  const admin = adminUrl();
  const url = await createDatabase(admin, prefix);
  return { url, drop: () => dropDatabase(admin, url) };
}

export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}
