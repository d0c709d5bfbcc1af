import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, sqlitePath } from '../../src/store/index.js';
import { openSqlite } from '../../src/store/sqlite-connection.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { at } from './store-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'agent-pdp-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const loaded = (i: number) => ({ type: 'policy.loaded' as const, time: at(i), data: { revision: `r${i}` } });

describe('openStore', () => {
  it('opens sqlite:<path>, creating the folder, in WAL mode', async () => {
    const path = join(dir, 'a', 'b', 'pdp.db');
    const store = await openStore(`sqlite:${path}`);
    await store.appendEvents([loaded(1)]);
    await store.close();
    expect(existsSync(path)).toBe(true);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get()).toEqual({ v: SCHEMA_VERSION });
    db.close();
  });

  it('opens sqlite::memory:', async () => {
    const store = await openStore('sqlite::memory:');
    await store.appendEvents([loaded(1), loaded(2)]);
    expect(await store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
    await store.close();
  });

  it.each([
    { note: 'NORMAL by default', options: {}, level: 1 },
    { note: 'FULL when configured', options: { synchronous: 'full' as const }, level: 2 },
  ])('sets synchronous $note', ({ options, level }) => {
    const db = openSqlite(join(dir, `sync-${level}.db`), options);
    expect(db.pragma('synchronous', { simple: true })).toBe(level);
    db.close();
  });

  it('continues the chain after a restart, reading the head from the last row', async () => {
    const url = `sqlite:${join(dir, 'restart.db')}`;
    const first = await openStore(url);
    const [a] = await first.appendEvents([loaded(1)]);
    await first.close();
    const second = await openStore(url);
    const [b] = await second.appendEvents([loaded(2)]);
    expect(b).toMatchObject({ seq: 2, prev_hash: a?.hash });
    expect(await second.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
    await second.close();
  });

  it('does not fork the chain when another connection appends to the same file', async () => {
    const url = `sqlite:${join(dir, 'two-writers.db')}`;
    const a = await openStore(url);
    const b = await openStore(url);
    await a.appendEvents([loaded(1)]);
    await b.appendEvents([loaded(2)]);
    await a.appendEvents([loaded(3)]);
    expect(await b.verifyStoredChain()).toMatchObject({ ok: true, count: 3 });
    await a.close();
    await b.close();
  });

  it('refuses a database written by a newer schema', async () => {
    const path = join(dir, 'newer.db');
    const db = new Database(path);
    db.exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL);
      INSERT INTO schema_migrations VALUES (${SCHEMA_VERSION + 1}, '2030-01-01T00:00:00.000Z')`);
    db.close();
    await expect(openStore(`sqlite:${path}`)).rejects.toMatchObject({ code: 'store_unavailable' });
  });

  it('reports an unopenable file as store_unavailable', async () => {
    await expect(openStore(`sqlite:${dir}`)).rejects.toMatchObject({ code: 'store_unavailable' });
  });

  it.each(['postgres://db/pdp', 'sqlite:', 'file:pdp.db', ''])('refuses the url %j with config_invalid', (url) => {
    expect(() => sqlitePath(url)).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });

  it('resolves relative paths against the working directory', () => {
    expect(sqlitePath('sqlite:data/pdp.db')).toBe(join(process.cwd(), 'data', 'pdp.db'));
  });

  it('refuses malformed input as a programming error, before anything is queued', async () => {
    const store = await openStore('sqlite::memory:');
    await expect(store.appendEvents([{ ...loaded(1), time: '2026-01-01 00:00' }])).rejects.toThrow(TypeError);
    await expect(store.appendEvents([{ ...loaded(1), type: 'nope' as 'decision' }])).rejects.toThrow(TypeError);
    await expect(store.appendEvents([{ ...loaded(1), data: { n: Number.NaN } }])).rejects.toMatchObject({ code: 'invalid_request' });
    expect(store.stats().transactions).toBe(0);
    await store.close();
  });
});
