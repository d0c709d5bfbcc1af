/**
 * Opening the SQLite database (better-sqlite3) and its transaction primitives for group commit.
 *
 * Durability: the database runs in WAL mode. With `synchronous = NORMAL` (the default) a committed transaction
 * survives a crash or SIGKILL of the process, but the last transactions before a power loss or OS crash may be
 * lost (the WAL is synced at checkpoints, not at each commit); the database is never corrupted either way.
 * With `synchronous = FULL` the WAL is synced at every commit, so a commit also survives a power loss; group
 * commit pays that sync once per batch, not once per request.
 *
 * Privacy: the file holds task contexts unmasked (the PDP decides on them) and every decision. It is created 0600
 * before SQLite opens it, so SQLite gives its -wal and -shm the same mode; an existing file, -wal or -shm that
 * group or others may read is narrowed to 0600 (with a warning). A folder the store creates is 0700. An existing
 * folder that group or others may write is refused (they could replace the file, or create its -wal first); one
 * they may only read or list is accepted with a warning, since the files in it are private.
 */
import { chmodSync, closeSync, mkdirSync, openSync, realpathSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { PdpError } from '../errors/pdp-error.js';
import type { TransactionDriver } from './group-commit.js';
import { StoreFailure, refuseNul, runSync } from './sql-program.js';
import type { Program, SqlStep } from './sql-program.js';

export type SqliteSynchronous = 'normal' | 'full';

export interface SqliteOpenOptions {
  /** Default `normal`: see the durability note above. */
  synchronous?: SqliteSynchronous;
  /** How long a write waits for a lock held by another connection. Default 5000 ms. */
  busyTimeoutMs?: number;
  /** Told of permissions the store accepted or narrowed (see "Privacy" above). Default `process.emitWarning`. */
  onWarning?: (message: string) => void;
}

export const MEMORY_PATH = ':memory:';

/** Opens (creating the file and its folder) and configures a connection. Failures are store_unavailable. */
export function openSqlite(path: string, options: SqliteOpenOptions = {}): Database.Database {
  const synchronous = options.synchronous ?? 'normal';
  if (synchronous !== 'normal' && synchronous !== 'full') throw new TypeError(`unknown synchronous: ${synchronous}`);
  let db: Database.Database | undefined;
  try {
    if (path !== MEMORY_PATH) preparePrivateFiles(path, options.onWarning ?? ((message) => process.emitWarning(message, 'AgentPdpStoreWarning')));
    db = new Database(path, { timeout: options.busyTimeoutMs ?? 5000 });
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (path !== MEMORY_PATH && mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
    db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
    db.pragma('foreign_keys = ON');
    return db;
  } catch (error) {
    db?.close();
    if (error instanceof PdpError) throw error;
    throw new PdpError('store_unavailable', `cannot open the SQLite store at ${path}`, { cause: error });
  }
}

const GROUP_OTHER_WRITE = 0o022;
const GROUP_OTHER_ANY = 0o077;
const octal = (mode: number): string => `0${(mode & 0o7777).toString(8)}`;

/** See "Privacy" above. store_unavailable for a folder others may write. */
function preparePrivateFiles(path: string, warn: (message: string) => void): void {
  const dir = dirname(path);
  const folder = statSync(dir, { throwIfNoEntry: false });
  if (folder === undefined) mkdirSync(dir, { recursive: true, mode: 0o700 });
  else if ((folder.mode & GROUP_OTHER_WRITE) !== 0) {
    throw new PdpError('store_unavailable', `the store folder ${dir} is writable by group or others (mode ${octal(folder.mode)}): they could replace the database; use a folder only this user can write (chmod 700 ${dir})`);
  } else if ((folder.mode & GROUP_OTHER_ANY) !== 0) {
    warn(`the store folder ${dir} can be listed by group or others (mode ${octal(folder.mode)}); the database files in it are private (0600), but chmod 700 ${dir} hides even their names`);
  }
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    const stats = statSync(file, { throwIfNoEntry: false });
    if (stats === undefined || (stats.mode & GROUP_OTHER_ANY) === 0) continue;
    chmodSync(file, 0o600);
    warn(`${file} was readable by group or others (mode ${octal(stats.mode)}): narrowed to 0600`);
  }
}

export function isSqliteError(error: unknown): boolean {
  return error instanceof Database.SqliteError;
}

/**
 * Runs one statement of a SQL program (`sql-program.ts`) on `db`, preparing each text once per connection. Every
 * failure is a StoreFailure: an SQLite error, or better-sqlite3's TypeError for a closed or busy connection.
 */
export function sqliteExecutor(db: Database.Database): (step: SqlStep) => unknown {
  const statements = new Map<string, Database.Statement>();
  return (step) => {
    refuseNul(step);
    try {
      let statement = statements.get(step.sql);
      if (statement === undefined) {
        statement = db.prepare(step.sql);
        statements.set(step.sql, statement);
      }
      if (step.kind === 'get') return statement.get(...step.params);
      if (step.kind === 'all') return statement.all(...step.params);
      return statement.run(...step.params).changes;
    } catch (error) {
      throw new StoreFailure(error);
    }
  };
}

/**
 * BEGIN IMMEDIATE takes the write lock up front, so a batch never fails half-way on a lock upgrade. Under
 * `synchronous = NORMAL` a durable commit is made durable after it commits, off the writer's thread
 * (`syncCommitted`): an fsync of the WAL file in libuv's thread pool, which makes that commit and every one before it
 * survive a power loss, while the event loop goes on serving (an fsync on the writer's thread held it for tens of
 * milliseconds at each signed head). A frame a checkpoint has already copied and the WAL then rewound over is in the
 * database file, which SQLite syncs at the end of every checkpoint. An in-memory database (no WAL file) switches to
 * `synchronous = FULL` around the transaction instead (`durableCommits`).
 */
export function sqliteTransactionDriver(db: Database.Database, executeSync: (step: SqlStep) => unknown): TransactionDriver {
  return {
    executeSync,
    begin: 'BEGIN IMMEDIATE',
    commit: 'COMMIT',
    rollback: 'ROLLBACK',
    savepoint: { take: 'SAVEPOINT op', release: 'RELEASE op', rollbackTo: 'ROLLBACK TO op' },
    ...durability(db),
  };
}

const BEGIN_READ: SqlStep = { kind: 'run', sql: 'BEGIN DEFERRED', params: [] };
const END_READ: SqlStep = { kind: 'run', sql: 'COMMIT', params: [] };

/**
 * The reads of one turn of the event loop, in ONE read transaction. In WAL mode each read transaction takes and
 * drops a read lock on the -shm file and stats the database: three system calls, which on a VM cost more than the
 * read itself (a task read by its key: 8.8 µs alone, 2.7 µs inside an open read transaction). Concurrent decides each
 * read their task; in one transaction they pay that once.
 *
 * The transaction opens at the first read and ends at the end of that turn (`setImmediate`), before the writer's
 * next transaction (`end`: the group commit's `beforeBegin`), or at the first read that finds it older than
 * `TURN_READ_MAX_AGE_MS`, whichever comes first. So a read sees every commit this process made before it (this process
 * commits only in the writer's transactions, which end it first), and every commit of another process (a CLI, another
 * worker of `serve --workers` on the file) made more than `TURN_READ_MAX_AGE_MS` before it. A read inside a
 * transaction that is not this one (none on the hot path) runs in it, as before.
 */
export class TurnReads {
  readonly #db: Database.Database;
  readonly #execute: (step: SqlStep) => unknown;
  readonly #maxAgeMs: number;
  #open = false;
  #openedAt = 0;
  #closing = false;

  constructor(db: Database.Database, execute: (step: SqlStep) => unknown, maxAgeMs = TURN_READ_MAX_AGE_MS) {
    this.#db = db;
    this.#execute = execute;
    this.#maxAgeMs = maxAgeMs;
  }

  /** Runs a read-only program in the current read transaction (every statement of it sees one state). */
  run<T>(program: () => Program<T>): T {
    if (this.#open && performance.now() - this.#openedAt > this.#maxAgeMs) this.end();
    if (!this.#open && !this.#db.inTransaction) {
      this.#execute(BEGIN_READ);
      this.#open = true;
      this.#openedAt = performance.now();
      if (!this.#closing) {
        this.#closing = true;
        setImmediate(this.#endOfTurn);
      }
    }
    return runSync(program(), this.#execute);
  }

  /**
   * Ends the read transaction, if one is open (before a write transaction; at close; when it is too old). A COMMIT
   * that fails is followed by a ROLLBACK (a read-only transaction has nothing to lose); only when that fails too,
   * and the transaction is still open, does this throw: the connection is unusable and the writer must not begin.
   */
  end(): void {
    if (!this.#open) return;
    this.#open = false;
    if (!this.#db.inTransaction) return;
    try {
      this.#execute(END_READ);
    } catch (error) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // reported below, if the transaction is still open
      }
      if (this.#db.inTransaction) throw error;
    }
  }

  readonly #endOfTurn = (): void => {
    this.#closing = false;
    try {
      this.end();
    } catch {
      // The connection is unusable: the next statement on it says so, to whoever runs it.
    }
  };
}

/**
 * How old a read transaction may be when a read joins it. Well below anything a client could observe across two
 * processes, and long enough for the reads of a busy turn (64 concurrent decides) to share one.
 */
export const TURN_READ_MAX_AGE_MS = 1;

/** SQLite's synchronous levels: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
const SYNCHRONOUS_FULL = 2;

function durability(db: Database.Database): Pick<TransactionDriver, 'durableCommits' | 'syncCommitted'> {
  const own = Number(db.pragma('synchronous', { simple: true }));
  if (own >= SYNCHRONOUS_FULL) return {};
  if (db.memory) return { durableCommits: (on) => void db.pragma(`synchronous = ${on ? SYNCHRONOUS_FULL : own}`) };
  // The WAL beside the file SQLite opened: a symlink's target, not the link (database_list names the real file).
  const main = (db.pragma('database_list') as Array<{ name: string; file: string }>).find((d) => d.name === 'main');
  const wal = `${main?.file || realpathSync(db.name)}-wal`;
  // After a failed fsync the kernel may have dropped the pages it could not write and report success next time:
  // once one fails, no later commit is called durable until the store is opened again.
  let failed: unknown;
  return {
    syncCommitted: async () => {
      if (failed !== undefined) throw new Error('an earlier fsync of the WAL failed: reopen the store', { cause: failed });
      // fsync is per file, not per descriptor: a descriptor of our own syncs what the connection wrote.
      const file = await open(wal, 'r+');
      try {
        await file.sync();
      } catch (error) {
        failed = error;
        throw error;
      } finally {
        await file.close();
      }
    },
  };
}
