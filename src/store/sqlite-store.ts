/**
 * The embedded store: one SQLite file (better-sqlite3, WAL), one connection, one group-commit writer, and a
 * worker thread with a second connection that checkpoints the WAL in the background (`wal-checkpointer.ts`).
 * A single process should own the file for writing; another process may read it, and even write to it (a CLI):
 * the chain head is re-read in every transaction, so the chain cannot fork.
 */
import type { Database } from 'better-sqlite3';
import { compileMask } from '../audit/index.js';
import type { AuditEventV1, ChainHead, NewAuditEvent, SignedHeadV1, VerifyResult } from '../audit/index.js';
import * as accessRequests from './access-request-ops.js';
import * as audit from './audit-ops.js';
import { ChainWriter } from './chain-writer.js';
import * as decisions from './decision-ops.js';
import { GroupCommitQueue } from './group-commit.js';
import { migrate } from './migrations.js';
import * as outbox from './outbox-ops.js';
import * as revocations from './revocation-ops.js';
import * as suggestions from './suggestion-ops.js';
import * as usage from './usage-rollup-ops.js';
import { MEMORY_PATH, openSqlite, sqliteExecutor, sqliteTransactionDriver } from './sqlite-connection.js';
import { readFailure } from './store-context.js';
import { runSync } from './sql-program.js';
import type { Program } from './sql-program.js';
import type { SqliteOpenOptions } from './sqlite-connection.js';
import type {
  AccessRequestList,
  AccessRequestRecord,
  AccessRequestSweep,
  ChainStart,
  ClaimDeliveriesInput,
  ClaimedDelivery,
  CompleteDeliveryInput,
  CompleteTaskInput,
  CreateAccessRequestInput,
  CreatedAccessRequest,
  DecideAccessRequestInput,
  DecideSuggestionInput,
  DeliveryRecord,
  EventQuery,
  ExpireTasksInput,
  ElevationRecord,
  FindElevationsInput,
  ListAccessRequestsQuery,
  ListDeliveriesQuery,
  ListSuggestionsQuery,
  OutboxCounts,
  PruneEventsInput,
  PruneResult,
  RecordDecisionInput,
  RedeemDecisionInput,
  Redemption,
  RegisterTaskInput,
  RevocationFeed,
  RevocationFeedInput,
  RevokeTokenInput,
  RollupUsageInput,
  RollupUsageResult,
  Store,
  StoreStats,
  StoredChainVerifyOptions,
  StoredDecision,
  SuggestionRecord,
  SaveSuggestionsOptions,
  SaveSuggestionsResult,
  NotificationRecord,
  SweepAccessRequestsInput,
  TaskClosure,
  TaskRecord,
  TokenRecord,
  TokenUseInput,
  UsageSummary,
  UsageSummaryInput,
} from './store.js';
import { WalCheckpointer } from './wal-checkpointer.js';
import type { StoreContext } from './store-context.js';
import * as tasks from './task-ops.js';

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
  /** Called once if the checkpoint worker fails; the store has already switched back to inline checkpoints. */
  onCheckpointFailure?: (error: unknown) => void;
}

