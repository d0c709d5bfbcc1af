/**
 * The `Store` both engines share: every operation is a SQL program of the operation modules, run through the store
 * context each engine builds (SQLite synchronously, PostgreSQL asynchronously; `sql-program.ts`). An engine adds how
 * it opens, closes and counts.
 */
import type { AuditEventV1, ChainHead, NewAuditEvent, SignedHeadV1, VerifyResult } from '../audit/index.js';
import * as accessRequests from './access-request-ops.js';
import * as audit from './audit-ops.js';
import * as consoleSessions from './console-session-ops.js';
import type { ChainWriter } from './chain-writer.js';
import * as decisions from './decision-ops.js';
import * as decisionSearch from './decision-search-ops.js';
import type { EnqueueOptions, GroupCommitQueue } from './group-commit.js';
import * as outbox from './outbox-ops.js';
import * as revocations from './revocation-ops.js';
import type { Program } from './sql-program.js';
import * as suggestions from './suggestion-ops.js';
import * as usage from './usage-rollup-ops.js';
import type {
  ConsoleSessionInput,
  ConsoleSessionRecord,
  ConsoleSessionTouch,
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
  DecisionSearchPage,
  DecisionSearchQuery,
  DeliveryRecord,
  EventQuery,
  ExpireTasksInput,
  ClaimProviderMintInput,
  ElevationRecord,
  EndProviderMintInput,
  FindElevationsInput,
  Leadership,
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
import type { StoreContext } from './store-context.js';
import * as tasks from './task-ops.js';

/**
 * The context of an engine: `write` runs a program in the queue's next transaction, restoring the chain writer's
 * head if it throws (its writes are undone by the queue).
 */
export function storeContext(
  base: Omit<StoreContext, 'write'>,
  queue: GroupCommitQueue,
): StoreContext {
  const chain = base.chain;
  // The spread last (docs/architecture.md, "Following one request"): a clone given a new key after it is an object
  // V8 handles slowly, and every store operation goes through this one.
  return {
    write: <T>(program: () => Program<T>, options: EnqueueOptions = {}): Promise<T> => queue.enqueue(() => restoringHead(chain, program), options),
    ...base,
  };
}

/** A write's program, the chain writer's head restored if it throws; declared once (src/store/README.md, "Programs"). */
function* restoringHead<T>(chain: ChainWriter, program: () => Program<T>): Program<T> {
  const snapshot = chain.snapshot();
  try {
    return yield* program();
  } catch (error) {
    chain.restore(snapshot);
    throw error;
  }
}

export abstract class ProgramStore implements Store {
  protected constructor(
    protected readonly ctx: StoreContext,
    protected readonly queue: GroupCommitQueue,
    protected readonly chain: ChainWriter,
  ) {}

  abstract leadership(): Leadership;
  abstract stats(): StoreStats;
  abstract close(): Promise<void>;

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
  claimProviderMint(input: ClaimProviderMintInput): Promise<void> {
    return decisions.claimProviderMint(this.ctx, input);
  }
  endProviderMint(input: EndProviderMintInput): Promise<void> {
    return decisions.endProviderMint(this.ctx, input);
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
  searchDecisions(query: DecisionSearchQuery): Promise<DecisionSearchPage> {
    return decisionSearch.searchDecisions(this.ctx, query);
  }
  firstSeqStampedAtOrAfter(time: string): Promise<number | null> {
    return decisionSearch.firstSeqStampedAtOrAfter(this.ctx, time);
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

  createConsoleSession(input: ConsoleSessionInput): Promise<void> {
    return consoleSessions.createConsoleSession(this.ctx, input);
  }
  touchConsoleSession(input: ConsoleSessionTouch): Promise<ConsoleSessionRecord | undefined> {
    return consoleSessions.touchConsoleSession(this.ctx, input);
  }
  endConsoleSession(idSha256: string, at: string, event: NewAuditEvent): Promise<boolean> {
    return consoleSessions.endConsoleSession(this.ctx, idSha256, at, event);
  }
}
