/**
 * Opening the SQLite database (better-sqlite3) and its transaction primitives for group commit.
 *
 * Durability: the database runs in WAL mode. With `synchronous = NORMAL` (the default) a committed transaction
 * survives a crash or SIGKILL of the process, but the last transactions before a power loss or OS crash may be
 * lost (the WAL is synced at checkpoints, not at each commit); the database is never corrupted either way.
 * With `synchronous = FULL` the WAL is synced at every commit, so a commit also survives a power loss; group
 * commit pays that sync once per batch, not once per request.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PdpError } from '../errors/pdp-error.js';
import type { TransactionControl } from './group-commit.js';

export type SqliteSynchronous = 'normal' | 'full';

export interface SqliteOpenOptions {
  /** Default `normal`: see the durability note above. */
  synchronous?: SqliteSynchronous;
  /** How long a write waits for a lock held by another connection. Default 5000 ms. */
  busyTimeoutMs?: number;
}

export const MEMORY_PATH = ':memory:';

/** Opens (creating the file and its folder) and configures a connection. Failures are store_unavailable. */
export function openSqlite(path: string, options: SqliteOpenOptions = {}): Database.Database {
  const synchronous = options.synchronous ?? 'normal';
  if (synchronous !== 'normal' && synchronous !== 'full') throw new TypeError(`unknown synchronous: ${synchronous}`);
  let db: Database.Database | undefined;
  try {
    if (path !== MEMORY_PATH) mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (path !== MEMORY_PATH && mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
    db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
    db.pragma('foreign_keys = ON');
    return db;
  } catch (error) {
    db?.close();
    throw new PdpError('store_unavailable', `cannot open the SQLite store at ${path}`, { cause: error });
  }
}

export function isSqliteError(error: unknown): boolean {
  return error instanceof Database.SqliteError;
}

/** BEGIN IMMEDIATE takes the write lock up front, so a batch never fails half-way on a lock upgrade. */
export function sqliteTransactionControl(db: Database.Database): TransactionControl {
  const begin = db.prepare('BEGIN IMMEDIATE');
  const commit = db.prepare('COMMIT');
  const rollback = db.prepare('ROLLBACK');
  const savepoint = db.prepare('SAVEPOINT op');
  const release = db.prepare('RELEASE op');
  const rollbackTo = db.prepare('ROLLBACK TO op');
  return {
    begin: () => void begin.run(),
    commit: () => void commit.run(),
    rollback: () => void rollback.run(),
    savepoint: () => void savepoint.run(),
    releaseSavepoint: () => void release.run(),
    rollbackToSavepoint: () => void rollbackTo.run(),
    inTransaction: () => db.inTransaction,
    // A TypeError from better-sqlite3 itself (connection closed or busy) is as fatal as an SQLite error.
    isStoreFailure: (error) => isSqliteError(error) || (error instanceof TypeError && !db.open),
  };
}
