/** The public face of src/store/. Everything else in this folder is internal. */
export { isPostgresUrl, openStore, sqlitePath } from './open-store.js';
export type { StoreOptions } from './open-store.js';
export { SqliteStore } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export type { SqliteSynchronous } from './sqlite-connection.js';
// PostgresStore itself is not re-exported: this face must not load node-postgres (0.07 s of every start on SQLite).
// `openStore('postgres://…')` loads it when asked; the store's own tests import postgres-store.js for the class.
export type { PostgresStoreOptions } from './postgres-store.js';
export type * from './store.js';
