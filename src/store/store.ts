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
  ProviderCredentialRecord,
  SignedHeadV1,
  SuggestionKind,
  TaskCloseStatus,
  TokenIssuedExtras,
  TokenRevokeReason,
  TokenUsedData,
  VerifyOptions,
  VerifyResult,
} from '../audit/index.js';
import type { AccessRequestStatus, AccessRequestV1 } from '../wire/access-request-v1.js';
import type { RecordedOutcome, ResourceRef } from '../wire/evaluation-v1.js';
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
  /**
   * The windows approvers granted this task (`decideAccessRequest` appends one in the approval's transaction, and
   * drops those whose window has passed): the decide path reads them with the task, in one read, and uses one only
   * for exactly its integration, PEP and record, while `approved_until` lies ahead. Never shown to callers.
   */
  elevations: readonly TaskElevation[];
}

/** An approved access request's window, as the task row keeps it for the decide path. */
export interface TaskElevation {
  /** The access request. */
  id: string;
  /** The agent it elevates (the task's own: an approval is written to its task only when they agree). */
  agent_id: string;
  /** The PEP that asked: the elevation serves no other caller. */
  requested_by: string;
  integration: string;
  resource: ResourceRef | null;
  scopes: string[];
  approved_until: string;
}

export interface CompleteTaskInput {
  task_id: string;
  /** The caller completing it. */
  by: string;
  at: string;
  trace_id?: string | null;
}

/** A task closed by completion or expiry, the jtis of the tokens revoked with it, and the elevations it ended. */
export interface TaskClosure {
  task: TaskRecord;
  revoked_jtis: string[];
  /** Ids of the access requests whose running elevation ended with the task (an `elevation.ended` event each). */
  ended_access_requests: string[];
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
  /**
   * The access request whose elevation this decision used (an allow that granted elevated scopes), or null. Links
   * the decision, and the token issued from it, into the chain of the denial that request was for (decisionChain).
   */
  access_request_id?: string | null;
}

/**
 * A decision as stored: its decision event (ids, time, input, result, revision) with its state. Input and result are
 * as the trail holds them (masked by audit.mask); `token_grant` is unmasked.
 */
export interface StoredDecision extends Omit<RecordDecisionInput, 'trace_id' | 'token_grant' | 'access_request_id'> {
  trace_id: string | null;
  token_grant: unknown;
  access_request_id: string | null;
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
  /** The claim this redemption took for its provider mint (`claimProviderMint`); cleared when the token is issued. */
  mint_claim?: string | null;
}

export interface ClaimProviderMintInput {
  decision_id: string;
  /** The caller redeeming (checked as the redemption checks it). */
  caller_id: string;
  /** A random id naming this redemption's claim. */
  claim: string;
  now: string;
  /** When the claim may be taken over by another redemption: after the mint's timeout. */
  until: string;
}

export interface EndProviderMintInput {
  decision_id: string;
  claim: string;
  now: string;
  /** A credential minted and then not handed over (the redemption refused after the mint): recorded, never the secret. */
  discarded?: {
    agent_id: string;
    caller_id: string;
    task_id: string | null;
    trace_id: string | null;
    integration: string;
    /** The error code that refused the redemption after the mint. */
    reason: string;
    provider_credential: ProviderCredentialRecord;
  };
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
  /** Who revokes it: the caller the token was issued to, unless `any_holder`. */
  caller_id: string;
  /**
   * A resource server revoking a token presented to it (it may introspect any token): the token need not have been
   * issued to `caller_id`, who is recorded as the revoker.
   */
  any_holder?: boolean;
  at: string;
  /** Default `revoked_by_caller`. */
  reason?: TokenRevokeReason;
  trace_id?: string | null;
}

export interface TokenUseInput {
  jti: string;
  /** Who presented the token: the resource server that introspected it, or the enforcement proxy (its configured id). */
  caller_id: string;
  at: string;
  /**
   * What was done with it: an introspection and its verdict (`{ "action": "introspect", "active": true }`), or one
   * call through the proxy (`{ "action": "proxy", "method", "path_template", "scope", "record", "outcome", ... }`,
   * checked member by member by `tokenUsedEvent`; malformed data is a TypeError and nothing is written).
   */
  data: TokenUsedData;
  trace_id?: string | null;
  /**
   * The ids of the token's row, when the caller already read them from this store (the proxy's token gate keeps them
   * from its first lookup of a token): the event is correlated with them as given. Without them, the transaction
   * reads the row for them (and a token this store never issued gets none).
   */
  token?: TokenIds;
}

