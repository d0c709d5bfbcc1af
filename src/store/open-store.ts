/**
 * `openStore(url)`: the one entry point `main` uses.
 *   sqlite:<path>      a file (relative paths resolve against the working directory; the folder is created 0700,
 *                      the files 0600; a folder others may write is refused: `sqlite-connection.ts`, "Privacy")
 *   sqlite::memory:    a private in-memory database (tests, demos; gone at close)
 *   postgres://…       PostgreSQL (also postgresql://), for several replicas on one database (postgres-store.ts).
 *                      The password may be in the URL or, better, in PGPASSWORD or ~/.pgpass (as libpq reads them).
 * A URL is never echoed in an error: it may hold a password.
 */
import { resolve } from 'node:path';
import { PdpError } from '../errors/pdp-error.js';
import type { PostgresStoreOptions } from './postgres-store.js';
import { MEMORY_PATH } from './sqlite-connection.js';
import { SqliteStore } from './sqlite-store.js';
import type { SqliteStoreOptions } from './sqlite-store.js';
import type { Store } from './store.js';

/** Options of either engine; each reads its own (mask, maskKey and the batch bounds are common). */
export type StoreOptions = SqliteStoreOptions & PostgresStoreOptions;

export async function openStore(url: string, options: StoreOptions = {}): Promise<Store> {
  if (isPostgresUrl(url)) {
    const { synchronous: _s, busyTimeoutMs: _b, onWarning: _w, checkpoint: _c, checkpointIntervalMs: _i, walBackstopPages: _p, walCatchUpPages: _u, onCheckpointFailure: _f, ...pg } = options;
    // Loaded for a PostgreSQL store only: node-postgres is about 0.07 s of a start on SQLite.
    const { PostgresStore } = await import('./postgres-store.js');
    return PostgresStore.open(url, pg);
  }
  return SqliteStore.open(sqlitePath(url), options);
}

export function isPostgresUrl(url: string): boolean {
  return typeof url === 'string' && /^postgres(ql)?:\/\//.test(url);
}

/** The file path a `sqlite:` URL names. config_invalid for any other URL. */
export function sqlitePath(url: string): string {
  if (typeof url !== 'string' || !url.startsWith('sqlite:')) {
    const scheme = typeof url === 'string' ? /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? '(none)' : '(not a string)';
    throw new PdpError('config_invalid', `unsupported store url scheme ${scheme}: use sqlite:<path> or postgres://…`);
  }
  const path = url.slice('sqlite:'.length);
  if (path === MEMORY_PATH) return MEMORY_PATH;
  if (path === '') throw new PdpError('config_invalid', 'the store url sqlite: names no file');
  return resolve(path);
}
