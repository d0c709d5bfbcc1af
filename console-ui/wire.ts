/*
 * The API shapes the console reads (the contract of issue 22 and docs/openapi.json), as far as the pages use them.
 * The browser never imports the server's code: these are copies, and every page reads them defensively (a value
 * that is missing shows as "-", never breaks the page).
 */

export type Role = 'auditor' | 'approver' | 'admin';

export interface SessionV1 {
  caller_id: string;
  roles: string[];
  csrf_token: string;
  idle_timeout_seconds: number;
}

export interface ErrorBodyV1 {
  error: { code: string; message: string; details?: Array<{ path: string; message: string }> };
}

export const OUTCOMES = ['allow', 'deny', 'undefined', 'error'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Read from the decision event's hashed data: a member the data lacks is null. */
export interface DecisionSummaryV1 {
  seq: number;
  time: string;
  decision_id: string;
  agent_id: string | null;
  task_id: string | null;
  caller_id: string | null;
  integration: string | null;
  outcome: string | null;
  allow: boolean;
  requested_scopes: string[];
  granted_scopes: string[];
  reasons: string[];
  policy_revision: string | null;
}

export interface DecisionPageV1 {
  decisions: DecisionSummaryV1[];
  next_cursor: string | null;
  scanned_through_seq: number | null;
}

export interface AuditEventV1 {
  v: number;
  seq: number;
  time: string;
  type: string;
  decision_id?: string;
  jti?: string;
  task_id?: string;
  agent_id?: string;
  caller_id?: string;
  trace_id?: string;
  data: unknown;
  prev_hash: string;
  hash: string;
}

export interface DecisionChainV1 {
  decision_id: string;
  events: AuditEventV1[];
}

export interface VerificationV1 {
  ok: boolean;
  verified: number;
  from_seq: number;
  to_seq: number;
  started_at: string;
  finished_at: string;
  by: string;
  first_bad_seq?: number;
  error?: string;
}

export interface IntegrityV1 {
  head: { seq: number; hash: string; time: string } | null;
  start: { start_seq: number; start_prev_hash: string };
  last_verification: VerificationV1 | null;
}

export type VerifyLine = { type: 'progress'; verified: number; total: number } | ({ type: 'result' } & VerificationV1);

export interface OutcomeCounts {
  allow: number;
  deny: number;
  undefined: number;
  error: number;
}

export interface OverviewV1 {
  since: string;
  until: string;
  per_minute: Array<{ minute: string } & OutcomeCounts>;
  by_outcome: OutcomeCounts;
  decisions_per_second: number;
  top_denial_reasons: Array<{ code: string; count: number }>;
  /** The window held more decisions than one overview reads: the counts are of the newest ones. */
  truncated?: boolean;
}

export const ACCESS_REQUEST_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;
export type AccessRequestStatus = (typeof ACCESS_REQUEST_STATUSES)[number];

export interface AccessRequestV1 {
  id: string;
  status: AccessRequestStatus;
  expires_at: string;
  decision_id: string;
  requested_by: string;
  agent_id: string;
  task_id: string;
  integration: string;
  resource: { type: string; id: string } | null;
  scopes: string[];
  reason: string | null;
  duration_seconds: number;
  max_duration_seconds: number;
  approver_groups: string[];
  policy_revision: string;
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
  note: string | null;
  approved_until: string | null;
  ended_at: string | null;
  ended_reason: string | null;
}

export interface AccessRequestListV1 {
  items: AccessRequestV1[];
  next_after: string | null;
}

export type SuggestionStatus = 'open' | 'applied' | 'dismissed' | 'withdrawn';

/** A stored suggestion: `proposal` and `evidence` are JSON the store does not check (read them defensively). */
export interface SuggestionRecordV1 {
  id: string;
  agent_id: string;
  integration: string;
  kind: string;
  target: string;
  proposal: unknown;
  evidence: unknown;
  file: string | null;
  status: SuggestionStatus;
  created_at: string;
  updated_at: string;
  decided_by: string | null;
  decided_at: string | null;
}

export interface SuggestionReportV1 {
  version: number;
  generated_at: string;
  suggestions: SuggestionRecordV1[];
}

export interface SuggestionApplyV1 {
  suggestion: SuggestionRecordV1;
  file: string;
  diff: string;
  written: boolean;
  revision_before: string | null;
  revision_after: string | null;
  /** Compile warnings the changed file has that it did not have before. */
  new_warnings?: Array<{ path: string; message: string }>;
  /** The server reloaded its policy after writing (false on a dry run or when the reload failed). */
  reloaded?: boolean;
  reload_error?: { code: string; message: string } | null;
  policy_revision?: string | null;
}

export interface AgentIntegrationV1 {
  integration: string;
  max_scope: string[];
  deny_scope: string[];
  token_ttl_seconds: number;
  requestable: string[];
}

export interface AgentV1 {
  agent_id: string;
  roles: string[];
  /** Task types narrow the ceilings further (per_task_downscope with task types declared). */
  task_restricted?: boolean;
  task_types?: string[];
  integrations: AgentIntegrationV1[];
}

export interface AgentListV1 {
  policy_revision: string;
  agents: AgentV1[];
}

export interface AgentActivityV1 {
  agent_id: string;
  days: Array<{ day: string; decisions: number; denials: number }>;
  scopes: Array<{ integration: string; scope: string; granted: number; used: number; requested?: number; denied?: number }>;
  /** The policy in force names the agent (one it no longer names still has its history). */
  in_policy?: boolean;
  since: string;
  until: string;
}