/** The ids a token's row holds: the decision it redeemed, its task (none for a task the PEP asserted inline), its agent. */
export interface TokenIds {
  decision_id: string;
  task_id: string | null;
  agent_id: string;
}

export interface RevocationFeedInput {
  /**
   * null: a snapshot. Otherwise the `seq` of the previous answer: the revocations written after it. A seq the stored
   * chain no longer (or never) covers, before the latest prune's checkpoint or past the head, is answered with a
   * snapshot too (`snapshot: true`): revocation events a prune deleted would otherwise be missed.
   */
  after_seq: number | null;
  /**
   * A snapshot leaves out tokens expired at `now` (expires_at <= now). A verifier that accepts a token for a while
   * past its `exp` (a clock tolerance) must pass `now` minus that tolerance, or a revoked token could pass.
   */
  now: string;
  /** Most revocations in an incremental answer (1..100,000). Default 10,000. A snapshot lists them all. */
  limit?: number;
}

/** A revoked token, as the revocation feed lists it. */
export interface RevokedToken {
  jti: string;
  /** The token's `exp`: a cache may forget the jti after it. */
  expires_at: string;
}

export interface RevocationFeed {
  /**
   * The highest seq this answer covers: pass it back as `after_seq`. The chain head when the answer is complete (a
   * snapshot, or an increment shorter than `limit`), the last listed revocation's seq when `limit` cut it short; equal
   * to `after_seq` when nothing was written since.
   */
  seq: number;
  /** A snapshot: every revoked, unexpired token. An increment: the token.revoked events after `after_seq`, in seq order. */
  revoked: RevokedToken[];
  /** True for a snapshot (asked for, or because `after_seq` was outside the stored chain). */
  snapshot: boolean;
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
  /**
   * Each event's `data` as the stored canonical text (`RawJson`), not parsed: what an export that writes and hashes
   * events as they are needs (parsing and re-encoding every event was most of an export's time). Default false.
   */
  raw_data?: boolean;
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
  /**
   * Decisions made at or after this time may still be redeemed or requested (the redeem and request windows, which
   * the store does not know): the prune stops before the first event at or after it, as if `before` were no later.
   */
  decisions_live_since?: string;
  /**
   * A token that expires after this time still holds its decision: a resource server may report a use after the
   * token expired (the use itself fell inside its lifetime). Default `at` (tokens not yet expired).
   */
  tokens_live_since?: string;
}

export interface PruneResult {
  pruned: number;
  /** The checkpoint written, or the latest one when nothing was pruned (null if there never was one). */
  checkpoint: AuditCheckpoint | null;
  /** The audit.pruned event appended with the checkpoint; null when nothing was pruned. */
  event: AuditEventV1 | null;
  /**
   * Set when the prune stopped short of `before` to keep a decision something live still reads (a token not yet
   * expired, an access request open: `live_decision`, that decision event's seq and time) or one whose window may
   * still be open (`decision_window`: the first event at or after `decisions_live_since`).
   */
  held_by: { seq: number; time: string; reason: 'live_decision' | 'decision_window' } | null;
}

/**
 * An access request as stored: the wire `AccessRequestV1` without what the API adds (`status_endpoint`, `result`),
 * plus the idempotency facts of its submission and the trace of the request that submitted it. `resource` is kept
 * unmasked (the elevation lookup matches it exactly), like a task's context: operational state.
 */
export interface AccessRequestRecord extends Omit<AccessRequestV1, 'status_endpoint' | 'result'> {
  /** The submission's `Idempotency-Key`, or null. Unique per submitting caller (`requested_by`). */
  idempotency_key: string | null;
  /** What the caller computed over the submission's body: a replay with the same key must carry the same hash. */
  request_hash: string | null;
  trace_id: string | null;
}

/** One notification to write with the request: an outbox row, delivered later by the outbox worker. */
export interface NewDelivery {
  id: string;
  /** The webhook's id in the config (never its URL: the row and the events name it). */
  destination: string;
  approver_group: string;
}

export interface CreateAccessRequestInput {
  id: string;
  /** The denial it asks to lift. It must be recorded, for the caller submitting it (`requested_by`). */
  decision_id: string;
  requested_by: string;
  agent_id: string;
  task_id: string;
  integration: string;
  resource: ResourceRef | null;
  scopes: readonly string[];
  reason: string | null;
  duration_seconds: number;
  max_duration_seconds: number;
  approver_groups: readonly string[];
  policy_revision: string;
  /** Until when it stays pending. */
  expires_at: string;
  idempotency_key?: string | null;
  request_hash?: string | null;
  trace_id?: string | null;
  /** One per webhook destination of its approver groups (possibly none). */
  deliveries: readonly NewDelivery[];
  /** Its created_at, and the created_at of its outbox rows (due at once). */
  now: string;
}

