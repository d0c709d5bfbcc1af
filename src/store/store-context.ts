/** What the store's operation modules share, whichever engine runs them: the chain writer, the mask, and how to run a SQL program. */
import type { Database } from 'better-sqlite3';
import { isIsoTime } from '../audit/index.js';
import { PdpError, isPdpError } from '../errors/pdp-error.js';
import type { Masker } from '../audit/index.js';
import type { ChainWriter } from './chain-writer.js';
import { StoreFailure } from './sql-program.js';
import type { Program } from './sql-program.js';
import type { EnqueueOptions } from './group-commit.js';

export interface StoreContext {
  /** `sqlite` or `postgres`: for the few things that are not SQL (the usage fold's worker threads). */
  engine: 'sqlite' | 'postgres';
  chain: ChainWriter;
  mask: Masker;
  /**
   * Runs the program inside the next group-commit transaction and resolves after COMMIT. If it throws, its writes
   * (and the chain head) are rolled back to where it started. `durable`: that COMMIT reaches stable storage (it
   * survives a power loss) before the promise resolves, whatever `synchronous` is. `savepoint: false`: it refuses,
   * if at all, before its first write (group-commit.ts, EnqueueOptions).
   */
  write<T>(program: () => Program<T>, options?: EnqueueOptions): Promise<T>;
  /**
   * Runs a read-only program outside the writer queue. `snapshot`: all its statements see one state of the database
   * (SQLite: a DEFERRED read transaction; PostgreSQL: REPEATABLE READ, READ ONLY). Any failure that is not already a
   * PdpError is store_unavailable.
   */
  read<T>(program: () => Program<T>, options?: { snapshot?: boolean }): Promise<T>;
  /** SQLite only: the connection (the usage fold reads it directly, `usage-fold.ts`). */
  sqlite?: Database;
}

/** Throws TypeError unless `value` is an ISO 8601 UTC time with milliseconds (they compare correctly as text). */
export function requireTime(name: string, value: unknown): string {
  if (!isIsoTime(value)) {
    throw new TypeError(`${name} must be an ISO 8601 UTC time with milliseconds, got ${String(value)}`);
  }
  return value;
}

/** Throws TypeError unless `value` is a non-empty string. */
export function requireId(name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${name} must be a non-empty string`);
  return value;
}

/** What a failed read rejects with: a PdpError as it is; anything else (the database failing) store_unavailable. */
export function readFailure(error: unknown): unknown {
  if (isPdpError(error)) return error;
  return new PdpError('store_unavailable', 'the store could not be read', { cause: error instanceof StoreFailure ? error.cause : error });
}
