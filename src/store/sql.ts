/**
 * Every DML statement of the store, in one place and in portable SQL (positional `?` parameters; a PostgreSQL
 * store renumbers them to `$n`). DDL lives in migrations.ts.
 */
import type { EventQuery } from './store.js';

const EVENT_COLUMNS =
  'seq, v, time, type, decision_id, jti, task_id, agent_id, caller_id, trace_id, data, prev_hash, hash';

export const SQL = {
  // tasks
  insertTask: `INSERT INTO tasks (id, agent_id, type, context, registered_by, registered_at, expires_at, status)
    VALUES (?, ?, ?, ?, ?, ?, ?, 'active')`,
  selectTask: 'SELECT * FROM tasks WHERE id = ?',
  taskExists: 'SELECT 1 FROM tasks WHERE id = ?',
  closeTask: `UPDATE tasks SET status = ?, completed_at = ?, completed_by = ? WHERE id = ? AND status = 'active'`,
  selectExpiredTasks: `SELECT * FROM tasks WHERE status = 'active' AND expires_at <= ?
    ORDER BY expires_at, id LIMIT ?`,

  // decisions: the decision event is the record (migration 11); a decisions row holds a decision's state and, where
  // the event cannot give them back exactly, its terms (decision-terms.ts)
  insertDecision: `INSERT INTO decisions (decision_id, integration, outcome, token_grant, policy_revision, redeemable_until,
    access_request_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  /** A decision: its decision event (index audit_events_decision) and its row, if any. */
  selectDecision: `SELECT e.seq, e.time, e.caller_id, e.agent_id, e.task_id, e.trace_id, e.data, d.decision_id AS row_id,
    d.integration, d.outcome, d.token_grant, d.policy_revision, d.redeemable_until, d.access_request_id, d.redeemed_jti,
    d.redeemed_at, d.mint_claim, d.mint_claim_until
    FROM audit_events e LEFT JOIN decisions d ON d.decision_id = e.decision_id
    WHERE e.decision_id = ? AND e.type = 'decision' ORDER BY e.seq LIMIT 1`,
  /**
   * The redemption: the decision's row, with its terms as read, created or updated; refused (no row changed) once
   * redeemed. Parameters: decision id, the six terms, jti, time.
   */
  markRedeemed: `INSERT INTO decisions (decision_id, integration, outcome, token_grant, policy_revision, redeemable_until,
    access_request_id, redeemed_jti, redeemed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (decision_id) DO UPDATE SET redeemed_jti = excluded.redeemed_jti, redeemed_at = excluded.redeemed_at,
    mint_claim = NULL, mint_claim_until = NULL WHERE decisions.redeemed_jti IS NULL`,
  /**
   * A provider mint's claim, on the decision's row as markRedeemed writes it. Parameters: decision id, the six terms,
   * claim, until, now (a claim past its time may be taken over).
   */
  claimMint: `INSERT INTO decisions (decision_id, integration, outcome, token_grant, policy_revision, redeemable_until,
    access_request_id, mint_claim, mint_claim_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (decision_id) DO UPDATE SET mint_claim = excluded.mint_claim, mint_claim_until = excluded.mint_claim_until
    WHERE decisions.redeemed_jti IS NULL AND (decisions.mint_claim IS NULL OR decisions.mint_claim_until < ?)`,
  releaseMint: `UPDATE decisions SET mint_claim = NULL, mint_claim_until = NULL WHERE decision_id = ? AND mint_claim = ?`,

  // tokens
  insertToken: `INSERT INTO tokens (jti, decision_id, caller_id, agent_id, task_id, scopes, audience, issued_at,
    expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  selectToken: 'SELECT * FROM tokens WHERE jti = ?',
  tokenExists: 'SELECT 1 FROM tokens WHERE jti = ?',
  selectUnrevokedTokensOfTask: `SELECT * FROM tokens WHERE task_id = ? AND revoked_at IS NULL
    ORDER BY issued_at, jti`,
  revokeToken: `UPDATE tokens SET revoked_at = ?, revoked_by = ?, revoke_reason = ?
    WHERE jti = ? AND revoked_at IS NULL`,
  /** The revocation feed's snapshot: revoked tokens not expired at the given time (partial index tokens_revoked). */
  selectRevokedUnexpiredTokens: `SELECT jti, expires_at FROM tokens WHERE revoked_at IS NOT NULL AND expires_at > ?
    ORDER BY expires_at, jti`,

  // audit chain
  insertEvent: `INSERT INTO audit_events (${EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  selectLastEvent: 'SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1',
  selectFirstSeq: 'SELECT MIN(seq) AS seq FROM audit_events',
  selectEventHash: 'SELECT hash FROM audit_events WHERE seq = ?',
  selectEventType: 'SELECT type FROM audit_events WHERE seq = ?',
  selectEventTime: 'SELECT time FROM audit_events WHERE seq = ?',
  selectFirstSeqAtOrAfter: 'SELECT MIN(seq) AS seq FROM audit_events WHERE time >= ?',
  /** The earliest-stamped event at or after a time, by the time index (audit_events_time): where a recent window starts. */
  selectFirstStampedAtOrAfter: 'SELECT seq FROM audit_events WHERE time >= ? ORDER BY time, seq LIMIT 1',
  deleteEventsThrough: 'DELETE FROM audit_events WHERE seq <= ?',
  /**
   * The first decision event something live still reads (a prune stops before it): a token that expires after the
   * first parameter (its usage reports read the decision, and may arrive after it expired), an access request
   * pending or inside its approved window (approving reads the denial), a decision row still redeemable. By index
   * (tokens_live_expiry, tokens_revoked, access_requests_expiry / _window, decisions_open). Parameters: tokens
   * since ×2, now ×3.
   */
  selectFirstLiveDecisionSeq: `SELECT MIN(e.seq) AS seq FROM audit_events e WHERE e.type = 'decision' AND e.decision_id IN (
    SELECT decision_id FROM tokens WHERE revoked_at IS NULL AND expires_at > ?
    UNION ALL SELECT decision_id FROM tokens WHERE revoked_at IS NOT NULL AND expires_at > ?
    UNION ALL SELECT decision_id FROM access_requests WHERE status = 'pending' AND expires_at > ?
    UNION ALL SELECT decision_id FROM access_requests WHERE status = 'approved' AND approved_until > ?
    UNION ALL SELECT decision_id FROM decisions WHERE redeemed_jti IS NULL AND redeemable_until >= ?)`,
  selectLastCheckpoint: `SELECT last_pruned_seq, last_pruned_hash, pruned_at, pruned_count FROM audit_checkpoints
    ORDER BY last_pruned_seq DESC LIMIT 1`,
  insertCheckpoint: `INSERT INTO audit_checkpoints (last_pruned_seq, last_pruned_hash, pruned_at, pruned_count)
    VALUES (?, ?, ?, ?)`,
  /** A page of the raw chain for verification: seq in (after, through], in order. */
  selectChainPage: `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
  /**
   * The revocation feed's increments: token.revoked events with seq > ?, with their token's expiry, in seq order, at
   * most ? of them. The type is a literal so that SQLite reads the partial index audit_events_token_revoked.
   */
  selectRevocationsAfter: `SELECT e.seq AS seq, e.jti AS jti, t.expires_at AS expires_at
    FROM audit_events e JOIN tokens t ON t.jti = e.jti
    WHERE e.type = 'token.revoked' AND e.seq > ? ORDER BY e.seq LIMIT ?`,
  selectDecisionEvent: `SELECT seq, task_id FROM audit_events WHERE decision_id = ? AND type = 'decision'
    ORDER BY seq LIMIT 1`,
  selectDecisionChain: `SELECT ${EVENT_COLUMNS} FROM audit_events
    WHERE decision_id = ? OR (task_id = ? AND type = 'task.completed' AND seq > ?) ORDER BY seq`,
  /**
   * The decision events of a task after a seq, with their rows' access_request_id where a row exists (parameters: the
   * task, the seq): the decisions an elevation granted for a denial of that task are among them (index
   * audit_events_task); each is matched in JavaScript by its access request (decision-terms.ts). Only events whose data
   * holds an `approval` (an elevated allow's answer) or that have a row are read.
   */
  selectTaskDecisionsAfter: `SELECT e.decision_id, e.data, d.decision_id AS row_id, d.access_request_id
    FROM audit_events e LEFT JOIN decisions d ON d.decision_id = e.decision_id
    WHERE e.task_id = ? AND e.type = 'decision' AND e.seq > ? AND (d.decision_id IS NOT NULL OR e.data LIKE '%"approval":%')
    ORDER BY e.seq`,
  selectDecisionEvents: `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE decision_id = ? ORDER BY seq`,
  selectAccessRequestIdsOfDecision: 'SELECT id FROM access_requests WHERE decision_id = ?',
  /** A pruned decision event's task, from the token its decision was redeemed for. */
  selectTokenTaskOfDecision: 'SELECT task_id FROM tokens WHERE decision_id = ?',

  // access requests
  insertAccessRequest: `INSERT INTO access_requests (id, decision_id, caller_id, agent_id, task_id, integration,
    resource_type, resource_id, scopes, approver_groups, reason, duration_seconds, max_duration_seconds,
    policy_revision, status, created_at, expires_at, idempotency_key, request_hash, trace_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`,
  insertAccessRequestGroup: 'INSERT INTO access_request_groups (approver_group, access_request_id) VALUES (?, ?)',
  selectAccessRequest: 'SELECT * FROM access_requests WHERE id = ?',
  selectAccessRequestByDecision: 'SELECT * FROM access_requests WHERE decision_id = ?',
  selectAccessRequestByKey: 'SELECT * FROM access_requests WHERE caller_id = ? AND idempotency_key = ?',
  accessRequestExists: 'SELECT 1 FROM access_requests WHERE id = ?',
  selectDecisionCaller: `SELECT caller_id FROM audit_events WHERE decision_id = ? AND type = 'decision' ORDER BY seq LIMIT 1`,
  decideAccessRequest: `UPDATE access_requests SET status = ?, decided_at = ?, decided_by = ?, note = ?, approved_until = ?
    WHERE id = ? AND status = 'pending'`,
  selectTaskElevations: 'SELECT agent_id, status, elevations FROM tasks WHERE id = ?',
  updateTaskElevations: 'UPDATE tasks SET elevations = ? WHERE id = ?',
  expireAccessRequest: `UPDATE access_requests SET status = 'expired' WHERE id = ? AND status = 'pending'`,
  endElevation: `UPDATE access_requests SET ended_at = ?, ended_reason = ?
    WHERE id = ? AND status = 'approved' AND ended_at IS NULL`,
  selectElevationsUnbound: `SELECT id, scopes, resource_type, resource_id, approved_until FROM access_requests
    WHERE agent_id = ? AND task_id = ? AND integration = ? AND caller_id = ? AND status = 'approved' AND ended_at IS NULL
    AND approved_until > ? AND resource_type IS NULL AND resource_id IS NULL ORDER BY created_at, id`,
  selectElevationsBound: `SELECT id, scopes, resource_type, resource_id, approved_until FROM access_requests
    WHERE agent_id = ? AND task_id = ? AND integration = ? AND caller_id = ? AND status = 'approved' AND ended_at IS NULL
    AND approved_until > ? AND resource_type = ? AND resource_id = ? ORDER BY created_at, id`,
  selectRunningElevationsOfTask: `SELECT * FROM access_requests
    WHERE agent_id = ? AND task_id = ? AND status = 'approved' AND ended_at IS NULL ORDER BY created_at, id`,
  selectExpiredAccessRequests: `SELECT * FROM access_requests WHERE status = 'pending' AND expires_at <= ?
    ORDER BY expires_at, id LIMIT ?`,
  selectPassedElevations: `SELECT * FROM access_requests
    WHERE status = 'approved' AND ended_at IS NULL AND approved_until <= ? ORDER BY approved_until, id LIMIT ?`,

  // outbox
  insertDelivery: `INSERT INTO outbox (id, access_request_id, destination, approver_group, status, attempts,
    next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', 0, ?, ?)`,
  deliveryExists: 'SELECT 1 FROM outbox WHERE id = ?',
  selectDelivery: 'SELECT * FROM outbox WHERE id = ?',
  selectDueDeliveries: `SELECT id, access_request_id, destination, approver_group, attempts FROM outbox
    WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`,
  leaseDelivery: `UPDATE outbox SET next_attempt_at = ? WHERE id = ? AND status = 'pending'`,
  completeDelivery: `UPDATE outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?,
    last_status = ?, delivered_at = ? WHERE id = ? AND status = 'pending'`,
  countDeliveries: 'SELECT status, COUNT(*) AS n FROM outbox GROUP BY status',

  // usage aggregates (usage-rollup-ops.ts): the rollup reads events after its cursor and upserts day cells
  selectUsageCursor: 'SELECT seq FROM usage_rollup_cursor WHERE id = 1',
  upsertUsageCursor: 'INSERT INTO usage_rollup_cursor (id, seq) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq',
  /**
   * The rollup reads a seq range (after, through] of the trail with two statements, by primary key. SQLite parses each
   * payload once, in C, and hands over only what the rollup reads: parsing whole payloads in JavaScript cost 10-25%
   * more, twice as much for decisions (measured on 1 million events, src/store/README.md). SQLite's JSON
   * functions (PostgreSQL's texts of these and of the fold's lookups: postgres-sql.ts): the only statements of the
   * store that read inside `data`. A row whose data is not JSON (no writer makes one) is left out.
   *
   * Decisions and issued tokens, one row each, in seq order: seq, the type (0 decision, 1 token.issued), time, agent_id,
   * task_id, jti and the members read as one JSON array, `[input.integration, input.scopes, input.resource.type,
   * input.task.type, result.denied_scopes]` for a decision, `[integration, scopes, resource.type, issued_at]` for a token.
   */
  selectRollupGrants: `SELECT seq, type = 'token.issued', time, agent_id, task_id, jti, CASE type
      WHEN 'token.issued' THEN json_extract(data, '$.integration', '$.scopes', '$.resource.type', '$.issued_at')
      ELSE json_extract(data, '$.input.integration', '$.input.scopes', '$.input.resource.type', '$.input.task.type', '$.result.denied_scopes') END
    FROM audit_events WHERE seq > ? AND seq <= ? AND type IN ('token.issued', 'decision') AND agent_id IS NOT NULL AND json_valid(data)
    ORDER BY seq`,
  /**
   * Every token.used event: seq, time, the key the rollup sums it by (per token, day and `use`, `[action, outcome,
   * integration, scope, record.type]` as JSON: `jti NUL day NUL use NUL agent_id NUL task_id`, U+0001 for a null), and
   * `used_at` (a resource server's report). The rollup sums the events per key in JavaScript (cheaper than SQLite's
   * sort for GROUP BY) and keeps the groups that count (a call the proxy forwarded, a resource server's report).
   */
  selectRollupUses: `SELECT seq, time, ifnull(jti, char(1)) || char(0) || substr(time, 1, 10) || char(0)
      || json_extract(data, '$.action', '$.outcome', '$.integration', '$.scope', '$.record.type') || char(0) || agent_id || char(0) || ifnull(task_id, char(1)),
      json_extract(data, '$.used_at')
    FROM audit_events WHERE seq > ? AND seq <= ? AND type = 'token.used' AND agent_id IS NOT NULL AND json_valid(data)
    ORDER BY seq`,
  upsertUsageDaily: `INSERT INTO usage_daily (day, agent_id, integration, scope, task_type, record_type, source, n, first_at, last_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (agent_id, integration, scope, task_type, record_type, source, day) DO UPDATE SET
      n = usage_daily.n + excluded.n,
      first_at = CASE WHEN excluded.first_at < usage_daily.first_at THEN excluded.first_at ELSE usage_daily.first_at END,
      last_at = CASE WHEN excluded.last_at > usage_daily.last_at THEN excluded.last_at ELSE usage_daily.last_at END`,
  upsertTokenUseSpan: `INSERT INTO token_use_span (day, agent_id, integration, issued, issued_first_at, issued_last_at, tokens, max_seconds)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (agent_id, integration, day) DO UPDATE SET
      issued = token_use_span.issued + excluded.issued,
      issued_first_at = CASE WHEN token_use_span.issued_first_at IS NULL OR excluded.issued_first_at < token_use_span.issued_first_at
        THEN excluded.issued_first_at ELSE token_use_span.issued_first_at END,
      issued_last_at = CASE WHEN token_use_span.issued_last_at IS NULL OR excluded.issued_last_at > token_use_span.issued_last_at
        THEN excluded.issued_last_at ELSE token_use_span.issued_last_at END,
      tokens = token_use_span.tokens + excluded.tokens,
      max_seconds = CASE WHEN excluded.max_seconds > token_use_span.max_seconds THEN excluded.max_seconds ELSE token_use_span.max_seconds END`,
  selectTaskType: 'SELECT type FROM tasks WHERE id = ?',
  /** The task type a task's last decision before a seq carried (audit_events_task), for a task the rollup has not seen decided. */
  selectAssertedTaskType: `SELECT data ->> '$.input.task.type' FROM audit_events WHERE task_id = ? AND seq < ? AND type = 'decision'
    AND json_valid(data) AND json_type(data, '$.input.task.type') = 'text' ORDER BY seq DESC LIMIT 1`,
  selectTokenIssuedAt: 'SELECT issued_at FROM tokens WHERE jti = ?',
  /** A use of a token that counts, before a seq (audit_events_jti): did an earlier batch or call count the token? */
  selectTokenCountedUseBefore: `SELECT 1 FROM audit_events WHERE jti = ? AND seq < ? AND type = 'token.used' AND json_valid(data)
    AND (data ->> '$.action' = 'resource_server' OR (data ->> '$.action' = 'proxy' AND data ->> '$.outcome' = 'forwarded')) LIMIT 1`,
  /** usageSummary: the days [?, ?] summed by everything but the day, in key order (usage_daily's primary key). */
  selectUsageSummary: `SELECT agent_id, integration, scope, task_type, record_type, source, SUM(n) AS n,
    MIN(first_at) AS first_at, MAX(last_at) AS last_at, COUNT(*) AS days
    FROM usage_daily WHERE day >= ? AND day <= ?
    GROUP BY agent_id, integration, scope, task_type, record_type, source
    ORDER BY agent_id, integration, scope, task_type, record_type, source`,
  selectUsageSummaryOfAgent: `SELECT agent_id, integration, scope, task_type, record_type, source, SUM(n) AS n,
    MIN(first_at) AS first_at, MAX(last_at) AS last_at, COUNT(*) AS days
    FROM usage_daily WHERE agent_id = ? AND day >= ? AND day <= ?
    GROUP BY agent_id, integration, scope, task_type, record_type, source
    ORDER BY agent_id, integration, scope, task_type, record_type, source`,
  selectTokenSummary: `SELECT agent_id, integration, SUM(issued) AS issued, MIN(issued_first_at) AS issued_first_at,
    MAX(issued_last_at) AS issued_last_at, SUM(CASE WHEN issued > 0 THEN 1 ELSE 0 END) AS issued_days,
    SUM(tokens) AS tokens, MAX(max_seconds) AS max_seconds
    FROM token_use_span WHERE day >= ? AND day <= ? GROUP BY agent_id, integration ORDER BY agent_id, integration`,
  selectTokenSummaryOfAgent: `SELECT agent_id, integration, SUM(issued) AS issued, MIN(issued_first_at) AS issued_first_at,
    MAX(issued_last_at) AS issued_last_at, SUM(CASE WHEN issued > 0 THEN 1 ELSE 0 END) AS issued_days,
    SUM(tokens) AS tokens, MAX(max_seconds) AS max_seconds
    FROM token_use_span WHERE agent_id = ? AND day >= ? AND day <= ? GROUP BY agent_id, integration ORDER BY agent_id, integration`,

  // suggestions (suggestion-ops.ts)
  selectSuggestion: 'SELECT * FROM suggestions WHERE id = ?',
  insertSuggestion: `INSERT INTO suggestions (id, agent_id, integration, kind, target, proposal, evidence, evidence_hash, file,
    file_sha256, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)`,
  /** An open one replaced, or a decided one open again (new evidence): created_at kept, the decision cleared. */
  reopenSuggestion: `UPDATE suggestions SET agent_id = ?, integration = ?, kind = ?, target = ?, proposal = ?, evidence = ?,
    evidence_hash = ?, file = ?, file_sha256 = ?, status = 'open', updated_at = ?, decided_by = NULL, decided_at = NULL WHERE id = ?`,
  decideSuggestion: `UPDATE suggestions SET status = ?, decided_by = ?, decided_at = ?, updated_at = ? WHERE id = ? AND status = 'open'`,
  selectSuggestions: 'SELECT * FROM suggestions ORDER BY agent_id, integration, kind, target',
  selectSuggestionsOfAgent: 'SELECT * FROM suggestions WHERE agent_id = ? ORDER BY agent_id, integration, kind, target',
  selectSuggestionsByStatus: 'SELECT * FROM suggestions WHERE status = ? ORDER BY agent_id, integration, kind, target',
  selectSuggestionsByStatusOfAgent: `SELECT * FROM suggestions WHERE status = ? AND agent_id = ?
    ORDER BY agent_id, integration, kind, target`,

  // web console sessions (console-session-ops.ts)
  insertConsoleSession: `INSERT INTO console_sessions (id_sha256, caller_id, key_sha256, created_at, last_seen_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?)`,
  selectConsoleSession: 'SELECT * FROM console_sessions WHERE id_sha256 = ?',
  touchConsoleSession: 'UPDATE console_sessions SET last_seen_at = ? WHERE id_sha256 = ? AND ended_at IS NULL AND last_seen_at < ?',
  endConsoleSession: 'UPDATE console_sessions SET ended_at = ? WHERE id_sha256 = ? AND ended_at IS NULL',
  /**
   * A caller's live sessions (not ended, not expired, used since the idle cut) beyond its newest N: the ones a sign-in
   * ends. Parameters: caller, now, idle cut, caller, now, idle cut, N. A dead one is neither counted nor ended here.
   */
  selectOldConsoleSessions: `SELECT id_sha256 FROM console_sessions WHERE caller_id = ? AND ended_at IS NULL AND expires_at > ? AND last_seen_at > ?
    AND id_sha256 NOT IN (SELECT id_sha256 FROM console_sessions WHERE caller_id = ? AND ended_at IS NULL AND expires_at > ? AND last_seen_at > ?
    ORDER BY created_at DESC, id_sha256 LIMIT ?)
    ORDER BY created_at, id_sha256`,
  /** Sessions past their absolute expiry, or idle since before the cut (ended ones included): a bounded batch. */
  deleteDeadConsoleSessions: `DELETE FROM console_sessions WHERE id_sha256 IN (SELECT id_sha256 FROM console_sessions
    WHERE expires_at <= ? OR last_seen_at <= ? LIMIT ?)`,
} as const;

/** Filters of an event listing: the store's EventQuery. Every field narrows the result; times compare as ISO 8601 text. */
export type EventFilter = EventQuery;

/**
 * One keyset page of an event listing: `seq > ?` (the last seq seen) plus the filters, in seq order. Every column
 * it reads is part of the hashed event; the outcome filter is applied to the rows after reading (audit-ops.ts).
 * Parameters: the filter values in the order below, then the last seq seen, then the page size.
 */
export function eventPageSql(filter: EventFilter): { sql: string; params: unknown[]; startAfter: number } {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (clause: string, value: unknown): void => {
    where.push(clause);
    params.push(value);
  };
  // from_seq is not a clause of its own: it is where the page cursor (`seq > ?`, below) starts. With two lower bounds
  // on seq SQLite ranges the rowid on one and filters on the other, so every page read the trail again from from_seq:
  // exporting 400,000 events took 136 s, twenty times 100,000 (issue 19).
  if (filter.to_seq !== undefined) add('seq <= ?', filter.to_seq);
  if (filter.since !== undefined) add('time >= ?', filter.since);
  if (filter.until !== undefined) add('time < ?', filter.until);
  if (filter.agent_id !== undefined) add('agent_id = ?', filter.agent_id);
  if (filter.task_id !== undefined) add('task_id = ?', filter.task_id);
  if (filter.decision_id !== undefined) add('decision_id = ?', filter.decision_id);
  if (filter.jti !== undefined) add('jti = ?', filter.jti);
  if (filter.caller_id !== undefined) add('caller_id = ?', filter.caller_id);
  // `outcome` is not a column: iterateEvents reads it from each decision's hashed data (audit-ops.ts).
  if (filter.outcome !== undefined) where.push("type = 'decision'");
  if (filter.types !== undefined) {
    if (filter.types.length === 0) where.push('1 = 0');
    else {
      where.push(`type IN (${filter.types.map(() => '?').join(', ')})`);
      params.push(...filter.types);
    }
  }
  where.push('seq > ?');
  const sql = `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`;
  return { sql, params, startAfter: Math.max(0, (filter.from_seq ?? 1) - 1) };
}

/** The column filters of a decision search (DecisionSearchQuery): columns of the hashed event only. */
export interface DecisionSearchFilter {
  agent_id?: string;
  task_id?: string;
  decision_id?: string;
}

/**
 * One keyset page of decision events, newest first, in a seq range `seq >= ? AND seq < ?` (the lower bound where a
 * time range starts, the lowest seq seen), plus the column filters. Time, outcome and reason codes are read from
 * each row after reading (decision-search-ops.ts): the seq range alone decides how far a page reads, whichever index
 * serves it (the primary key; audit_events_decision_agent for an agent, which the literal type lets SQLite use;
 * audit_events_task, audit_events_decision). `contains`: LIKE patterns (likePattern) the stored data must all match
 * for the row to come back whole; every other row of the range still comes back (it counts toward the page's scan
 * bound) but with only its seq and time (every other column NULL), so a search for a rare outcome or reason does not
 * carry every row out of the database to drop it. Parameters: the patterns, the filter values in the order below, the lowest seq,
 * the seq to stay below, the page size.
 */
export function decisionSearchSql(filter: DecisionSearchFilter, contains: readonly string[] = []): { sql: string; params: unknown[] } {
  const where = ["type = 'decision'"];
  const params: unknown[] = [...contains];
  const add = (clause: string, value: unknown): void => {
    where.push(clause);
    params.push(value);
  };
  if (filter.agent_id !== undefined) add('agent_id = ?', filter.agent_id);
  if (filter.task_id !== undefined) add('task_id = ?', filter.task_id);
  if (filter.decision_id !== undefined) add('decision_id = ?', filter.decision_id);
  where.push('seq >= ?', 'seq < ?');
  const range = `FROM audit_events WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`;
  if (contains.length === 0) return { sql: `SELECT ${EVENT_COLUMNS} ${range}`, params };
  // `hit` computed once per row; a row without it keeps only seq and time (what the scan needs).
  const hit = contains.map(() => "data LIKE ? ESCAPE '\\'").join(' AND ');
  const lean = EVENT_COLUMNS.split(', ').map((c) => (c === 'seq' || c === 'time' ? c : `CASE WHEN hit THEN ${c} END AS ${c}`));
  return { sql: `SELECT ${lean.join(', ')} FROM (SELECT ${EVENT_COLUMNS}, ${hit} AS hit ${range}) AS e ORDER BY seq DESC`, params };
}

/**
 * A LIKE pattern (with `ESCAPE '\'`) matching any text that contains `text`: the same on SQLite and PostgreSQL,
 * except that SQLite's LIKE ignores ASCII case, so a match there is a candidate the caller checks again.
 */
export function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export interface AccessRequestFilter {
  status?: string;
  /** With `status` pending or expired: a pending request past its expires_at at this instant counts as expired. */
  now?: string;
  approver_groups?: readonly string[];
  agent_id?: string;
  /** Keyset: (created_at, id) strictly after these. */
  after?: { created_at: string; id: string };
}

/**
 * One keyset page of access requests in (created_at, id) order. "After" is spelled out (no row-value comparison)
 * and groups are matched through access_request_groups (exact, indexed). Parameters: in order, then the page size.
 */
export function accessRequestPageSql(filter: AccessRequestFilter): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.status === 'pending' && filter.now !== undefined) {
    where.push("status = 'pending' AND expires_at > ?");
    params.push(filter.now);
  } else if (filter.status === 'expired' && filter.now !== undefined) {
    where.push("(status = 'expired' OR (status = 'pending' AND expires_at <= ?))");
    params.push(filter.now);
  } else if (filter.status !== undefined) {
    where.push('status = ?');
    params.push(filter.status);
  }
  if (filter.agent_id !== undefined) {
    where.push('agent_id = ?');
    params.push(filter.agent_id);
  }
  if (filter.approver_groups !== undefined) {
    if (filter.approver_groups.length === 0) where.push('1 = 0');
    else {
      where.push(`id IN (SELECT access_request_id FROM access_request_groups
        WHERE approver_group IN (${filter.approver_groups.map(() => '?').join(', ')}))`);
      params.push(...filter.approver_groups);
    }
  }
  if (filter.after !== undefined) {
    where.push('(created_at > ? OR (created_at = ? AND id > ?))');
    params.push(filter.after.created_at, filter.after.created_at, filter.after.id);
  }
  const clause = where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`;
  return { sql: `SELECT * FROM access_requests${clause} ORDER BY created_at, id LIMIT ?`, params };
}

/** Outbox rows in (created_at, id) order, optionally of one status and / or one access request. Then the limit. */
export function deliveryListSql(filter: { status?: string; access_request_id?: string }): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.status !== undefined) {
    where.push('status = ?');
    params.push(filter.status);
  }
  if (filter.access_request_id !== undefined) {
    where.push('access_request_id = ?');
    params.push(filter.access_request_id);
  }
  const clause = where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`;
  return { sql: `SELECT * FROM outbox${clause} ORDER BY created_at, id LIMIT ?`, params };
}
