/** The public face of src/store/. Everything else in this folder is internal. */
export { openStore, sqlitePath } from './open-store.js';
export type { StoreOptions } from './open-store.js';
export { SqliteStore } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export type { SqliteSynchronous } from './sqlite-connection.js';
export type * from './store.js';