export interface CreatedAccessRequest {
  request: AccessRequestRecord;
  /** False for an idempotent replay (same caller, key and request hash): the existing request, nothing written. */
  created: boolean;
}

export interface ListAccessRequestsQuery {
  status?: AccessRequestStatus;
  /**
   * The instant the listing is made at: a pending request past its expires_at is then listed as expired, not pending
   * (before the sweeper marks it). Absent: the stored status alone.
   */
  now?: string;
  /** Requests any of these groups may approve. An empty list matches nothing. */
  approver_groups?: readonly string[];
  agent_id?: string;
  /** The `next_after` of the previous page: the id of the last request it listed. */
  after?: string;
  /** At most this many (1..1000). */
  limit: number;
}

export interface AccessRequestList {
  /** In (created_at, id) order. */
  items: AccessRequestRecord[];
  /** Pass as `after` for the next page; null on the last. */
  next_after: string | null;
}

export interface DecideAccessRequestInput {
  id: string;
  verdict: 'approved' | 'denied';
  /** The approver (its caller id): the event's caller_id and the record's decided_by. */
  by: string;
  at: string;
  note?: string | null;
  /** Required to approve: the end of the elevation window (the caller caps it by the policy's max_duration). */
  approved_until?: string;
  /** The window granted, for the event; default the whole seconds from `at` to `approved_until`. */
  duration_seconds?: number;
  trace_id?: string | null;
}

export interface FindElevationsInput {
  agent_id: string;
  task_id: string;
  integration: string;
  /** The PEP deciding: an elevation serves only the caller that asked for it. */
  requested_by: string;
  /** The record decided on; null matches only an elevation bound to no record. */
  resource: ResourceRef | null;
  now: string;
}

/** An approved request's open elevation, as the decide path reads it (`findElevations`). */
export interface ElevationRecord {
  /** The access request's id. */
  id: string;
  scopes: string[];
  resource: ResourceRef | null;
  approved_until: string;
}

export interface SweepAccessRequestsInput {
  now: string;
  /** Most requests expired, and most elevations ended, per call. Default 500. */
  limit?: number;
}

