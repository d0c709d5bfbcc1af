/**
 * The store a config names, as the CLI opens it: never created by a CLI command (a typo in a path or a schema name
 * would otherwise give an empty store, whose empty chain verifies), and named in messages without credentials.
 */
import { existsSync } from 'node:fs';
import { storeOpenOptions } from '../config/config-loader.js';
import type { PdpConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import { isPostgresUrl, openStore, sqlitePath, type Store } from '../store/index.js';

export async function openConfiguredStore(config: PdpConfig): Promise<Store> {
  if (isPostgresUrl(config.store.url)) return openStore(config.store.url, { ...storeOpenOptions(config.store), mustExist: true });
  const path = sqlitePath(config.store.url);
  if (path !== ':memory:' && !existsSync(path)) throw new PdpError('store_unavailable', `there is no store at ${path}`);
  return openStore(config.store.url, storeOpenOptions(config.store));
}

/** The store in a message: the SQLite file, or the PostgreSQL host, database and schema (never the user or password). */
export function storeLabel(config: PdpConfig): string {
  if (!isPostgresUrl(config.store.url)) return sqlitePath(config.store.url);
  let where = 'PostgreSQL';
  try {
    const url = new URL(config.store.url);
    where = `PostgreSQL ${url.host}${url.pathname}`;
  } catch {
    // A URL node-postgres reads but URL does not: the host stays unnamed.
  }
  return `${where} (schema ${config.store.schema ?? 'on the search path'})`;
}
