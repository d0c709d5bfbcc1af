/**
 * The store on PostgreSQL, for several PDP replicas on one database: the same operations as the SQLite store (one
 * copy, `sql-program.ts`), run asynchronously. One writer connection runs the group-commit transactions (one at a
 * time; what arrives meanwhile forms the next batch), a pool serves reads. Every write transaction of every replica
 * takes the chain lock first (`postgres-connection.ts`), so the trail is one chain and each check-then-write sees
 * every commit before it: a decision is redeemed once across replicas, a task completed on one is closed for all.
 */
import type pg from 'pg';
import { compileMask } from '../audit/index.js';
import { ChainWriter } from './chain-writer.js';
import { GroupCommitQueue } from './group-commit.js';
import {
  LeaderLease,
  WriterConnection,
  connectionConfig,
  execute,
  isConnectionFailure,
  migratePostgres,
  postgresTransactionDriver,
  readPool,
} from './postgres-connection.js';
import type { PostgresOpenOptions } from './postgres-connection.js';
import { PG_SQL } from './postgres-sql.js';
import { ProgramStore, storeContext } from './program-store.js';
import { ReadBatcher } from './read-batcher.js';
import { taskFromRow } from './rows.js';
import type { TaskRow } from './rows.js';
import { all, refuseNulIn, runAsync } from './sql-program.js';
import type { Program } from './sql-program.js';
import type { Leadership, StoreStats, TaskRecord } from './store.js';
import { readFailure } from './store-context.js';

export interface PostgresStoreOptions extends PostgresOpenOptions {
  /** Dotted paths (masking.ts syntax) replaced by their digest in event data and decision records. Default none. */
  mask?: readonly string[];
  /** HMAC key for mask digests. Default none (plain SHA-256). */
  maskKey?: string | Uint8Array;
  /** Most operations per transaction. Default 1000. */
  maxBatchOps?: number;
  /** Most operations waiting before writes are refused with store_unavailable. Default 100,000. */
  maxQueuedOps?: number;
  /** How often a replica that does not lead tries to take the leadership lease, and its holder checks it. Default 5000 ms. */
  leaseRetryMs?: number;
}

export class PostgresStore extends ProgramStore {
  private closing: Promise<void> | undefined;
  private readonly lease: LeaderLease;

  /** Connects, creates the schema if asked, and migrates (safe from several replicas at once). */
  static async open(url: string, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
    const config = connectionConfig(url, options);
    await migratePostgres(config, options, new Date().toISOString());
    return new PostgresStore(config, options);
  }

  private constructor(
    config: pg.ClientConfig,
    options: PostgresStoreOptions,
    private readonly writer = new WriterConnection(config),
    private readonly pool = readPool(config, options),
  ) {
    const mask = compileMask(options.mask ?? [], options.maskKey === undefined ? {} : { key: options.maskKey });
    // The chain lock is taken with BEGIN (postgresTransactionDriver).
    const chain = new ChainWriter(mask);
    const queue = new GroupCommitQueue(postgresTransactionDriver(writer), {
      ...(options.maxBatchOps === undefined ? {} : { maxBatchOps: options.maxBatchOps }),
      ...(options.maxQueuedOps === undefined ? {} : { maxQueuedOps: options.maxQueuedOps }),
      onBatchStart: () => chain.beginBatch(),
      onBatchEnd: (committed) => chain.endBatch(committed),
    });
    const read = async <T>(program: () => Program<T>, options: { snapshot?: boolean } = {}): Promise<T> => {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw readFailure(error);
      }
      let broken: Error | undefined;
      try {
        if (options.snapshot !== true) return await runAsync(program(), (step) => execute(client, step));
        await execute(client, { kind: 'run', sql: 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY', params: [] });
        try {
          return await runAsync(program(), (step) => execute(client, step));
        } finally {
          await execute(client, { kind: 'run', sql: 'ROLLBACK', params: [] });
        }
      } catch (error) {
        // A connection that failed is not given back to the pool.
        if (isConnectionFailure(error)) broken = error as Error;
        throw readFailure(error);
      } finally {
        client.release(broken);
      }
    };
    super(storeContext({ engine: 'postgres', chain, mask, read }, queue), queue, chain);
    const leaseRetryMs = options.leaseRetryMs ?? 5000;
    if (!Number.isSafeInteger(leaseRetryMs) || leaseRetryMs < 1) throw new TypeError('leaseRetryMs must be a positive integer');
    this.lease = new LeaderLease(config, leaseRetryMs);
  }

  /** Started on first use: a store that never asks (the CLI, a proxy) holds no lease connection. */
  leadership(): Leadership {
    if (this.closing === undefined) this.lease.start();
    return this.lease;
  }

  /**
   * A task by id, read with the other tasks asked for in the same turn of the event loop (one statement: read-batcher.ts).
   * Every decide reads its task; on PostgreSQL the round trip, not the read, is the cost.
   */
  override getTask(id: string): Promise<TaskRecord | undefined> {
    // Refused alone: in the combined read it would fail every other caller's (refuseNul, sql-program.ts).
    try {
      refuseNulIn(id);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.tasks.load(id);
  }

  private readonly tasks = new ReadBatcher<TaskRecord>(async (ids) => {
    const rows = await this.ctx.read(() => all<TaskRow>(PG_SQL.selectTasksByIds, ids));
    return new Map(rows.map((row) => [row.id, taskFromRow(row)]));
  });

  stats(): StoreStats {
    return { ...this.queue.stats(), events: this.chain.committed, wal_checkpoints: null };
  }

  close(): Promise<void> {
    // The lease goes first: a process on its way out leaves the singleton jobs to another replica.
    this.closing ??= Promise.all([this.lease.close(), this.queue.close()])
      .then(() => this.writer.close())
      .then(() => this.pool.end());
    return this.closing;
  }
}