export interface AccessRequestSweep {
  /** Pending requests whose expires_at passed: now `expired` (an access_request.expired event each). */
  expired: AccessRequestRecord[];
  /** Elevations whose window passed: ended_at = approved_until, reason window (an elevation.ended event each). */
  ended: AccessRequestRecord[];
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

/**
 * An outbox row: one notification to one webhook, for one group: of an access request (its approver group), or a
 * notification of the store's own (`notifications`: the scheduled suggestion run's new suggestions, for a group the
 * config names). Exactly one of `access_request_id` and `notification_id` is set.
 */
export interface DeliveryRecord {
  id: string;
  access_request_id: string | null;
  notification_id: string | null;
  destination: string;
  approver_group: string;
  status: DeliveryStatus;
  /** Attempts completed (delivered, retried or dead); a claim alone does not count. */
  attempts: number;
  /** When it is due; while claimed, the end of the claim's lease. */
  next_attempt_at: string;
  last_error: string | null;
  /** The HTTP status of the last attempt, or null (none, or a timeout / connection failure). */
  last_status: number | null;
  created_at: string;
  delivered_at: string | null;
}

/** A delivery handed to the worker by claimDeliveries. */
export type ClaimedDelivery = Pick<DeliveryRecord, 'id' | 'access_request_id' | 'notification_id' | 'destination' | 'approver_group' | 'attempts'>;

/** What a notification of the store's own is about: `policy.suggestions`, new suggestions of a scheduled run. */
export type NotificationKind = 'policy.suggestions';

export interface NotificationRecord {
  id: string;
  kind: NotificationKind;
  /** The suggestions it announces (policy.suggestions), in the order the run made them. */
  suggestion_ids: string[];
  created_at: string;
}

export interface ClaimDeliveriesInput {
  now: string;
  /** The claimed rows are due again then: a worker that dies mid-delivery leaves them to be retried. */
  lease_until: string;
  limit: number;
}

export interface CompleteDeliveryInput {
  id: string;
  at: string;
  /** delivered: done (access_request.notified); retry: due again at next_attempt_at; dead: given up (access_request.notification_failed). */
  outcome: 'delivered' | 'retry' | 'dead';
  /** Required with retry. */
  next_attempt_at?: string;
  /** Why the attempt failed (retry, dead); cut to 1000 characters. */
  error?: string | null;
  /** The receiver's HTTP status, when it answered. */
  status_code?: number | null;
}

export interface ListDeliveriesQuery {
  status?: DeliveryStatus;
  access_request_id?: string;
  /** At most this many (1..1000), in (created_at, id) order. */
  limit: number;
}

export interface OutboxCounts {
  pending: number;
  delivered: number;
  dead: number;
}

/**
 * Where a usage aggregate comes from (`usage_daily.source`, docs: src/store/README.md, "Usage aggregates"):
 * - `granted`: a token was issued carrying the scope (token.issued), counted once per token and scope;
 * - `proxy`: the enforcement proxy forwarded a call that needed the scope (token.used, action proxy, outcome
 *   forwarded): use, observed by the PDP's own proxy;
 * - `resource_server`: a resource server reported a request it let through that required the scope (token.used,
 *   action resource_server): use, self-reported;
 * - `requested`: a decision request asked for the scope (decision events, input.scopes), whatever the answer;
 * - `denied`: a decision refused the scope (result.denied_scopes).
 * Introspections (token.used, action introspect) say a token was presented, not which scope: never counted.
 */
export type UsageSource = 'granted' | 'proxy' | 'resource_server' | 'requested' | 'denied';

export interface RollupUsageInput {
  /** Most audit events folded per write transaction (1..1,000,000). Default 200,000. */
  batch?: number;
  /**
   * Worker threads that read and fold the events, each a slice of every batch with its own read connection (0: on
   * the event loop, in chunks of 20,000 events with a yield between them). Default: as many as the machine has cores,
   * at most 2 (each costs about 70 MB), when at least 200,000 events are waiting and the store is a file; 0 otherwise.
   */
  workers?: number;
}

export interface RollupUsageResult {
  /** Audit events read by this call (of every type; only some count). */
  events: number;
  /** The cursor after this call: the last seq folded in (0 before any). */
  seq: number;
}

export interface UsageSummaryInput {
  /**
   * The window, [since, until). Aggregates are per UTC day, so the summary covers every whole day that overlaps the
   * window (the day of `since` through the day of the last instant before `until`); first_at / last_at may lie outside.
   */
  since: string;
  until: string;
  /** Only this agent. */
  agent_id?: string;
}

/** One line of a usage summary: the window's daily aggregates summed by everything but the day. */
export interface UsageRow {
  agent_id: string;
  integration: string;
  scope: string;
  /** The task type (from the tasks table, or what the decision's input said for an unregistered task); '' when none. */
  task_type: string;
  /**
   * The record type: of the record the token is bound to (`granted`), the call touched (`proxy`, `resource_server`),
   * or the decision was asked about (`requested`, `denied`); '' when none.
   */
  record_type: string;
  source: UsageSource;
  /** Tokens (`granted`), uses (`proxy`, `resource_server`) or decisions (`requested`, `denied`). */
  n: number;
  /** The first and last such event's time in the days summed. */
  first_at: string;
  last_at: string;
  /** Distinct UTC days with at least one. */
  days: number;
}

/** The longest observed use of a token, per agent and integration, over the window. */
export interface TokenUseSpanSummary {
  agent_id: string;
  integration: string;
  /**
   * Whole seconds (rounded up) from a token's issued_at to its last observed use (a forwarded proxy call, or a
   * resource server's report), the largest over the tokens used in the window.
   */
  max_seconds: number;
  /**
   * Tokens with use evidence this is based on: each counted once, on the day of its first use the rollup saw
   * (a token first used before a pruned stretch of the trail may be counted again).
   */
  tokens: number;
}

/** Tokens issued per agent and integration over the window (a token of several scopes counts once). */
export interface TokensIssuedSummary {
  agent_id: string;
  integration: string;
  tokens: number;
  first_at: string;
  last_at: string;
  /** Distinct UTC days with at least one token issued. */
  days: number;
}

export interface UsageSummary {
  since: string;
  until: string;
  /** The first and last UTC day (YYYY-MM-DD) the summary covers. */
  first_day: string;
  last_day: string;
  /** The rollup cursor when read: events after this seq are not in it (call rollupUsage first). */
  seq: number;
  /** Ordered by agent, integration, scope, task type, record type, source. */
  rows: UsageRow[];
  /** Ordered by agent, integration. Only pairs with observed use. */
  spans: TokenUseSpanSummary[];
  /** Ordered by agent, integration. */
  issued: TokensIssuedSummary[];
}

/** What a suggestion proposes (owner: src/suggest/): the closed list `SUGGESTION_KINDS` of src/audit (its events name it). */
export type { SuggestionKind };
/**
 * `open` until someone applies or dismisses it (decideSuggestion), or until a later run on the same terms no longer
 * makes it (`withdrawn`, saveSuggestions' `withdraw`): the evidence stopped supporting it.
 */
export type SuggestionStatus = 'open' | 'applied' | 'dismissed' | 'withdrawn';

/**
 * A policy suggestion as stored. `proposal` and `evidence` are JSON values the suggestion engine defines (stored as
 * canonical JSON, read back parsed); the store reads none of them, only `evidence_hash`.
 */
/** A web console session as stored: the SHA-256 of its id (the cookie's value), never the id. */
export interface ConsoleSessionRecord {
  id_sha256: string;
  caller_id: string;
  /** The caller's key hash at sign-in: a caller whose key changed since holds no session. */
  key_sha256: string;
  created_at: string;
  last_seen_at: string;
  /** The absolute end, however busy the session. */
  expires_at: string;
  /** Set by sign-out. */
  ended_at: string | null;
}

export interface ConsoleSessionInput {
  id_sha256: string;
  caller_id: string;
  key_sha256: string;
  created_at: string;
  expires_at: string;
  /** Sessions last used at or before this are dead: a batch of them is deleted with the insert. */
  idle_cut: string;
  /** The caller's live sessions beyond this many (the new one counted) are ended, oldest first. */
  max_live_per_caller: number;
  /** Its `console.session_started` event, appended in the same transaction. */
  event: NewAuditEvent;
}

export interface ConsoleSessionTouch {
  id_sha256: string;
  now: string;
  /** Last used at or before this: idle too long, dead. */
  idle_cut: string;
  /** Last used before this: its last use is moved to `now`. */
  touch_before: string;
}

export interface SuggestionRecord {
  /** Stable: the same agent, integration, kind and target give the same id (the engine derives it). */
  id: string;
  agent_id: string;
  integration: string;
  kind: SuggestionKind;
  /** What it is about: the scope (remove_scope, move_to_task_type) or `token_ttl` (shorten_ttl). */
  target: string;
  proposal: unknown;
  evidence: unknown;
  /**
   * A digest of the evidence that matters: a dismissed (or applied) suggestion saved again with the same hash stays
   * as decided; with another hash it is open again.
   */
  evidence_hash: string;
  /** The agent's policy file (relative to the policy folder) and its SHA-256 when the suggestion was made; apply refuses if it changed. */
  file: string | null;
  file_sha256: string | null;
  status: SuggestionStatus;
  created_at: string;
  updated_at: string;
  /** Who applied or dismissed it, and when; null while open. */
  decided_by: string | null;
  decided_at: string | null;
}

export interface ListSuggestionsQuery {
  status?: SuggestionStatus;
  agent_id?: string;
}

export interface SaveSuggestionsOptions {
  /**
   * Open suggestions a run on the same terms did not make again, each with the evidence_hash the caller saw: each
   * still open with that hash becomes `withdrawn` (decided_by / decided_at stay null, updated_at = `at`). Others
   * (decided, changed or saved again meanwhile) are left as they are.
   */
  withdraw?: ReadonlyArray<{ id: string; evidence_hash: string }>;
  /** When the withdrawals happened (required with `withdraw`). */
  at?: string;
  /**
   * Notify of the suggestions this save makes new (inserted, or open again after being decided or withdrawn on other
   * evidence; not those open already): when there is any, one `policy.suggestions` notification with this id and
   * one outbox row per delivery, in the same transaction. Nothing is written when no suggestion is new.
   */
  notify?: { id: string; at: string; deliveries: ReadonlyArray<{ id: string; destination: string; approver_group: string }> };
}

export interface SaveSuggestionsResult {
  /** Ids inserted, or open again (in the order given). */
  new: string[];
  /** Ids withdrawn. */
  withdrawn: string[];
  /** The notification written, if any. */
  notification: NotificationRecord | null;
}

export interface DecideSuggestionInput {
  id: string;
  status: 'applied' | 'dismissed';
  /** The caller (operator) deciding. */
  by: string;
  at: string;
  /**
   * Its audit event, built with policySuggestionAppliedEvent / policySuggestionDismissedEvent
   * (src/audit/event-payloads.ts): of the type matching `status`, for this suggestion.
   */
  event: NewAuditEvent;
}

/** What verifying the stored chain may be given (the store supplies its own start and checkpoint). */
export interface StoredChainVerifyOptions extends Pick<VerifyOptions, 'expectedLast' | 'anchors' | 'headKeys'> {
  /**
   * Called after each page of events is verified (and once before the first): events verified so far, and the
   * events from the chain's start to the head the verification runs to. Default: none.
   */
  onProgress?: (verified: number, total: number) => void;
}

/**
 * A search of decision events, newest first (`GET /v1/audit/decisions`). agent_id, task_id, decision_id, since and
 * until are columns of the hashed event; outcome and reason are read from each event's hashed data (no column
 * outside the hash is ever filtered on: migration 2).
 */
export interface DecisionSearchQuery {
  agent_id?: string;
  task_id?: string;
  decision_id?: string;
  /** time >= since */
  since?: string;
  /** time < until */
  until?: string;
  outcome?: RecordedOutcome;
  /** Decisions with a reason of this code (`result.reasons[].code`). */
  reason?: string;
  /** Only events with seq < before_seq (the previous page's `next_before_seq`). Default: from the head. */
  before_seq?: number;
  /** Matching events to return at most, >= 1. */
  limit: number;
  /** Decision events read at most (matching the column filters), whether outcome and reason match or not. Default DECISION_SEARCH_SCAN_LIMIT. */
  scan_limit?: number;
}

export interface DecisionSearchPage {
  /** The matching decision events, in seq order from the newest. */
  events: AuditEventV1[];
  /** Where the next page starts (pass it as before_seq); null when nothing older is left. */
  next_before_seq: number | null;
  /** The lowest seq this page examined; null when it examined none. */
  scanned_through_seq: number | null;
}

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

/**
 * The lease on the jobs one process does for every replica of a store (signing the chain's head, the scheduled
 * suggestion run): at most one process holds it at a time. PostgreSQL: a session-level advisory lock held by a
 * connection of its own, tried again every few seconds by the others; it is lost with that connection, and the
 * holder learns so at its next check at the latest. SQLite: always held (one machine; the workers of
 * `serve --workers N` leave these jobs to worker 1).
 */
export interface Leadership {
  /** Whether this process holds the lease now: read it each time a singleton job is about to act. */
  readonly leading: boolean;
  /** Tries to take the lease (or confirms it is still held) now; resolves with `leading`. Never rejects. */
  check(): Promise<boolean>;
}

export interface Store {
  registerTask(input: RegisterTaskInput): Promise<TaskRecord>;
  getTask(id: string): Promise<TaskRecord | undefined>;
  /**
   * Completes an active task, revokes all its unrevoked tokens and ends its running elevations (reason
   * task_completed; window for one whose window had passed unswept). task_not_found, task_not_active.
   */
  completeTask(input: CompleteTaskInput): Promise<TaskClosure>;
  /** Closes active tasks whose expires_at <= now, revokes their tokens and ends their elevations (task_expired). */
  expireTasks(input: ExpireTasksInput): Promise<TaskClosure[]>;

