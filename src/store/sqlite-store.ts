/**
 * The embedded store: one SQLite file (better-sqlite3, WAL), one connection, one group-commit writer, and a
 * worker thread with a second connection that checkpoints the WAL in the background (`wal-checkpointer.ts`).
 * A single process should own the file for writing; another process may read it, and even write to it (a CLI):
 * the chain head is re-read in every transaction, so the chain cannot fork.
 */
import type { Database } from 'better-sqlite3';
import { compileMask } from '../audit/index.js';
import { ChainWriter } from './chain-writer.js';
import { GroupCommitQueue } from './group-commit.js';
import { migrate } from './migrations.js';
import { ProgramStore, storeContext } from './program-store.js';
import { MEMORY_PATH, TurnReads, openSqlite, sqliteExecutor, sqliteTransactionDriver } from './sqlite-connection.js';
import type { SqliteOpenOptions } from './sqlite-connection.js';
import type { Program } from './sql-program.js';
import type { Leadership, StoreStats } from './store.js';
import { readFailure } from './store-context.js';
import { WalCheckpointer } from './wal-checkpointer.js';

export interface SqliteStoreOptions extends SqliteOpenOptions {
  /** Dotted paths (masking.ts syntax) replaced by their digest in event data and decision records. Default none. */
  mask?: readonly string[];
  /** HMAC key for mask digests. Default none (plain SHA-256). */
  maskKey?: string | Uint8Array;
  /** Most operations per transaction. Default 1000. */
  maxBatchOps?: number;
  /** Most operations waiting before writes are refused with store_unavailable. Default 100,000. */
  maxQueuedOps?: number;
  /**
   * Who checkpoints the WAL of a file database. `background` (default): a worker thread (`wal-checkpointer.ts`),
   * so the event loop never waits for a checkpoint's fsyncs. `inline`: SQLite's autocheckpoint on the writer's
   * connection. A `:memory:` database has no WAL and ignores it.
   */
  checkpoint?: 'background' | 'inline';
  /** Background checkpoint interval in ms. Default 250. */
  checkpointIntervalMs?: number;
  /** WAL pages past which the writer checkpoints inline even with the worker running. Default 10,000 (40 MB). */
  walBackstopPages?: number;
  /** WAL pages from which the writer pauses (without holding the event loop) for the worker to catch up. Default 2,000 (8 MB). */
  walCatchUpPages?: number;
  /** Called once if the checkpoint worker fails; the store has already switched back to inline checkpoints. */
  onCheckpointFailure?: (error: unknown) => void;
}

const SQLITE_LEADERSHIP: Leadership = Object.freeze({ leading: true, check: () => Promise.resolve(true) });

export class SqliteStore extends ProgramStore {
  private readonly db: Database;
  private readonly checkpointer: WalCheckpointer | undefined;
  private readonly reads: TurnReads;
  private closing: Promise<void> | undefined;

  /** Opens (creating if needed) and migrates the database at `path` (`:memory:` for a private in-memory one). */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    const db = openSqlite(path, options);
    try {
      migrate(db, new Date().toISOString());
      const background = path !== MEMORY_PATH && (options.checkpoint ?? 'background') === 'background';
      return new SqliteStore(db, options, background);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  private constructor(db: Database, options: SqliteStoreOptions, backgroundCheckpoints: boolean) {
    const mask = compileMask(options.mask ?? [], options.maskKey === undefined ? {} : { key: options.maskKey });
    const chain = new ChainWriter(mask);
    const execute = sqliteExecutor(db);
    // The checkpointer is started last (below); the writer asks it before each transaction whether to pause.
    const checkpointing: { by?: WalCheckpointer } = {};
    // The reads of one turn of the event loop share one read transaction, ended before each write transaction.
    const reads = new TurnReads(db, execute);
    const queue = new GroupCommitQueue({ ...sqliteTransactionDriver(db, execute), beforeBegin: () => reads.end() }, {
      ...(options.maxBatchOps === undefined ? {} : { maxBatchOps: options.maxBatchOps }),
      ...(options.maxQueuedOps === undefined ? {} : { maxQueuedOps: options.maxQueuedOps }),
      onBatchStart: () => chain.beginBatch(),
      onBatchEnd: (committed) => chain.endBatch(committed),
      pauseBeforeBatch: () => checkpointing.by?.catchUp(),
    });
    // Reads are synchronous, like the writer: a read never sees a batch half-way (none spans a turn of the event
    // loop). Every read is a snapshot: it runs in its turn's DEFERRED read transaction (`TurnReads`; WAL: it never
    // waits for the writer, nor holds it up).
    const read = async <T>(program: () => Program<T>): Promise<T> => {
      try {
        return reads.run(program);
      } catch (error) {
        throw readFailure(error);
      }
    };
    super(storeContext({ engine: 'sqlite', sqlite: db, chain, mask, read }, queue), queue, chain);
    this.db = db;
    this.reads = reads;
    // Last, so nothing above can throw and leave a worker running; a worker that cannot start means inline
    // checkpoints, as when it fails later.
    if (backgroundCheckpoints) {
      try {
        this.checkpointer = new WalCheckpointer(db, {
          ...(options.checkpointIntervalMs === undefined ? {} : { intervalMs: options.checkpointIntervalMs }),
          ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
          ...(options.walBackstopPages === undefined ? {} : { backstopPages: options.walBackstopPages }),
          ...(options.walCatchUpPages === undefined ? {} : { catchUpPages: options.walCatchUpPages }),
          ...(options.onCheckpointFailure === undefined ? {} : { onFailure: options.onCheckpointFailure }),
        });
        checkpointing.by = this.checkpointer;
      } catch (error) {
        if (error instanceof TypeError) throw error;
        options.onCheckpointFailure?.(error);
      }
    }
  }

  /** Always the leader: one machine owns the file, and the workers of `serve --workers N` leave these jobs to worker 1. */
  leadership(): Leadership {
    return SQLITE_LEADERSHIP;
  }

  stats(): StoreStats {
    return { ...this.queue.stats(), events: this.chain.committed, wal_checkpoints: this.checkpointer?.stats() ?? null };
  }

  close(): Promise<void> {
    this.closing ??= this.queue
      .close()
      .then(() => this.checkpointer?.stop())
      .then(() => {
        this.reads.end();
        this.db.close();
      });
    return this.closing;
  }
}
