/**
 * Wire format v1 of the audit console's reads (issue 22), role auditor (the overview: auditor or admin):
 * - `GET /v1/audit/decisions`: a decision search, newest first, keyset-paged (`DecisionSearchV1`);
 * - `GET /v1/audit/integrity` and `POST /v1/audit/verify`: the chain's head and start, and its verification
 *   (`AuditIntegrityV1`, `VerificationV1`; the verify route streams `VerifyLineV1` lines);
 * - `GET /v1/audit/overview`: decisions per minute of a recent window (`AuditOverviewV1`).
 * Types only; imports nothing but its sibling wire files.
 */
import type { Outcome, RecordedOutcome } from './evaluation-v1.js';

/** One decision event as a search lists it: read from its hashed data (`input`, `result`, `policy_revision`). */
export interface DecisionSummaryV1 {
  seq: number;
  time: string;
  decision_id: string;
  agent_id: string | null;
  task_id: string | null;
  caller_id: string | null;
  integration: string | null;
  /** The recorded outcome: allow, deny, undefined or error. */
  outcome: RecordedOutcome | null;
  allow: boolean;
  requested_scopes: string[];
  granted_scopes: string[];
  /** The reason codes (`result.reasons[].code`), in order. */
  reasons: string[];
  policy_revision: string | null;
}

/** A page of `GET /v1/audit/decisions`. */
export interface DecisionSearchV1 {
  decisions: DecisionSummaryV1[];
  /**
   * Pass it back as `cursor` for the next (older) page; null when nothing older is left. A page may hold fewer than
   * `limit` decisions and still have a cursor: it stopped after reading its bound of events.
   */
  next_cursor: string | null;
  /** The lowest seq the page examined (the search has looked at everything from the head down to it); null when none. */
  scanned_through_seq: number | null;
}

/** Most decisions in one page of the search; the default is DECISION_SEARCH_DEFAULT_LIMIT. */
export const DECISION_SEARCH_MAX_LIMIT = 500;
export const DECISION_SEARCH_DEFAULT_LIMIT = 50;

/** The last verification of the stored chain a PDP process ran (`POST /v1/audit/verify`). */
export interface VerificationV1 {
  ok: boolean;
  /** Events verified (before the break, when there is one). */
  verified: number;
  /** The chain's start and the head the verification ran to. */
  from_seq: number;
  to_seq: number;
  started_at: string;
  finished_at: string;
  /** The caller id that asked for it. */
  by: string;
  /** The first seq at which the chain departs from the original; only when `ok` is false. */
  first_bad_seq?: number;
  /** What is wrong, in words; only when `ok` is false. */
  error?: string;
}

/** The lines of `POST /v1/audit/verify` (NDJSON): progress lines, then one result line. */
export type VerifyLineV1 = { type: 'progress'; verified: number; total: number } | ({ type: 'result' } & VerificationV1);

/** `GET /v1/audit/integrity`. */
export interface AuditIntegrityV1 {
  /** The last event of the chain; null when the stored chain holds none. */
  head: { seq: number; hash: string; time: string } | null;
  /** Where the stored chain starts: genesis (seq 1) or the latest pruning checkpoint. */
  start: { start_seq: number; start_prev_hash: string };
  /** The last verification this PDP process ran (kept in memory: another process or a restart knows none). */
  last_verification: VerificationV1 | null;
}

/** Decisions per outcome. */
export type OutcomeCountsV1 = Record<RecordedOutcome, number>;

/** `GET /v1/audit/overview?minutes=N`. */
export interface AuditOverviewV1 {
  /** The window: from the start of the minute N - 1 minutes before now, to now. */
  since: string;
  until: string;
  /** One entry per minute of the window, oldest first (the last one is the current, partial minute). */
  per_minute: Array<{ minute: string } & OutcomeCountsV1>;
  by_outcome: OutcomeCountsV1;
  /** Decisions counted over the window's length in seconds (truncated: over the part from the oldest decision read). */
  decisions_per_second: number;
  /** The reason codes of denials, most frequent first (ties by code), at most ten. */
  top_denial_reasons: Array<{ code: string; count: number }>;
  /** True when the window held more decisions than one overview reads: the counts are of the newest ones read. */
  truncated: boolean;
}

/** Longest window of the overview, in minutes (a day); the default is 60. */
export const OVERVIEW_MAX_MINUTES = 1440;

/** Re-exported for readers of this file: the outcomes a decision can have on the wire (error is recorded only). */
export type { Outcome, RecordedOutcome };
