/**
 * SQL programs: every operation of the store is written once, as a generator that yields the statements it runs
 * and receives their results, and each engine's driver runs it:
 *
 * - SQLite (better-sqlite3) runs a program synchronously (`runSync`): a transaction never spans a turn of the
 *   event loop, exactly as when the operations called the statements themselves.
 * - PostgreSQL (pg) runs it asynchronously (`runAsync`), one round trip per statement on one connection.
 *
 * Statements are the portable SQL texts of `sql.ts` with positional `?` parameters; the PostgreSQL driver renumbers
 * them (`$1`…). So an operation module never asks which engine it runs on, and there is one copy of every
 * check-then-write. The one exception is the usage rollup's fold, which reads inside the payloads with each engine's
 * JSON functions (`sql.ts` for SQLite, `postgres-sql.ts`).
 *
 *   function* markRedeemed(id: string, jti: string): Program<boolean> {
 *     const row = yield* get<DecisionRow>(SQL.selectDecision, id);
 *     if (row === undefined) throw new PdpError('decision_not_found', …);   // a refusal: nothing was written
 *     return (yield* run(SQL.markRedeemed, jti, now, id)) === 1;
 *   }
 *
 * A driver reports every failure of the database (an SQL error, a lost connection, a closed handle) as a
 * `StoreFailure` thrown into the program, so an error a program throws on its own is always a refusal.
 */
import { PdpError } from '../errors/pdp-error.js';

/** One statement: `get` the first row (or undefined), `all` rows, or `run` a write (its result is the rows changed). */
export interface SqlStep {
  readonly kind: 'get' | 'all' | 'run';
  readonly sql: string;
  readonly params: readonly unknown[];
}

export type Program<T> = Generator<SqlStep, T, unknown>;

/** The first row of a query, or undefined. */
export function* get<R>(sql: string, ...params: unknown[]): Program<R | undefined> {
  return (yield { kind: 'get', sql, params }) as R | undefined;
}

/** Every row of a query. */
export function* all<R>(sql: string, ...params: unknown[]): Program<R[]> {
  return (yield { kind: 'all', sql, params }) as R[];
}

/** Runs a write; returns the number of rows it changed. */
export function* run(sql: string, ...params: unknown[]): Program<number> {
  return (yield { kind: 'run', sql, params }) as number;
}

/**
 * Every driver runs this before a statement: text holding U+0000 is the operation's own refusal (invalid_request).
 * PostgreSQL text cannot hold it, and sent it would fail the whole transaction, every other caller's write in it
 * included; SQLite refuses it too, so both engines keep the same data. (JSON payloads are encoded with it escaped:
 * this is about plain text columns, an id, a reason, a note.)
 */
export function refuseNul(step: SqlStep): void {
  for (const value of step.params) refuseNulIn(value);
}

/** One value (a string, or an array of them) as `refuseNul` checks each parameter. */
export function refuseNulIn(value: unknown): void {
  if (typeof value === 'string' ? value.includes('\u0000') : Array.isArray(value) && value.some((v) => typeof v === 'string' && v.includes('\u0000'))) {
    throw new PdpError('invalid_request', 'a text value holds a NUL character (U+0000), which the store cannot keep');
  }
}

/** A failure of the database itself, as a driver reports it. The cause is the engine's error. */
export class StoreFailure extends Error {
  constructor(cause: unknown) {
    super('the database failed', { cause });
    this.name = 'StoreFailure';
  }
}

/** Runs `program` to its end with a synchronous executor (which must throw StoreFailure for database errors). */
export function runSync<T>(program: Program<T>, execute: (step: SqlStep) => unknown): T {
  let next = program.next();
  while (next.done !== true) {
    let value: unknown;
    try {
      value = execute(next.value);
    } catch (error) {
      next = program.throw(error);
      continue;
    }
    next = program.next(value);
  }
  return next.value;
}

/** Runs `program` to its end with an asynchronous executor (which must reject with StoreFailure for database errors). */
export async function runAsync<T>(program: Program<T>, execute: (step: SqlStep) => Promise<unknown>): Promise<T> {
  let next = program.next();
  while (next.done !== true) {
    let value: unknown;
    try {
      value = await execute(next.value);
    } catch (error) {
      next = program.throw(error);
      continue;
    }
    next = program.next(value);
  }
  return next.value;
}
