/**
 * Group commit: operations enqueued during one turn of the event loop run in ONE transaction, in FIFO order,
 * and every caller's promise settles only after that transaction has committed (or failed).
 *
 * - An operation is a SQL program (`sql-program.ts`) run inside the transaction. When it throws a refusal (any error
 *   that is not a `StoreFailure`), only it is rejected, with that error, and nothing it wrote stays; the rest of the
 *   batch commits. A refusal before the operation's first write costs nothing. One after it is undone either by a
 *   savepoint taken just before that first write (SQLite: savepoints are in-process and cheap) or, for a driver
 *   without savepoints (PostgreSQL: each one is a round trip and a subtransaction), by rolling the transaction back
 *   and running the batch again without that operation. Operations check before they write, so that is rare.
 * - When the database fails (a `StoreFailure`: an SQL error, a lost connection, COMMIT failing), the whole
 *   transaction is rolled back and EVERY operation in it is rejected with PdpError('store_unavailable'): nothing
 *   of the batch is written, and no caller is told otherwise.
 * - A synchronous driver (SQLite) runs a whole transaction within one turn of the event loop; an asynchronous one
 *   (PostgreSQL) runs one transaction at a time, and what is enqueued meanwhile forms the next batch.
 * - The flush runs from `setImmediate`, so requests parsed in the same poll phase share a transaction; at most
 *   `maxBatchOps` run per transaction, the rest in the next one.
 * - An operation enqueued `durable` settles only once its transaction's COMMIT has reached stable storage, whatever
 *   the connection's durability setting (`syncCommitted` after the commit, off the writer's thread; or
 *   `durableCommits` around it): e.g. a signed
 *   head must not be published outside the database before the events it signs would survive a power loss.
 * - `close()` commits what is queued, then refuses new work.
 */
import { PdpError } from '../errors/pdp-error.js';
import { StoreFailure, run, runAsync, runSync } from './sql-program.js';
import type { Program, SqlStep } from './sql-program.js';

/** How one database connection runs a transaction's statements. */
export interface TransactionDriver {
  /** Exactly one of the two: runs a statement, throwing (or rejecting with) StoreFailure when the database fails. */
  executeSync?: (step: SqlStep) => unknown;
  executeAsync?: (step: SqlStep) => Promise<unknown>;
  begin: string;
  commit: string;
  rollback: string;
  /** Runs before each transaction's BEGIN, outside any transaction of its own (SQLite: ends the turn's read transaction). */
  beforeBegin?(): void;
  /** Savepoint statements; absent: a refusal after a write replays the batch without that operation. */
  savepoint?: { take: string; release: string; rollbackTo: string };
  /**
   * `true`: the COMMITs that follow reach stable storage before they return (SQLite: `synchronous = FULL`, the WAL
   * synced at COMMIT); `false`: back to the connection's own setting. Called outside a transaction only. Absent:
   * every COMMIT is durable already.
   */
  durableCommits?(on: boolean): void;
  /**
   * Makes every COMMIT so far reach stable storage, off the writer's thread (SQLite: an fsync of the WAL file in the
   * thread pool). When present it is used instead of `durableCommits`: a durable operation's transaction commits
   * like any other, the other operations in it settle at once, and the durable ones once this resolves (if it
   * fails, they reject with store_unavailable: committed, but not known to be durable).
   */
  syncCommitted?(): Promise<void>;
}

export interface EnqueueOptions {
  /** The transaction that runs this operation commits durably (see the file comment). Default false. */
  durable?: boolean;
  /**
   * `false`: no savepoint is taken before this operation's first write, because it refuses, if at all, before
   * writing (e.g. it appends one event): two statements fewer. Should it refuse after a write all the same, the
   * batch runs again without it, as on a driver without savepoints: slower, never wrong. Default true.
   */
  savepoint?: boolean;
}

export interface GroupCommitOptions {
  /** Most operations per transaction. Default 1000. */
  maxBatchOps?: number;
  /** Most operations waiting; beyond it enqueue rejects at once with store_unavailable (overload). Default 100,000. */
  maxQueuedOps?: number;
  /** Runs inside each transaction before its first operation (e.g. read the chain head). */
  onBatchStart?: () => Program<void>;
  /** Runs after each transaction: committed or rolled back. */
  onBatchEnd?: (committed: boolean) => void;
  /**
   * Asked before each transaction: a promise to wait for before it starts (the WAL checkpointer catching up, so the
   * next transaction can rewind the WAL), or undefined to start at once. The event loop is not held meanwhile: what
   * is enqueued waits and joins the next transaction. The promise must settle (rejecting counts as settling).
   */
  pauseBeforeBatch?: () => Promise<void> | undefined;
}

export interface GroupCommitStats {
  transactions: number;
  failed_transactions: number;
  ops: number;
  refused: number;
  largest_batch: number;
  queued: number;
}

