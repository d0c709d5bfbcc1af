/** What the SQLite store's operation modules share: prepared statements, the chain writer and the writer queue. */
import type { Database, Statement } from 'better-sqlite3';
import { isIsoTime } from '../audit/index.js';
import { PdpError, isPdpError } from '../errors/pdp-error.js';
import type { Masker } from '../audit/index.js';
import type { ChainWriter } from './chain-writer.js';
import { SQL } from './sql.js';

export type Statements = { readonly [K in keyof typeof SQL]: Statement };

export interface StoreContext {
  db: Database;
  sql: Statements;
  chain: ChainWriter;
  mask: Masker;
  /**
   * Runs `fn` inside the next group-commit transaction and resolves after COMMIT. If `fn` throws, its writes
   * (and the chain head) are rolled back to where it started. `durable`: that COMMIT reaches stable storage (it
   * survives a power loss) before the promise resolves, whatever `synchronous` is.
   */
  write<T>(fn: () => T, options?: { durable?: boolean }): Promise<T>;
}

/** Runs a read; any failure that is not already a PdpError (closed connection, I/O error) is store_unavailable. */
export function read<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (isPdpError(error)) throw error;
    throw new PdpError('store_unavailable', 'the store could not be read', { cause: error });
  }
}

export function prepareStatements(db: Database): Statements {
  const out: Partial<Record<keyof typeof SQL, Statement>> = {};
  for (const key of Object.keys(SQL) as Array<keyof typeof SQL>) out[key] = db.prepare(SQL[key]);
  return out as Statements;
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
