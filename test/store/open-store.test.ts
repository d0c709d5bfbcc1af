import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, sqlitePath } from '../../src/store/index.js';
import { openSqlite } from '../../src/store/sqlite-connection.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { at } from './store-fixtures.js';
import { postgresUrl } from '../support/postgres.js';
import { closedPort } from '../pep/fake-pdp.js';

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

  it('a PostgreSQL store that cannot be opened says why (the server\'s reason, or the connection\'s), never the password', async () => {
    const real = new URL(postgresUrl());
    const wrongPassword = new URL(real.href);
    wrongPassword.password = 'Wr0ng-S3cret-Pw';
    const noDatabase = new URL(real.href);
    noDatabase.pathname = '/no_such_database_here';
    const closed = new URL(real.href);
    closed.port = String(await closedPort());
    const cases: Array<[URL, RegExp]> = [
      [wrongPassword, /password authentication failed for user "[^"]+" \(SQLSTATE 28P01\)/],
      [noDatabase, /database "no_such_database_here" does not exist \(SQLSTATE 3D000\)/],
      [closed, /ECONNREFUSED 127\.0\.0\.1:\d+/],
    ];
    for (const [url, why] of cases) {
      const err = await openStore(url.href, { connectTimeoutMs: 3000 }).then(() => undefined, (e: unknown) => e as Error & { code?: string });
      expect(err?.code).toBe('store_unavailable');
      expect(err?.message).toMatch(/^cannot open the PostgreSQL store: /);
      expect(err?.message).toMatch(why);
      expect(err?.message).not.toContain(url.password);
      expect(err?.message).not.toContain(decodeURIComponent(real.password));
    }
  });

  it.each(['postgres://db/pdp', 'sqlite:', 'file:pdp.db', ''])('refuses the url %j with config_invalid', (url) => {
    expect(() => sqlitePath(url)).toThrow(expect.objectContaining({ code: 'config_invalid' }));
  });

  it('resolves relative paths against the working directory', () => {
    expect(sqlitePath('sqlite:data/pdp.db')).toBe(join(process.cwd(), 'data', 'pdp.db'));
  });
});

const modeOf = (path: string): string => (statSync(path).mode & 0o7777).toString(8);

describe('the store files are private (issue 13, item 6)', () => {
  it('creates its folders 0700 and its files 0600, -wal and -shm included', async () => {
    const path = join(dir, 'private', 'nested', 'pdp.db');
    const warnings: string[] = [];
    const store = await openStore(`sqlite:${path}`, { onWarning: (m) => warnings.push(m) });
    await store.appendEvents([loaded(1)]);
    expect([modeOf(join(dir, 'private')), modeOf(join(dir, 'private', 'nested'))]).toEqual(['700', '700']);
    expect([path, `${path}-wal`, `${path}-shm`].map(modeOf)).toEqual(['600', '600', '600']);
    await store.close();
    expect(warnings).toEqual([]);
  });

  it('narrows an existing database and -wal that others may read to 0600, saying so', async () => {
    const folder = join(dir, 'older');
    mkdirSync(folder, { mode: 0o700 });
    const path = join(folder, 'pdp.db');
    const first = await openStore(`sqlite:${path}`);
    await first.appendEvents([loaded(1)]);
    await first.close();
    chmodSync(path, 0o644);
    writeFileSync(`${path}-wal`, '');
    chmodSync(`${path}-wal`, 0o644);
    const warnings: string[] = [];
    const store = await openStore(`sqlite:${path}`, { onWarning: (m) => warnings.push(m) });
    expect([path, `${path}-wal`].map(modeOf)).toEqual(['600', '600']);
    expect(warnings).toEqual([
      `${path} was readable by group or others (mode 0644): narrowed to 0600`,
      `${path}-wal was readable by group or others (mode 0644): narrowed to 0600`,
    ]);
    await store.close();
  });

  it.each([
    { note: '0777', mode: 0o777 },
    { note: '1777, sticky: others could still create its -wal first', mode: 0o1777 },
    { note: '0770', mode: 0o770 },
  ])('refuses an existing folder others may write ($note), creating nothing in it', async ({ mode }) => {
    const folder = join(dir, `shared-${mode.toString(8)}`);
    mkdirSync(folder);
    chmodSync(folder, mode);
    const path = join(folder, 'pdp.db');
    await expect(openStore(`sqlite:${path}`)).rejects.toMatchObject({
      code: 'store_unavailable',
      message: expect.stringMatching(new RegExp(`^the store folder ${folder} is writable by group or others \\(mode 0${mode.toString(8)}\\)`)),
    });
    expect(existsSync(path)).toBe(false);
  });

  it('accepts an existing folder others may only list, with a warning', async () => {
    const folder = join(dir, 'listable');
    mkdirSync(folder);
    chmodSync(folder, 0o755);
    const warnings: string[] = [];
    const store = await openStore(`sqlite:${join(folder, 'pdp.db')}`, { onWarning: (m) => warnings.push(m) });
    await store.close();
    expect(warnings).toEqual([expect.stringMatching(/^the store folder .*listable can be listed by group or others \(mode 0755\)/)]);
    expect(modeOf(join(folder, 'pdp.db'))).toBe('600');
  });
});