export class SqliteStore implements Store {
  private readonly db: Database;
  private readonly queue: GroupCommitQueue;
  private readonly ctx: StoreContext;
  private readonly chain: ChainWriter;
  private readonly checkpointer: WalCheckpointer | undefined;
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
    this.db = db;
    const mask = compileMask(options.mask ?? [], options.maskKey === undefined ? {} : { key: options.maskKey });
    const chain = new ChainWriter(mask);
    this.chain = chain;
    const execute = sqliteExecutor(db);
    this.queue = new GroupCommitQueue(sqliteTransactionDriver(db, execute), {
      ...(options.maxBatchOps === undefined ? {} : { maxBatchOps: options.maxBatchOps }),
      ...(options.maxQueuedOps === undefined ? {} : { maxQueuedOps: options.maxQueuedOps }),
      onBatchStart: () => chain.beginBatch(),
      onBatchEnd: (committed) => chain.endBatch(committed),
    });
    const queue = this.queue;
    this.ctx = {
      engine: 'sqlite',
      sqlite: db,
      chain,
      mask,
      write: <T>(program: () => Program<T>, options: { durable?: boolean } = {}): Promise<T> =>
        queue.enqueue(function* () {
          const snapshot = chain.snapshot();
          try {
            return yield* program();
          } catch (error) {
            chain.restore(snapshot);
            throw error;
          }
        }, options),
      // Synchronous, like the writer: a read never sees a batch half-way (none spans a turn of the event loop). A
      // snapshot is a DEFERRED read transaction (WAL: it never waits for the writer, nor holds it up).
      read: async <T>(program: () => Program<T>, options: { snapshot?: boolean } = {}): Promise<T> => {
        try {
          if (options.snapshot !== true) return runSync(program(), execute);
          execute({ kind: 'run', sql: 'BEGIN DEFERRED', params: [] });
          try {
            return runSync(program(), execute);
          } finally {
            if (db.inTransaction) execute({ kind: 'run', sql: 'COMMIT', params: [] });
          }
        } catch (error) {
          throw readFailure(error);
        }
      },
    };
    // Last, so nothing above can throw and leave a worker running; a worker that cannot start means inline
    // checkpoints, as when it fails later.
    if (backgroundCheckpoints) {
      try {
        this.checkpointer = new WalCheckpointer(db, {
          ...(options.checkpointIntervalMs === undefined ? {} : { intervalMs: options.checkpointIntervalMs }),
          ...(options.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: options.busyTimeoutMs }),
          ...(options.walBackstopPages === undefined ? {} : { backstopPages: options.walBackstopPages }),
          ...(options.onCheckpointFailure === undefined ? {} : { onFailure: options.onCheckpointFailure }),
        });
      } catch (error) {
        if (error instanceof TypeError) throw error;
        options.onCheckpointFailure?.(error);
      }
    }
  }

  registerTask(input: RegisterTaskInput): Promise<TaskRecord> {
    return tasks.registerTask(this.ctx, input);
  }
  getTask(id: string): Promise<TaskRecord | undefined> {
    return tasks.getTask(this.ctx, id);
  }
  completeTask(input: CompleteTaskInput): Promise<TaskClosure> {
    return tasks.completeTask(this.ctx, input);
  }
  expireTasks(input: ExpireTasksInput): Promise<TaskClosure[]> {
    return tasks.expireTasks(this.ctx, input);
  }

  recordDecision(input: RecordDecisionInput): Promise<StoredDecision> {
    return decisions.recordDecision(this.ctx, input);
  }
  getDecision(decisionId: string): Promise<StoredDecision | undefined> {
    return decisions.getDecision(this.ctx, decisionId);
  }
  redeemDecision(input: RedeemDecisionInput): Promise<Redemption> {
    return decisions.redeemDecision(this.ctx, input);
  }
  getToken(jti: string): Promise<TokenRecord | undefined> {
    return decisions.getToken(this.ctx, jti);
  }
  revokeToken(input: RevokeTokenInput): Promise<boolean> {
    return decisions.revokeToken(this.ctx, input);
  }
  recordTokenUse(input: TokenUseInput): Promise<void> {
    return decisions.recordTokenUse(this.ctx, input);
  }
  recordTokenUses(inputs: readonly TokenUseInput[]): Promise<void> {
    return decisions.recordTokenUses(this.ctx, inputs);
  }
  revocationFeed(input: RevocationFeedInput): Promise<RevocationFeed> {
    return revocations.revocationFeed(this.ctx, input);
  }

  appendEvents(events: readonly NewAuditEvent[]): Promise<AuditEventV1[]> {
    return audit.appendEvents(this.ctx, events);
  }
  iterateEvents(query: EventQuery = {}): AsyncIterable<AuditEventV1> {
    return audit.iterateEvents(this.ctx, query);
  }
  decisionChain(decisionId: string): Promise<AuditEventV1[]> {
    return audit.decisionChain(this.ctx, decisionId);
  }
  chainStart(): Promise<ChainStart> {
    return audit.chainStart(this.ctx);
  }
  chainHead(): Promise<ChainHead> {
    return audit.chainHead(this.ctx);
  }
  pruneEvents(input: PruneEventsInput): Promise<PruneResult> {
    return audit.pruneEvents(this.ctx, input);
  }
  signHead(sign: (head: ChainHead) => SignedHeadV1): Promise<AuditEventV1 | null> {
    return audit.signHead(this.ctx, sign);
  }
  verifyStoredChain(options: StoredChainVerifyOptions = {}): Promise<VerifyResult> {
    return audit.verifyStoredChain(this.ctx, options);
  }

  createAccessRequest(input: CreateAccessRequestInput): Promise<CreatedAccessRequest> {
    return accessRequests.createAccessRequest(this.ctx, input);
  }
  getAccessRequest(id: string): Promise<AccessRequestRecord | undefined> {
    return accessRequests.getAccessRequest(this.ctx, id);
  }

  getAccessRequestByKey(requestedBy: string, key: string): Promise<AccessRequestRecord | undefined> {
    return accessRequests.getAccessRequestByKey(this.ctx, requestedBy, key);
  }
  listAccessRequests(query: ListAccessRequestsQuery): Promise<AccessRequestList> {
    return accessRequests.listAccessRequests(this.ctx, query);
  }
  decideAccessRequest(input: DecideAccessRequestInput): Promise<AccessRequestRecord> {
    return accessRequests.decideAccessRequest(this.ctx, input);
  }
  findElevations(input: FindElevationsInput): Promise<ElevationRecord[]> {
    return accessRequests.findElevations(this.ctx, input);
  }
  sweepAccessRequests(input: SweepAccessRequestsInput): Promise<AccessRequestSweep> {
    return accessRequests.sweepAccessRequests(this.ctx, input);
  }

  claimDeliveries(input: ClaimDeliveriesInput): Promise<ClaimedDelivery[]> {
    return outbox.claimDeliveries(this.ctx, input);
  }
  completeDelivery(input: CompleteDeliveryInput): Promise<DeliveryRecord> {
    return outbox.completeDelivery(this.ctx, input);
  }
  listDeliveries(query: ListDeliveriesQuery): Promise<DeliveryRecord[]> {
    return outbox.listDeliveries(this.ctx, query);
  }
  outboxCounts(): Promise<OutboxCounts> {
    return outbox.outboxCounts(this.ctx);
  }

  rollupUsage(input: RollupUsageInput = {}): Promise<RollupUsageResult> {
    return usage.rollupUsage(this.ctx, input);
  }
  usageSummary(input: UsageSummaryInput): Promise<UsageSummary> {
    return usage.usageSummary(this.ctx, input);
  }
  saveSuggestions(list: readonly SuggestionRecord[], options?: SaveSuggestionsOptions): Promise<SaveSuggestionsResult> {
    return suggestions.saveSuggestions(this.ctx, list, options);
  }
  getNotification(id: string): Promise<NotificationRecord | undefined> {
    return suggestions.getNotification(this.ctx, id);
  }
  listSuggestions(query: ListSuggestionsQuery): Promise<SuggestionRecord[]> {
    return suggestions.listSuggestions(this.ctx, query);
  }
  getSuggestion(id: string): Promise<SuggestionRecord | undefined> {
    return suggestions.getSuggestion(this.ctx, id);
  }
  decideSuggestion(input: DecideSuggestionInput): Promise<SuggestionRecord> {
    return suggestions.decideSuggestion(this.ctx, input);
  }

  stats(): StoreStats {
    return { ...this.queue.stats(), events: this.chain.committed, wal_checkpoints: this.checkpointer?.stats() ?? null };
  }

  close(): Promise<void> {
    this.closing ??= this.queue
      .close()
      .then(() => this.checkpointer?.stop())
      .then(() => {
        this.db.close();
      });
    return this.closing;
  }
}