  /**
   * Appends the decision event (the record) and, only for terms it cannot give back, a decisions row. The decision
   * id is the caller's to make unique (the Decider's are random): with no row written, a repeated id is not refused,
   * and the first event recorded under it is the decision every read returns.
   */
  recordDecision(input: RecordDecisionInput): Promise<StoredDecision>;
  getDecision(decisionId: string): Promise<StoredDecision | undefined>;

  /**
   * Checks and redeems a decision and records the token, atomically. Refusals, in the order checked:
   * decision_not_found, decision_wrong_caller, decision_not_allowed, decision_already_redeemed, decision_expired,
   * task_not_active (the decision's registered task is no longer active).
   */
  redeemDecision(input: RedeemDecisionInput): Promise<Redemption>;
  /**
   * Claims a decision for a provider mint before the provider is called (the redemption's checks, then the claim, in
   * one write): refused as `redeemDecision` refuses, and `redemption_in_progress` while another live claim holds it.
   */
  claimProviderMint(input: ClaimProviderMintInput): Promise<void>;
  /** Ends a claim that issued no token; with `discarded`, appends provider.credential_discarded in the same write. */
  endProviderMint(input: EndProviderMintInput): Promise<void>;
  getToken(jti: string): Promise<TokenRecord | undefined>;
  /** True when this call revoked it; false when unknown, issued to another caller, or already revoked. */
  revokeToken(input: RevokeTokenInput): Promise<boolean>;
  /**
   * Appends a token.used event (no state change), with the token's decision, task and agent when the jti is one of
   * ours; resolves after its COMMIT. Malformed data is a TypeError before anything is queued.
   */
  recordTokenUse(input: TokenUseInput): Promise<void>;
  /**
   * Appends one token.used event per input, in order, in one transaction (each correlated with its token as
   * `recordTokenUse` does); resolves after that COMMIT. All or none: malformed data in any input is a TypeError
   * before anything is queued. An empty list writes nothing. `POST /v1/usage` writes a batch of reports with it.
   */
  recordTokenUses(inputs: readonly TokenUseInput[]): Promise<void>;
  /**
   * What a verifier outside the PDP (the enforcement proxy) needs to refuse revoked tokens without asking per
   * request: with `after_seq: null`, a snapshot of every revoked token not expired at `now` and the chain head's seq;
   * then, polled with the seq of the previous answer, the tokens revoked since (token.revoked events, at most
   * `limit`, with each token's expiry). Closing a task writes one token.revoked per token, so task closure arrives as
   * jtis. Each answer is read in one read transaction. An indexed read, no write.
   */
  revocationFeed(input: RevocationFeedInput): Promise<RevocationFeed>;

