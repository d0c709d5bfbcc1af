/**
 * The durable store: tasks, decisions, tokens and the audit chain, behind one interface so that the embedded
 * SQLite store and a later PostgreSQL store are interchangeable. Every method is async for that reason.
 *
 * Contract of every write method:
 * - it resolves only after its transaction has committed (group commit: many callers share one transaction);
 * - it appends its audit event(s) in the same transaction as its state change, chained in seq order;
 * - a refusal is a PdpError with its own code and writes nothing;
 * - a failure of the database rejects with PdpError('store_unavailable') (503) and writes nothing.
 * Times are ISO 8601 UTC strings with milliseconds (`Date.prototype.toISOString()`); the store never reads the clock.
 * Records come back as stored: decision records and event data after masking.
 */
import type {
  AuditEventType,
  AuditEventV1,
  ChainHead,
  NewAuditEvent,
  SignedHeadV1,
  TaskCloseStatus,
  TokenIssuedExtras,
  TokenRevokeReason,
  TokenUsedData,
  VerifyOptions,
  VerifyResult,
} from '../audit/index.js';
import type { RecordedOutcome } from '../wire/evaluation-v1.js';
import type { WalCheckpointStats } from './wal-checkpointer.js';

export type TaskContextValue = string | number | boolean;
/** `expired`: closed by expireTasks; `completed`: closed by completeTask. Only `active` tasks back new tokens. */
export type TaskStatus = 'active' | TaskCloseStatus;

export interface RegisterTaskInput {
  id: string;
  agent_id: string;
  type: string;
  context: Record<string, TaskContextValue>;
  /** The caller (orchestrator) that registered it. */
  registered_by: string;
  registered_at: string;
  expires_at: string;
  trace_id?: string | null;
}

export interface TaskRecord {
  id: string;
  agent_id: string;
  type: string;
  /** Stored unmasked: the PDP evaluates against it. Masking applies to the audit events that carry it. */
  context: Record<string, TaskContextValue>;
  registered_by: string;
  registered_at: string;
  expires_at: string;
  status: TaskStatus;
  /** Set by completeTask only (an expired task keeps null). */
  completed_at: string | null;
  completed_by: string | null;
}

export interface CompleteTaskInput {
  task_id: string;
  /** The caller completing it. */
  by: string;
  at: string;
  trace_id?: string | null;
}

/** A task closed by completion or expiry, and the jtis of the tokens revoked with it. */
export interface TaskClosure {
  task: TaskRecord;
  revoked_jtis: string[];
}

export interface ExpireTasksInput {
  now: string;
  /** Most tasks closed per call; call again while it returns this many. Default 500. */
  limit?: number;
}

export interface RecordDecisionInput {
  decision_id: string;
  caller_id: string;
  agent_id: string;
  task_id: string | null;
  integration: string;
  outcome: RecordedOutcome;
  /** The caller's request as received. */
  request: unknown;
  /** The evaluation input the PDP built (trusted task context included). */
  input: unknown;
  /** The evaluation result / response. */
  result: unknown;
  /**
   * What a token for this decision is issued from (scopes, bound record, TTL), kept UNMASKED: the masked
   * `result` may hold digests where the token needs the real record id. Operational state like a task's
   * context: it is never part of an audit event or an export. Null for decisions that cannot be redeemed.
   */
  token_grant?: unknown;
  policy_revision: string;
  trace_id?: string | null;
  created_at: string;
  /** Until when an allow may be redeemed for a token; null when it may not. */
  redeemable_until: string | null;
}

/** A decision as stored. Its evaluation input is in its decision event (decisionChain), not in the row. */
export interface StoredDecision extends Omit<RecordDecisionInput, 'trace_id' | 'input' | 'token_grant'> {
  trace_id: string | null;
  token_grant: unknown;
  /** jti of the token this decision was redeemed for, or null. A decision is redeemed at most once. */
  redeemed_jti: string | null;
  redeemed_at: string | null;
}

/** What the issuer decides about the token it will sign, returned synchronously from inside the redemption. */
export interface TokenGrant {
  jti: string;
  issued_at: string;
  expires_at: string;
  scopes: readonly string[];
  audience: string | null;
  /** What only the issuer knows, for the token.issued event (never the signed token itself). */
  event_data: TokenIssuedExtras;
}

export interface RedeemDecisionInput {
  decision_id: string;
  /** The authenticated caller redeeming; must be the caller the decision was made for. */
  caller_id: string;
  now: string;
  trace_id?: string | null;
  /**
   * Called inside the transaction, after every check passed, with the decision as stored. Must be synchronous,
   * quick and free of I/O (generate the jti, compute the claims; sign after the promise resolves). A PdpError it
   * throws refuses this redemption only.
   */
  makeToken: (decision: StoredDecision, task: { expires_at: string } | undefined) => TokenGrant;
}

export interface TokenRecord {
  jti: string;
  decision_id: string;
  /** The caller the token was issued to. */
  caller_id: string;
  agent_id: string;
  task_id: string | null;
  scopes: string[];
  audience: string | null;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
  revoked_by: string | null;
  revoke_reason: string | null;
}

export interface Redemption {
  decision: StoredDecision;
  token: TokenRecord;
}

export interface RevokeTokenInput {
  jti: string;
  /** Only the caller the token was issued to may revoke it. */
  caller_id: string;
  at: string;
  /** Default `revoked_by_caller`. */
  reason?: TokenRevokeReason;
  trace_id?: string | null;
}