interface Pending {
  program: () => Program<unknown>;
  durable: boolean;
  savepoint: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Thrown out of a transaction to run its batch again without the operation at `index` (refused after a write). */
class Replay extends Error {
  constructor(
    readonly index: number,
    readonly refusal: unknown,
  ) {
    super('replay the batch without one operation');
  }
}

export class GroupCommitQueue {
  private readonly driver: TransactionDriver;
  private readonly maxBatchOps: number;
  private readonly maxQueuedOps: number;
  private readonly onBatchStart: (() => Program<void>) | undefined;
  private readonly onBatchEnd: ((committed: boolean) => void) | undefined;
  private readonly pauseBeforeBatch: (() => Promise<void> | undefined) | undefined;
  private queue: Pending[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  /** The transaction in flight (asynchronous drivers). */
  private running: Promise<void> | undefined;
  /** A pause before the next transaction (`pauseBeforeBatch`) in progress. */
  private pausing = false;
  private closed = false;
  /** The durable operations' syncs (syncCommitted), one after another; settles, never rejects. */
  private syncing: Promise<void> = Promise.resolve();
  private readonly counters = { transactions: 0, failed_transactions: 0, ops: 0, refused: 0, largest_batch: 0 };

  constructor(driver: TransactionDriver, options: GroupCommitOptions = {}) {
    if ((driver.executeSync === undefined) === (driver.executeAsync === undefined)) {
      throw new TypeError('a transaction driver has executeSync or executeAsync, not both');
    }
    this.driver = driver;
    this.maxBatchOps = options.maxBatchOps ?? 1000;
    this.maxQueuedOps = options.maxQueuedOps ?? 100_000;
    if (!Number.isSafeInteger(this.maxBatchOps) || this.maxBatchOps < 1) {
      throw new TypeError('maxBatchOps must be >= 1');
    }
    if (!Number.isSafeInteger(this.maxQueuedOps) || this.maxQueuedOps < 1) {
      throw new TypeError('maxQueuedOps must be >= 1');
    }
    this.onBatchStart = options.onBatchStart;
    this.onBatchEnd = options.onBatchEnd;
    this.pauseBeforeBatch = options.pauseBeforeBatch;
  }

  /** Runs `program` in the next transaction; resolves with its result after COMMIT (a durable one with `durable`). */
  enqueue<T>(program: () => Program<T>, options: EnqueueOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new PdpError('store_unavailable', 'the store is closed'));
    if (this.queue.length >= this.maxQueuedOps) {
      return Promise.reject(new PdpError('store_unavailable', `the store write queue is full (${this.maxQueuedOps})`));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ program, durable: options.durable === true, savepoint: options.savepoint !== false, resolve: resolve as (value: unknown) => void, reject });
      this.schedule();
    });
  }

  stats(): GroupCommitStats {
    return { ...this.counters, queued: this.queue.length };
  }

  /** Commits everything queued, then refuses new work. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.driver.executeSync !== undefined) {
      // A pause in progress (pauseBeforeBatch) is not waited for, on either driver: what is queued commits now.
      while (this.queue.length > 0) this.runBatchSync(this.takeBatch());
    } else {
      await this.running;
      while (this.queue.length > 0) await this.runBatchAsync(this.takeBatch());
    }
    // The durable operations' syncs, before the caller closes the connection (and SQLite removes its WAL file).
    await this.syncing;
  }

  private schedule(): void {
    if (this.scheduled !== undefined || this.running !== undefined || this.pausing || this.closed) return;
    this.scheduled = setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = undefined;
    if (this.queue.length === 0) return;
    const pause = this.closed ? undefined : this.pauseBeforeBatch?.();
    if (pause !== undefined) {
      // Like a transaction in flight: nothing is scheduled until it ends, then the queue (grown meanwhile) goes.
      // close() does not wait for it.
      this.pausing = true;
      void pause
        .catch(() => undefined)
        .then(() => {
          this.pausing = false;
          if (this.queue.length > 0) this.schedule();
        });
      return;
    }
    if (this.driver.executeSync !== undefined) {
      this.runBatchSync(this.takeBatch());
      if (this.queue.length > 0) this.schedule();
      return;
    }
    this.running = this.runBatchAsync(this.takeBatch()).finally(() => {
      this.running = undefined;
      if (this.queue.length > 0) this.schedule();
    });
  }

  private takeBatch(): Pending[] {
    if (this.queue.length <= this.maxBatchOps) {
      const batch = this.queue;
      this.queue = [];
      return batch;
    }
    return this.queue.splice(0, this.maxBatchOps);
  }

  private runBatchSync(batch: Pending[]): void {
    const execute = this.driver.executeSync as (step: SqlStep) => unknown;
    const durable = this.driver.syncCommitted === undefined && this.driver.durableCommits !== undefined && batch.some((op) => op.durable);
    try {
      this.driver.beforeBegin?.();
      if (durable) this.driver.durableCommits?.(true);
    } catch (error) {
      return this.failAll(batch, error);
    }
    try {
      for (let ops = batch; ; ) {
        let outcomes: Outcome[];
        try {
          outcomes = runSync(this.transaction(ops), execute);
        } catch (error) {
          try {
            execute({ kind: 'run', sql: this.driver.rollback, params: [] });
          } catch {
            // No transaction left to roll back, or the connection is unusable: nothing of this batch was committed.
          }
          ops = this.afterFailure(ops, error);
          if (ops.length === 0) return;
          continue;
        }
        return this.settle(ops, outcomes, batch.length);
      }
    } finally {
      if (durable) {
        try {
          this.driver.durableCommits?.(false);
        } catch {
          // Left durable: later commits are slower, never less safe. The next failure shows on a write.
        }
      }
    }
  }

  private async runBatchAsync(batch: Pending[]): Promise<void> {
    const execute = this.driver.executeAsync as (step: SqlStep) => Promise<unknown>;
    for (let ops = batch; ; ) {
      let outcomes: Outcome[];
      try {
        outcomes = await runAsync(this.transaction(ops), execute);
      } catch (error) {
        await execute({ kind: 'run', sql: this.driver.rollback, params: [] }).catch(() => undefined);
        ops = this.afterFailure(ops, error);
        if (ops.length === 0) return;
        continue;
      }
      return this.settle(ops, outcomes, batch.length);
    }
  }

  /** After a rolled-back transaction: the operations to run again (a replay), or none (every one rejected). */
  private afterFailure(ops: Pending[], error: unknown): Pending[] {
    this.onBatchEnd?.(false);
    if (error instanceof Replay) {
      const refused = ops[error.index] as Pending;
      this.counters.refused++;
      refused.reject(error.refusal);
      return ops.filter((_, i) => i !== error.index);
    }
    this.failAll(ops, error, false);
    return [];
  }

  private *transaction(ops: readonly Pending[]): Program<Outcome[]> {
    yield* run(this.driver.begin);
    if (this.onBatchStart !== undefined) yield* this.onBatchStart();
    const outcomes: Outcome[] = [];
    for (let i = 0; i < ops.length; i++) outcomes.push(yield* this.runOne(ops[i] as Pending, i));
    yield* run(this.driver.commit);
    return outcomes;
  }

  /** One operation, forwarding its statements; see the file comment for how a refusal after a write is undone. */
  private *runOne(op: Pending, index: number): Program<Outcome> {
    const savepoint = op.savepoint ? this.driver.savepoint : undefined;
    let wrote = false;
    let saved = false;
    try {
      const program = op.program();
      let next = program.next();
      while (next.done !== true) {
        const step = next.value;
        if (step.kind === 'run' && !wrote) {
          wrote = true;
          if (savepoint !== undefined) {
            yield* run(savepoint.take);
            saved = true;
          }
        }
        let value: unknown;
        try {
          value = yield step;
        } catch (error) {
          next = program.throw(error);
          continue;
        }
        next = program.next(value);
      }
      if (saved) yield* run((savepoint as { release: string }).release);
      return { ok: true, value: next.value };
    } catch (error) {
      if (error instanceof StoreFailure || error instanceof Replay) throw error;
      if (!wrote) return { ok: false, error };
      if (savepoint === undefined || !saved) throw new Replay(index, error);
      yield* run(savepoint.rollbackTo);
      yield* run(savepoint.release);
      return { ok: false, error };
    }
  }

  private settle(batch: readonly Pending[], outcomes: readonly Outcome[], size = batch.length): void {
    this.counters.transactions++;
    this.onBatchEnd?.(true);
    this.counters.largest_batch = Math.max(this.counters.largest_batch, size);
    const sync = this.driver.syncCommitted;
    // Durable operations that committed, told once the sync is done.
    const waiting: Array<{ op: Pending; value: unknown }> = [];
    batch.forEach((op, i) => {
      const outcome = outcomes[i] as Outcome;
      if (outcome.ok) {
        this.counters.ops++;
        if (op.durable && sync !== undefined) waiting.push({ op, value: outcome.value });
        else op.resolve(outcome.value);
      } else {
        this.counters.refused++;
        op.reject(outcome.error);
      }
    });
    if (sync === undefined || waiting.length === 0) return;
    // One sync after another: durable operations are told in the order they committed.
    this.syncing = this.syncing.then(() =>
      sync.call(this.driver).then(
        () => {
          for (const { op, value } of waiting) op.resolve(value);
        },
        (error: unknown) => {
          for (const { op } of waiting) op.reject(new PdpError('store_unavailable', 'the write was committed but could not be made durable', { cause: error }));
        },
      ),
    );
  }

  private failAll(batch: readonly Pending[], cause: unknown, notify = true): void {
    this.counters.failed_transactions++;
    if (notify) this.onBatchEnd?.(false);
    const reason = cause instanceof StoreFailure ? cause.cause : cause;
    for (const op of batch) {
      op.reject(new PdpError('store_unavailable', 'the store could not commit the write', { cause: reason }));
    }
  }
}