  /**
   * Appends events that have no state change of their own: policy.loaded, policy.refused and auth.failed, built with
   * their builders in src/audit/event-payloads.ts. The trail's own events (`audit.*`) are refused (TypeError): the
   * store writes those itself.
   */
  appendEvents(events: readonly NewAuditEvent[]): Promise<AuditEventV1[]>;
  /** Streams matching events in seq order, in constant memory, without holding the writer up. */
  iterateEvents(query?: EventQuery): AsyncIterable<AuditEventV1>;
  /**
   * The decision event and everything that followed from it, in seq order: its token, the token's uses and
   * revocation, the completion of its task. For a denial an access request was made for: the request's events
   * (they carry the denial's id), and the chains of the decisions made with its elevation (recorded with its
   * access_request_id: their decision events, tokens, uses, revocations), merged in seq order without duplicates.
   */
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
  /**
   * One page of a decision search, newest first, by keyset (`seq < before_seq`): at most `limit` matches, having read
   * at most `scan_limit` decision events, so a rare filter over millions of events still answers fast (the page is
   * then short, and `next_before_seq` continues from where the scan stopped). Each page is its own read.
   */
  searchDecisions(query: DecisionSearchQuery): Promise<DecisionSearchPage>;
  /**
   * The seq of the earliest-stamped event with time >= `time` (the time index), or null when there is none: where a
   * read of the events of a recent window starts. Events are sealed in commit order but stamped when they happened,
   * so an event a few milliseconds later with a lower seq may exist.
   */
  firstSeqStampedAtOrAfter(time: string): Promise<number | null>;