export interface TokenUseInput {
  jti: string;
  /** The caller that presented the token (a resource server). */
  caller_id: string;
  at: string;
  /** What was checked and the verdict: `{ "action": "introspect", "active": true }`. */
  data: TokenUsedData;
  trace_id?: string | null;
}

export interface EventQuery {
  from_seq?: number;
  to_seq?: number;
  /** time >= since */
  since?: string;
  /** time < until */
  until?: string;
  agent_id?: string;
  task_id?: string;
  decision_id?: string;
  jti?: string;
  caller_id?: string;
  /** Decision events with this outcome (implies type decision). */
  outcome?: RecordedOutcome;
  types?: readonly AuditEventType[];
}

/** Written when events are pruned: the chain continues from last_pruned_hash. */
export interface AuditCheckpoint {
  last_pruned_seq: number;
  last_pruned_hash: string;
  pruned_at: string;
  pruned_count: number;
}

/** Where the stored chain starts: verify (and export) from here. */
export interface ChainStart {
  start_seq: number;
  start_prev_hash: string;
  checkpoint: AuditCheckpoint | null;
}

export interface PruneEventsInput {
  /** Events with time < before are pruned, as a prefix of the chain (stops at the first newer event). */
  before: string;
  at: string;
}

export interface PruneResult {
  pruned: number;
  /** The checkpoint written, or the latest one when nothing was pruned (null if there never was one). */
  checkpoint: AuditCheckpoint | null;
  /** The audit.pruned event appended with the checkpoint; null when nothing was pruned. */
  event: AuditEventV1 | null;
}

/** What verifying the stored chain may be given (the store supplies its own start and checkpoint). */
export type StoredChainVerifyOptions = Pick<VerifyOptions, 'expectedLast' | 'anchors' | 'headKeys'>;

export interface StoreStats {
  /** Transactions committed by the group-commit writer. */
  transactions: number;
  failed_transactions: number;
  /** Operations committed. */
  ops: number;
  /** Operations refused (a PdpError of their own) inside otherwise committed transactions. */
  refused: number;
  /** Audit events committed. */
  events: number;
  largest_batch: number;
  /** Operations waiting for the next transaction. */
  queued: number;
  /** Background WAL checkpoints (`wal-checkpointer.ts`); null when the store checkpoints inline (`:memory:`, or `checkpoint: 'inline'`). */
  wal_checkpoints: WalCheckpointStats | null;
}

export interface Store {
  registerTask(input: RegisterTaskInput): Promise<TaskRecord>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  /** Completes an active task and revokes all its unrevoked tokens. task_not_found, task_not_active. */
  completeTask(input: CompleteTaskInput): Promise<TaskClosure>;
  /** Closes active tasks whose expires_at <= now and revokes their tokens. */
  expireTasks(input: ExpireTasksInput): Promise<TaskClosure[]>;

  recordDecision(input: RecordDecisionInput): Promise<StoredDecision>;
  getDecision(decisionId: string): Promise<StoredDecision | undefined>;

  /**
   * Checks and redeems a decision and records the token, atomically. Refusals, in the order checked:
   * decision_not_found, decision_wrong_caller, decision_not_allowed, decision_already_redeemed, decision_expired,
   * task_not_active (the decision's registered task is no longer active).
   */
  redeemDecision(input: RedeemDecisionInput): Promise<Redemption>;
  getToken(jti: string): Promise<TokenRecord | undefined>;
  /** True when this call revoked it; false when unknown, issued to another caller, or already revoked. */
  revokeToken(input: RevokeTokenInput): Promise<boolean>;
  /** Appends a token.used event (no state change). */
  recordTokenUse(input: TokenUseInput): Promise<void>;

  /**
   * Appends events that have no state change of their own: policy.loaded, policy.refused and auth.failed, built with
   * their builders in src/audit/event-payloads.ts. The trail's own events (`audit.*`) are refused (TypeError): the
   * store writes those itself.
   */
  appendEvents(events: readonly NewAuditEvent[]): Promise<AuditEventV1[]>;
  /** Streams matching events in seq order, in constant memory, without holding the writer up. */
  iterateEvents(query?: EventQuery): AsyncIterable<AuditEventV1>;
  /** The decision event and everything that followed from it, in seq order: its token, the token's uses and
   * revocation, the completion of its task. */
  decisionChain(decisionId: string): Promise<AuditEventV1[]>;
  chainStart(): Promise<ChainStart>;
  /** The last committed event (or the checkpoint / genesis when there is none). */
  chainHead(): Promise<ChainHead>;
  /**
   * Prunes old events and records a checkpoint so that the rest still verifies, and an audit.pruned event that
   * records the checkpoint, in the same transaction.
   */
  pruneEvents(input: PruneEventsInput): Promise<PruneResult>;
  /**
   * Signs the chain head inside a write transaction (`sign` is called with it: synchronous, no I/O) and appends the
   * audit.head_signed event recording the signature right after it. Resolves once that transaction is durable (it
   * survives a power loss, whatever `synchronous` is), so the head may then be published outside the store. Null
   * when there is nothing new to sign (no event, or the head is a signed head already).
   */
  signHead(sign: (head: ChainHead) => SignedHeadV1): Promise<AuditEventV1 | null>;
  /**
   * Verifies the whole stored chain from its start (genesis or the latest checkpoint, which an audit.pruned event
   * in the chain must record), and every signed head in it (with `headKeys`, their signatures too).
   */
  verifyStoredChain(options?: StoredChainVerifyOptions): Promise<VerifyResult>;

  stats(): StoreStats;
  /** Commits everything queued, then closes. Later calls reject with store_unavailable. */
  close(): Promise<void>;
}
