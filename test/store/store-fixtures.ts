/**
 * Real stores: SQLite files in a temp folder, or, when the test project runs the store suite on PostgreSQL
 * (AGENT_PDP_TEST_STORE_ENGINE=postgres, vitest.config.ts), a schema of its own on the run's PostgreSQL cluster.
 * Builders for store inputs with a frozen clock.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/store/index.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import type { PostgresStoreOptions, RecordDecisionInput, RegisterTaskInput, SqliteStoreOptions, Store, TokenGrant } from '../../src/store/index.js';
import { dropSchema, newSchema, pgQuery, pgSession, postgresUrl } from '../support/postgres.js';

export const T0 = Date.parse('2026-01-01T00:00:00.000Z');
/** ISO time `seconds` after T0. */
export const at = (seconds = 0): string => new Date(T0 + seconds * 1000).toISOString();

/** The engine the store suite runs on in this test project. */
export const ENGINE: 'sqlite' | 'postgres' = process.env['AGENT_PDP_TEST_STORE_ENGINE'] === 'postgres' ? 'postgres' : 'sqlite';

export type TestStoreOptions = SqliteStoreOptions & PostgresStoreOptions;

export interface TempStore {
  store: Store;
  /** SQLite: the database file. PostgreSQL: the schema's name. */
  path: string;
  dir: string;
  engine: 'sqlite' | 'postgres';
  reopen(options?: TestStoreOptions): Promise<Store>;
  /** Another store on the same database (another process, another replica), for the caller to close. */
  openAnother(options?: TestStoreOptions): Promise<Store>;
  cleanup(): Promise<void>;
}

/** A store on the project's engine (`engine` overrides it: a test of SQLite's own behaviour names it). */
export async function tempStore(options: TestStoreOptions = {}, engine = ENGINE): Promise<TempStore> {
  const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-store-'));
  const path = engine === 'postgres' ? newSchema('store') : join(dir, 'nested', 'pdp.db');
  const open = async (next: TestStoreOptions): Promise<Store> =>
    engine === 'postgres' ? PostgresStore.open(postgresUrl(), { ...next, schema: path }) : SqliteStore.open(path, next);
  const temp: TempStore = {
    store: await open(options),
    path,
    dir,
    engine,
    async reopen(next = options) {
      await temp.store.close();
      temp.store = await open(next);
      return temp.store;
    },
    openAnother: async (next = options) => open(next),
    async cleanup() {
      await temp.store.close();
      rmSync(dir, { recursive: true, force: true });
      if (engine === 'postgres') await dropSchema(path);
    },
  };
  return temp;
}

/**
 * Runs one statement on the store's database behind its back, as someone with write access to it would (tamper,
 * sabotage, inspect): SQLite on a connection of its own to the file, PostgreSQL in the store's schema (`?` become
 * `$1…`; no `?` inside a literal). Returns the rows (none for a write); integers read as numbers on both engines.
 */
export async function rawSql<R = Record<string, unknown>>(temp: TempStore, sql: string, params: readonly unknown[] = []): Promise<R[]> {
  if (temp.engine === 'postgres') {
    let n = 0;
    return (await pgQuery(temp.path, sql.replace(/\?/g, () => `$${++n}`), [...params])) as R[];
  }
  const db = new Database(temp.path);
  try {
    const statement = db.prepare(sql);
    if (statement.reader) return statement.all(...params) as R[];
    statement.run(...params);
    return [];
  } finally {
    db.close();
  }
}

/** The columns of `table` in the store's database, in table order. */
export async function tableColumns(temp: TempStore, table: string): Promise<string[]> {
  const sql =
    temp.engine === 'postgres'
      ? 'SELECT column_name AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position'
      : 'SELECT name FROM pragma_table_info(?) ORDER BY cid';
  return (await rawSql<{ name: string }>(temp, sql, [table])).map((c) => c.name);
}

/**
 * Everything the store's database holds, as text, to search for what must not be stored. SQLite: the file's
 * bytes (every table, index and free page; close the store first so the WAL is folded in). PostgreSQL: every text
 * column of every table in the store's schema.
 */
export async function storedText(temp: TempStore): Promise<string> {
  if (temp.engine === 'sqlite') return readFileSync(temp.path).toString('latin1');
  return pgSession(temp.path, async (query) => {
    const columns = await query<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
       WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'json', 'jsonb')
       ORDER BY table_name, ordinal_position`,
    );
    const out: string[] = [];
    for (const { table_name, column_name } of columns) {
      const rows = await query<{ v: string | null }>(`SELECT "${column_name}"::text AS v FROM "${table_name}"`);
      for (const { v } of rows) if (v !== null) out.push(v);
    }
    return out.join('\n');
  });
}

export function task(id: string, overrides: Partial<RegisterTaskInput> = {}): RegisterTaskInput {
  return {
    id,
    agent_id: 'support-resolver',
    type: 'complaint_resolution',
    context: { customer_id: '1234' },
    registered_by: 'orchestrator-1',
    registered_at: at(0),
    expires_at: at(3600),
    trace_id: null,
    ...overrides,
  };
}

export function decision(id: string, overrides: Partial<RecordDecisionInput> = {}): RecordDecisionInput {
  const outcome = overrides.outcome ?? 'allow';
  return {
    decision_id: id,
    caller_id: 'support-middleware',
    agent_id: 'support-resolver',
    task_id: null,
    integration: 'crm',
    outcome,
    input: { agent_id: 'support-resolver', caller_id: 'support-middleware', scopes: ['tickets:write'] },
    result: { outcome, granted_scopes: outcome === 'allow' ? ['tickets:write'] : [] },
    policy_revision: 'rev-1',
    trace_id: null,
    created_at: at(1),
    redeemable_until: outcome === 'allow' ? at(61) : null,
    ...overrides,
  };
}

let jtiCounter = 0;
export function grant(overrides: Partial<TokenGrant> = {}): TokenGrant {
  jtiCounter++;
  return {
    jti: `jti-${jtiCounter}`,
    issued_at: at(2),
    expires_at: at(302),
    scopes: ['tickets:write'],
    audience: 'crm',
    event_data: { integration: 'crm', resource: null, kid: 'key-1' },
    ...overrides,
  };
}