  /**
   * Writes an access request (pending), its outbox rows and an access_request.submitted event, in one transaction.
   * In the order checked: the same caller's idempotency key seen before with the same request_hash → that request,
   * `created: false`, nothing written; with another hash → duplicate_request. The denial not recorded →
   * decision_not_found; recorded for another caller → decision_wrong_caller. A request for that denial exists
   * already → access_request_exists.
   */
  createAccessRequest(input: CreateAccessRequestInput): Promise<CreatedAccessRequest>;
  getAccessRequest(id: string): Promise<AccessRequestRecord | undefined>;
  /** The request a caller submitted under an `Idempotency-Key` (keys are per caller), if any. */
  getAccessRequestByKey(requestedBy: string, key: string): Promise<AccessRequestRecord | undefined>;
  /** Keyset pages in (created_at, id) order. An `after` that names no request → invalid_request. */
  listAccessRequests(query: ListAccessRequestsQuery): Promise<AccessRequestList>;
  /**
   * Approves or denies a pending request (the status check runs inside the write transaction: of concurrent
   * decisions exactly one succeeds), with an access_request.approved / .denied event. Refusals, in the order
   * checked: access_request_not_found; access_request_expired (expired, or still pending with expires_at <= at:
   * nothing is written, the sweeper expires it); access_request_not_pending (approved or denied);
   * self_approval (`by` submitted it). Who may approve (role, groups) and the duration cap are the caller's checks.
   */
  decideAccessRequest(input: DecideAccessRequestInput): Promise<AccessRequestRecord>;
  /**
   * The running elevations for exactly this key: approved, not ended, approved_until > now, same agent, task,
   * integration and record (type and id; null only matches null). An indexed read, no write.
   */
  findElevations(input: FindElevationsInput): Promise<ElevationRecord[]>;
  /** Expires pending requests past expires_at and ends elevations past approved_until, with their events. */
  sweepAccessRequests(input: SweepAccessRequestsInput): Promise<AccessRequestSweep>;

