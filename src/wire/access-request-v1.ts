/**
 * Wire format v1 of break-glass escalation: the hint on a requestable denial, `POST /v1/access-requests` and its
 * approve / deny bodies, the access request as the API returns it, and the elevation the PDP hands the policy.
 * The shape follows the OpenID AuthZEN "Access Request and Approval" profile (draft): a denial says it can be
 * requested, the PEP submits and gets a task handle, an approver decides, the PEP decides again.
 */
import type { ResourceRef } from './evaluation-v1.js';

/**
 * Text a PEP chose (a reason, a record id, a task id) as an approver is shown it (the review page, Slack, PagerDuty):
 * the Unicode bidirectional controls that could make it read in another order (U+202E turns `elif.exe` around) are
 * spelled out as `[U+202E]`. Each channel still escapes the text for its own syntax.
 */
export function shownToApprover(text: string): string {
  return text.replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `[U+${(c.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}]`);
}

/** `pending` moves exactly once to one of the others. An elevation that ended keeps `approved` (see `ended_at`). */
export const ACCESS_REQUEST_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;
export type AccessRequestStatus = (typeof ACCESS_REQUEST_STATUSES)[number];

/** Why an elevation ended. */
export const ELEVATION_END_REASONS = ['window', 'task_completed', 'task_expired'] as const;
export type ElevationEndReason = (typeof ELEVATION_END_REASONS)[number];

/** The body to submit, prefilled: the PEP adds `reason` (and may shorten `duration_seconds`). */
export interface AccessRequestSubmissionV1 {
  decision_id: string;
  reason?: string;
  duration_seconds?: number;
}

/** `access_request` on a requestable denial (`reasons` holds `approval_required`). */
export interface AccessRequestHintV1 {
  /** Absolute URL of `POST /v1/access-requests`. */
  endpoint: string;
  /** A request for this denial is accepted until then (`escalation.request_window_seconds` after the decision). */
  expires_at: string;
  template: AccessRequestSubmissionV1;
  /** The requested scopes an approval would add (the ones denied with `approval_required`). */
  scopes: string[];
  /** The longest elevation an approver may grant (the policy's `max_duration`). */
  max_duration_seconds: number;
  /** The policy requires a `reason` in the submission. */
  require_reason: boolean;
}

/** `approval` on an allow granted with an elevation; the token it is redeemed for expires by `approved_until`. */
export interface ApprovalRefV1 {
  id: string;
  approved_until: string;
}

export interface AccessRequestApproveV1 {
  /** Default: the duration the request asked for. Above the policy's `max_duration` is refused. */
  duration_seconds?: number;
  note?: string;
}

export interface AccessRequestDenyV1 {
  note?: string;
}

/** An access request as the API returns it. `status_endpoint` is where the PEP polls it. */
export interface AccessRequestV1 {
  id: string;
  status: AccessRequestStatus;
  status_endpoint: string;
  /** Until when it stays pending. */
  expires_at: string;
  /** The denial it asks to lift: the binding. */
  decision_id: string;
  /** The PEP caller that submitted it. */
  requested_by: string;
  agent_id: string;
  task_id: string;
  integration: string;
  resource: ResourceRef | null;
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
  /** End of the elevation window (approved only). */
  approved_until: string | null;
  /** When the elevation ended early or at its window (approved only; null while it runs). */
  ended_at: string | null;
  ended_reason: ElevationEndReason | null;
  /** Approved: what the profile calls the result. The PEP decides again; the approval alone never allows. */
  result?: { mode: 'reevaluate'; approval: { id: string; approved_at: string; approved_until: string } };
}

export interface AccessRequestListV1 {
  items: AccessRequestV1[];
  /** Pass as `after` for the next page; null on the last. */
  next_after: string | null;
}

/**
 * `input.elevation`: the active elevation the PDP found for exactly this agent, task, integration and record,
 * looked up by that key in the store (never a scan over approvals). Absent when there is none.
 */
export interface ElevationInputV1 {
  access_request_id: string;
  /** Map form, like every set in the policy data: `{ "<scope>": true }`. */
  scopes: Record<string, true>;
  resource: ResourceRef | null;
  approved_until: string;
}

const ID = '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$';
const note = { type: 'string', maxLength: 1000 } as const;

export const accessRequestSubmissionSchema = {
  $id: 'AccessRequestSubmissionV1',
  type: 'object',
  additionalProperties: false,
  required: ['decision_id'],
  properties: {
    decision_id: { type: 'string', pattern: ID },
    reason: { type: 'string', minLength: 1, maxLength: 1000 },
    duration_seconds: { type: 'integer', minimum: 1, maximum: 604800 },
  },
} as const;

export const accessRequestApproveSchema = {
  $id: 'AccessRequestApproveV1',
  type: 'object',
  additionalProperties: false,
  properties: { duration_seconds: { type: 'integer', minimum: 1, maximum: 604800 }, note },
} as const;

export const accessRequestDenySchema = {
  $id: 'AccessRequestDenyV1',
  type: 'object',
  additionalProperties: false,
  properties: { note },
} as const;

/** `Idempotency-Key` header: printable ASCII, 1–255 characters (the IETF draft's shape). */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;
