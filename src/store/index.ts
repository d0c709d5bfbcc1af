/** The public face of src/store/. Everything else in this folder is internal. */
export { isPostgresUrl, openStore, sqlitePath } from './open-store.js';
export type { StoreOptions } from './open-store.js';
export { SqliteStore } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export type { SqliteSynchronous } from './sqlite-connection.js';
export { PostgresStore } from './postgres-store.js';
export type { PostgresStoreOptions } from './postgres-store.js';
export type * from './store.js';
