/**
 * A store's database outlives the store: the chain goes on after a restart, two stores on one database (two
 * processes, two replicas) append to one chain without forking it, a database written by a newer build is refused,
 * and malformed input is refused before anything is queued. On both engines; opening SQLite files and their
 * permissions: open-store.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../src/store/index.js';
import { PostgresStore } from '../../src/store/postgres-store.js';
import type { Store } from '../../src/store/index.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { dropSchema, newSchema, postgresUrl } from '../support/postgres.js';
import { ENGINE, at, rawSql, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
afterEach(async () => temp.cleanup());

const loaded = (i: number) => ({ type: 'policy.loaded' as const, time: at(i), data: { revision: `r${i}` } });

describe('the store across restarts and processes', () => {
  it('continues the chain after a restart, reading the head from the last row', async () => {
    temp = await tempStore();
    const [a] = await temp.store.appendEvents([loaded(1)]);
    const second = await temp.reopen();
    const [b] = await second.appendEvents([loaded(2)]);
    expect(b).toMatchObject({ seq: 2, prev_hash: a?.hash });
    expect(await second.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
  });

  it('does not fork the chain when another store appends to the same database', async () => {
    temp = await tempStore();
    const a = temp.store;
    const b = await temp.openAnother();
    try {
      await a.appendEvents([loaded(1)]);
      await b.appendEvents([loaded(2)]);
      await a.appendEvents([loaded(3)]);
      // Both at once, many times: each write reads the head under the chain's lock.
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).appendEvents([loaded(10 + i)])));
      expect(await b.verifyStoredChain()).toMatchObject({ ok: true, count: 23 });
      expect(await a.chainHead()).toEqual(await b.chainHead());
    } finally {
      await b.close();
    }
  });

  it('keeps serving after a newer release added a column to a table it reads whole (a rolling upgrade)', async () => {
    temp = await tempStore();
    const s = temp.store;
    await s.registerTask({ id: 't-1', agent_id: 'a', type: 'x', context: {}, registered_by: 'o', registered_at: at(0), expires_at: at(3600), trace_id: null });
    await s.getTask('t-1'); // prepares `SELECT * FROM tasks` on a read connection (PostgreSQL caches its plan)
    await s.completeTask({ task_id: 't-1', by: 'o', at: at(1) }).catch(() => undefined);
    await rawSql(temp, 'ALTER TABLE tasks ADD COLUMN added_by_a_newer_release TEXT');
    // PostgreSQL: a statement prepared before answers "cached plan must not change result type" once per connection;
    // that connection is dropped and the next call prepares afresh. Bounded: a few calls, never for good.
    let served = false;
    for (let attempt = 0; attempt < 10 && !served; attempt++) served = (await s.getTask('t-1').catch(() => undefined)) !== undefined;
    expect(served).toBe(true);
    let wrote = false;
    for (let attempt = 0; attempt < 10 && !wrote; attempt++) {
      wrote = await s.registerTask({ id: `t-${attempt + 2}`, agent_id: 'a', type: 'x', context: {}, registered_by: 'o', registered_at: at(2), expires_at: at(3600), trace_id: null }).then(() => true, () => false);
    }
    expect(wrote).toBe(true);
    // The writer's connection too (its first `SELECT * FROM tasks` after the change fails its batch once).
    let refused: string | undefined;
    for (let attempt = 0; attempt < 10 && refused !== 'task_not_active'; attempt++) {
      refused = await s.completeTask({ task_id: 't-1', by: 'o', at: at(3) }).then(() => 'completed', (e: { code?: string }) => e.code);
    }
    expect(refused).toBe('task_not_active');
  });

  it('creates one schema when several replicas open an empty database at once (migrations under a lock)', async () => {
    temp = await tempStore();
    // A database nobody has opened yet: a new schema (PostgreSQL) or file (SQLite) beside the fixture's.
    const fresh = ENGINE === 'postgres' ? newSchema('fresh') : `${temp.path}.fresh.db`;
    const open = (): Promise<Store> => (ENGINE === 'postgres' ? PostgresStore.open(postgresUrl(), { schema: fresh }) : Promise.resolve(SqliteStore.open(fresh)));
    const stores = await Promise.all([open(), open(), open(), open()]);
    try {
      await Promise.all(stores.map((s, i) => s.appendEvents([loaded(i)])));
      expect(await (stores[0] as Store).verifyStoredChain()).toMatchObject({ ok: true, count: 4 });
    } finally {
      for (const s of stores) await s.close();
    }
    const check = await tempStore();
    try {
      // Each version applied once.
      const versions = await rawSql<{ version: number }>({ ...check, path: fresh }, 'SELECT version FROM schema_migrations ORDER BY version');
      expect(versions.map((v) => Number(v.version))).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    } finally {
      await check.cleanup();
      if (ENGINE === 'postgres') await dropSchema(fresh);
    }
  });

  it('refuses a database written by a newer schema', async () => {
    temp = await tempStore();
    await temp.store.close();
    await rawSql(temp, 'INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [SCHEMA_VERSION + 1, '2030-01-01T00:00:00.000Z']);
    await expect(temp.reopen()).rejects.toMatchObject({ code: 'store_unavailable' });
  });

  it('refuses malformed input as a programming error, before anything is queued', async () => {
    temp = await tempStore();
    const store = temp.store;
    await expect(store.appendEvents([{ ...loaded(1), time: '2026-01-01 00:00' }])).rejects.toThrow(TypeError);
    await expect(store.appendEvents([{ ...loaded(1), type: 'nope' as 'decision' }])).rejects.toThrow(TypeError);
    await expect(store.appendEvents([{ ...loaded(1), data: { n: Number.NaN } }])).rejects.toMatchObject({ code: 'invalid_request' });
    expect(store.stats().transactions).toBe(0);
  });
});
