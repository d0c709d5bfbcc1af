/**
 * PostgreSQL for tests: the run's cluster (test/support/postgres-cluster.ts) and a schema of each test's own, so
 * tests in parallel never see each other's tables. `dropSchema` removes it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export function postgresUrl(): string {
  const url = process.env['AGENT_PDP_TEST_PG_URL'];
  if (url === undefined) throw new Error('AGENT_PDP_TEST_PG_URL is not set: run the tests through vitest (its global setup starts PostgreSQL)');
  return url;
}

/** A new, unused schema name (the store creates the schema when it opens). */
export function newSchema(prefix = 't'): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Runs SQL on the test cluster (setup, sabotage, inspection) in `schema`. */
export async function pgQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(schema: string, text: string, values: unknown[] = []): Promise<R[]> {
  return pgSession(schema, async (query) => query<R>(text, values));
}

const INT8 = 20;

/**
 * Runs `fn` with one connection in `schema` (for statements that must share a session: SET, then EXPLAIN). BIGINT
 * columns read as numbers, as the store reads them, so rows compare equal on both engines.
 */
export async function pgSession<T>(
  schema: string,
  fn: (query: <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]) => Promise<R[]>) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    connectionString: postgresUrl(),
    options: `-c search_path=${schema}`,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8 ? Number : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
    },
  });
  await client.connect();
  try {
    return await fn(async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []) => (await client.query<R>(text, values)).rows);
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}