  /**
   * The outbox (delivery is at-least-once). Claims up to `limit` pending deliveries due at `now` (next_attempt_at
   * <= now, oldest first) and moves their next_attempt_at to `lease_until`, so that a worker that dies holding
   * them leaves them due again after the lease. No event.
   */
  claimDeliveries(input: ClaimDeliveriesInput): Promise<ClaimedDelivery[]>;
  /**
   * Records an attempt (attempts + 1): delivered (an access_request.notified event), retry (due at next_attempt_at,
   * no event) or dead (an access_request.notification_failed event). A delivery that is no longer pending (another
   * worker finished it after this one's lease ran out) is returned unchanged, and nothing is written. An unknown
   * id is a TypeError.
   */
  completeDelivery(input: CompleteDeliveryInput): Promise<DeliveryRecord>;
  listDeliveries(query: ListDeliveriesQuery): Promise<DeliveryRecord[]>;
  outboxCounts(): Promise<OutboxCounts>;

  /**
   * Folds the audit events after the rollup cursor into the usage aggregates (`usage_daily`, `token_use_span`) and
   * moves the cursor, in batches of at most `batch` events, each batch (aggregates and cursor) in one write
   * transaction; returns how many events were read and the cursor. Events pruned before they were read are skipped
   * (the next batch starts at the first remaining). No audit event.
   */
  rollupUsage(input?: RollupUsageInput): Promise<RollupUsageResult>;
  /**
   * The aggregates of a window, summed by (agent, integration, scope, task_type, record_type, source), with first
   * and last seen and days observed; the longest token use and tokens issued per agent and integration. Reads the
   * aggregates only (what rollupUsage has folded in), never the events.
   */
  usageSummary(input: UsageSummaryInput): Promise<UsageSummary>;
  /**
   * Upserts suggestions by id (each `open`, never decided: decideSuggestion decides). A new id is inserted. An open
   * one is replaced (its created_at kept). An applied or dismissed one is left as it is when its evidence_hash is
   * unchanged; with another hash it is replaced and open again (decided_by / decided_at cleared). A withdrawn one is
   * open again. Then `withdraw` and `notify` (SaveSuggestionsOptions), all in one transaction. No audit event.
   */
  saveSuggestions(list: readonly SuggestionRecord[], options?: SaveSuggestionsOptions): Promise<SaveSuggestionsResult>;
  /** A notification of the store's own (an outbox row's notification_id). */
  getNotification(id: string): Promise<NotificationRecord | undefined>;
  /** In (agent_id, integration, kind, target) order. */
  listSuggestions(query: ListSuggestionsQuery): Promise<SuggestionRecord[]>;
  getSuggestion(id: string): Promise<SuggestionRecord | undefined>;
  /**
   * Marks an open suggestion applied or dismissed and appends its audit event, in one transaction. Refusals, writing
   * nothing: not_found (no such id); suggestion_decided (applied or dismissed already: of concurrent decisions exactly
   * one succeeds). An event of the wrong type, or about another suggestion or agent, is a TypeError.
   */
  decideSuggestion(input: DecideSuggestionInput): Promise<SuggestionRecord>;

  /** A web console session begins (and a batch of dead ones is deleted). src/console/ owns what a session means. */
  createConsoleSession(input: ConsoleSessionInput): Promise<void>;
  /** The live session of this id hash, its last use moved to `now` at most every so often; undefined if none. */
  touchConsoleSession(input: ConsoleSessionTouch): Promise<ConsoleSessionRecord | undefined>;
  /** Ends a session (sign-out) and appends its `console.session_ended` event, in one transaction, if it was not ended yet; true then. */
  endConsoleSession(idSha256: string, at: string, event: NewAuditEvent): Promise<boolean>;

  /**
   * The store's leadership lease (the same object at every call): the first call starts trying to take it, and
   * closing the store lets it go.
   */
  leadership(): Leadership;

  stats(): StoreStats;
  /** Commits everything queued, then closes. Later calls reject with store_unavailable. */
  close(): Promise<void>;
}
