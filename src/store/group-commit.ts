/**
 * Group commit: operations enqueued during one turn of the event loop run in ONE transaction, in FIFO order,
 * and every caller's promise settles only after that transaction has committed (or failed).
 *
 * - An operation is a synchronous function run inside the transaction, under its own savepoint. When it throws
 *   a refusal (any error the database did not raise), its savepoint is rolled back and only it is rejected, with
 *   that error; the rest of the batch commits.
 * - When the database fails (an error `isStoreFailure` recognises, the engine aborting the transaction on its
 *   own, or COMMIT failing), the whole transaction is rolled back and EVERY operation in it is rejected with
 *   PdpError('store_unavailable'): nothing of the batch is written, and no caller is told otherwise.
 * - The flush runs from `setImmediate`, so requests parsed in the same poll phase share a transaction; at most
 *   `maxBatchOps` run per transaction, the rest in the next one.
 * - An operation enqueued `durable` makes its whole transaction's COMMIT reach stable storage before any promise of
 *   it settles, whatever the connection's durability setting (`TransactionControl.durableCommits`): e.g. a signed
 *   head must not be published outside the database before the events it signs would survive a power loss.
 * - `close()` commits what is queued, then refuses new work.
 */
import { PdpError } from '../errors/pdp-error.js';

/** The transaction primitives of one database connection. */
export interface TransactionControl {
  begin(): void;
  commit(): void;
  rollback(): void;
  savepoint(): void;
  releaseSavepoint(): void;
  rollbackToSavepoint(): void;
  /** False when the engine has aborted the transaction on its own (e.g. SQLite after an I/O error). */
  inTransaction(): boolean;
  /** True for errors raised by the database itself: they fail the whole batch. */
  isStoreFailure(error: unknown): boolean;
  /**
   * `true`: the COMMITs that follow reach stable storage before they return (SQLite: `synchronous = FULL`, the WAL
   * synced at COMMIT); `false`: back to the connection's own setting. Called outside a transaction only. Absent:
   * every COMMIT is durable already.
   */
  durableCommits?(on: boolean): void;
}

export interface EnqueueOptions {
  /** The transaction that runs this operation commits durably (see the file comment). Default false. */
  durable?: boolean;
}

export interface GroupCommitOptions {
  /** Most operations per transaction. Default 1000. */
  maxBatchOps?: number;
  /** Most operations waiting; beyond it enqueue rejects at once with store_unavailable (overload). Default 100,000. */
  maxQueuedOps?: number;
  /** Runs inside each transaction before its first operation (e.g. read the chain head). */
  onBatchStart?: () => void;
  /** Runs after each transaction: committed or rolled back. */
  onBatchEnd?: (committed: boolean) => void;
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
  run: () => unknown;
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** Thrown inside a batch to abandon it. */
class BatchAborted extends Error {}

export class GroupCommitQueue {
  private readonly tx: TransactionControl;
  private readonly maxBatchOps: number;
  private readonly maxQueuedOps: number;
  private readonly onBatchStart: (() => void) | undefined;
  private readonly onBatchEnd: ((committed: boolean) => void) | undefined;
  private queue: Pending[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;
  private readonly counters = { transactions: 0, failed_transactions: 0, ops: 0, refused: 0, largest_batch: 0 };

  constructor(tx: TransactionControl, options: GroupCommitOptions = {}) {
    this.tx = tx;
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
  }

  /** Runs `op` in the next transaction; resolves with its result after COMMIT (a durable one with `durable`). */
  enqueue<T>(op: () => T, options: EnqueueOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new PdpError('store_unavailable', 'the store is closed'));
    if (this.queue.length >= this.maxQueuedOps) {
      return Promise.reject(new PdpError('store_unavailable', `the store write queue is full (${this.maxQueuedOps})`));
    }
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ run: op, durable: options.durable === true, resolve: resolve as (value: unknown) => void, reject });
      this.scheduled ??= setImmediate(() => this.flush());
    });
  }

  stats(): GroupCommitStats {
    return { ...this.counters, queued: this.queue.length };
  }

  /** Commits everything queued, then refuses new work. */
  close(): Promise<void> {
    this.closed = true;
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (this.queue.length > 0) this.runBatch(this.takeBatch());
    return Promise.resolve();
  }

  private flush(): void {
    this.scheduled = undefined;
    if (this.queue.length === 0) return;
    this.runBatch(this.takeBatch());
    if (this.queue.length > 0) this.scheduled ??= setImmediate(() => this.flush());
  }

  private takeBatch(): Pending[] {
    if (this.queue.length <= this.maxBatchOps) {
      const batch = this.queue;
      this.queue = [];
      return batch;
    }
    return this.queue.splice(0, this.maxBatchOps);
  }

  private runBatch(batch: Pending[]): void {
    const durable = this.tx.durableCommits !== undefined && batch.some((op) => op.durable);
    try {
      if (durable) this.tx.durableCommits?.(true);
    } catch (error) {
      return this.failAll(batch, error);
    }
    try {
      this.runTransaction(batch);
    } finally {
      if (durable) {
        try {
          this.tx.durableCommits?.(false);
        } catch {
          // Left durable: later commits are slower, never less safe. The next failure shows on a write.
        }
      }
    }
  }

  private runTransaction(batch: Pending[]): void {
    const outcomes: Outcome[] = [];
    try {
      this.tx.begin();
    } catch (error) {
      return this.failAll(batch, error);
    }
    try {
      this.onBatchStart?.();
      for (const op of batch) outcomes.push(this.runOne(op));
      this.tx.commit();
    } catch (error) {
      try {
        if (this.tx.inTransaction()) this.tx.rollback();
      } catch {
        // The connection is unusable; nothing of this batch was committed either way.
      }
      return this.failAll(batch, error instanceof BatchAborted ? error.cause : error);
    }
    this.counters.transactions++;
    this.onBatchEnd?.(true);
    this.counters.largest_batch = Math.max(this.counters.largest_batch, batch.length);
    batch.forEach((op, i) => {
      const outcome = outcomes[i] as Outcome;
      if (outcome.ok) {
        this.counters.ops++;
        op.resolve(outcome.value);
      } else {
        this.counters.refused++;
        op.reject(outcome.error);
      }
    });
  }

  private runOne(op: Pending): Outcome {
    this.tx.savepoint();
    try {
      const value = op.run();
      this.tx.releaseSavepoint();
      return { ok: true, value };
    } catch (error) {
      if (this.tx.isStoreFailure(error) || !this.tx.inTransaction()) {
        throw new BatchAborted('batch aborted', { cause: error });
      }
      this.tx.rollbackToSavepoint();
      this.tx.releaseSavepoint();
      return { ok: false, error };
    }
  }

  private failAll(batch: readonly Pending[], cause: unknown): void {
    this.counters.failed_transactions++;
    this.onBatchEnd?.(false);
    for (const op of batch) {
      op.reject(new PdpError('store_unavailable', 'the store could not commit the write', { cause }));
    }
  }
}
