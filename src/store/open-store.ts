/**
 * `openStore(url)`: the one entry point `main` uses.
 *   sqlite:<path>      a file (relative paths resolve against the working directory; the folder is created 0700,
 *                      the files 0600; a folder others may write is refused: `sqlite-connection.ts`, "Privacy")
 *   sqlite::memory:    a private in-memory database (tests, demos; gone at close)
 * A PostgreSQL store for several PDP replicas will answer `postgres://` here.
 */
import { resolve } from 'node:path';
import { PdpError } from '../errors/pdp-error.js';
import { MEMORY_PATH } from './sqlite-connection.js';
import { SqliteStore } from './sqlite-store.js';
import type { SqliteStoreOptions } from './sqlite-store.js';
import type { Store } from './store.js';

export type StoreOptions = SqliteStoreOptions;

export async function openStore(url: string, options: StoreOptions = {}): Promise<Store> {
  return SqliteStore.open(sqlitePath(url), options);
}

/** The file path a `sqlite:` URL names. config_invalid for any other URL. */
export function sqlitePath(url: string): string {
  if (typeof url !== 'string' || !url.startsWith('sqlite:')) {
    throw new PdpError('config_invalid', `unsupported store url ${JSON.stringify(url)}: use sqlite:<path>`);
  }
  const path = url.slice('sqlite:'.length);
  if (path === MEMORY_PATH) return MEMORY_PATH;
  if (path === '') throw new PdpError('config_invalid', 'the store url sqlite: names no file');
  return resolve(path);
}
