/**
 * The audit event, version 1: the unit of the tamper-evident audit trail and of every export.
 * Documented for readers outside this codebase in docs/audit-events.md; change both together.
 */

/** Every event type, with what it records. A closed table: a new type is a new entry here and in the docs. */
export const AUDIT_EVENT_TYPES = {
  decision: 'the PDP evaluated a decision request (allow, deny, undefined or error)',
  evaluation: "the PDP evaluated a policy entrypoint other than an agent decision with a caller's input (OPA's data API, an AuthZEN request routed to a Rego pack)",
  'token.issued': 'an allow decision was redeemed for an access token',
  'token.used': 'a token was introspected for a resource server, or checked by the enforcement proxy for one call to an upstream API',
  'token.revoked': 'a token was revoked by its caller, or because its task completed or expired',
  'provider.credential_discarded': 'a provider credential was minted for a redemption that was then refused: never handed over, it lives at the provider until its expiry',
  'task.registered': 'a task and its trusted context were registered',
  'task.completed': 'a task was completed (or expired); its tokens are revoked in the same transaction',
  'policy.loaded': 'a policy bundle was loaded and became the active revision',
  'policy.refused': 'a policy bundle was refused; the previous revision stays active',
  'auth.failed': 'a caller failed authentication',
  'access.refused': "an authenticated caller was refused what it asked (its role, an agent, task context, another caller's decision)",
  'callers.replaced': "a reload replaced the configured callers (keys, roles, agents): the new list",
  'access_request.submitted': 'a PEP asked for a requestable denial to be lifted; its notifications are queued in the same transaction',
  'access_request.notified': 'an approver group was notified of an access request (a webhook delivery succeeded)',
  'access_request.notification_failed': 'a notification of an access request was given up after its last attempt (dead letter)',
  'access_request.approved': 'an approver approved an access request: its elevation window starts',
  'access_request.denied': 'an approver denied an access request',
  'access_request.expired': 'an access request was not decided before it expired',
  'elevation.ended': 'an elevation ended: its window passed, or its task completed or expired',
  'audit.pruned': 'events older than a cut were deleted from the start of the chain, behind a checkpoint',
  'audit.head_signed': 'the PDP signed the head of the chain (seq, hash, time) with the audit key',
  'policy.suggestion.applied': "an operator applied a policy suggestion: the agent's policy file was rewritten (its SHA-256 before and after)",
  'policy.suggestion.dismissed': 'an operator dismissed a policy suggestion: it does not come back until its evidence changes',
  'console.session_started': "a caller signed in to the web console: its API key exchanged for a session",
  'console.session_ended': 'a web console session was ended: signed out, or replaced by a new sign-in from the same browser',
} as const satisfies Record<string, string>;

export type AuditEventType = keyof typeof AUDIT_EVENT_TYPES;

/**
 * Events about the trail itself. The store alone writes them (never through `appendEvents`), never masks them (they
 * hold seqs, hashes and times, nothing about anyone), and a filtered JSON Lines export always keeps them: the
 * verifier checks the chain against them.
 */
export const TRAIL_EVENT_TYPES: readonly AuditEventType[] = Object.freeze(['audit.pruned', 'audit.head_signed']);

export function isTrailEventType(type: string): boolean {
  return (TRAIL_EVENT_TYPES as readonly string[]).includes(type);
}

/** The only event version this build writes and verifies. */
export const AUDIT_EVENT_VERSION = 1;

/** The correlation ids an event may carry. Each is either absent or a non-empty string (never null, never ""). */
export interface AuditIds {
  decision_id?: string;
  jti?: string;
  task_id?: string;
  agent_id?: string;
  caller_id?: string;
  trace_id?: string;
}

export const AUDIT_ID_FIELDS = ['decision_id', 'jti', 'task_id', 'agent_id', 'caller_id', 'trace_id'] as const;

/** An event as stored and exported. `hash` is SHA-256 over the canonical JSON of every other field. */
export interface AuditEventV1 extends AuditIds {
  v: 1;
  /** Position in the chain: 1, 2, 3, ... with no gaps (pruning removes a prefix). */
  seq: number;
  /** When it happened: ISO 8601 UTC with milliseconds (`2026-01-31T12:00:00.000Z`). */
  time: string;
  type: AuditEventType;
  /** Type-specific payload (docs/audit-events.md), after masking. Canonical-JSON encodable. */
  data: unknown;
  /** `hash` of the event with seq - 1, or of the pruning checkpoint, or 64 zeros for the first event ever. */
  prev_hash: string;
  /** Lowercase hex SHA-256 of the canonical JSON of this event without `hash`. */
  hash: string;
}

/** What a writer supplies; the store assigns `v`, `seq`, `prev_hash` and `hash` at append time. */
export interface NewAuditEvent extends AuditIds {
  time: string;
  type: AuditEventType;
  data: unknown;
}

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function isAuditEventType(value: unknown): value is AuditEventType {
  return typeof value === 'string' && Object.hasOwn(AUDIT_EVENT_TYPES, value);
}

/** True for the one time format events use: what `Date.prototype.toISOString` returns for years 0000-9999. */
export function isIsoTime(value: unknown): value is string {
  return typeof value === 'string' && ISO_MS.test(value) && !Number.isNaN(Date.parse(value));
}

/** Throws TypeError (a programming error, not a runtime failure) when `event` is not a valid NewAuditEvent. */
export function assertNewAuditEvent(event: NewAuditEvent): void {
  if (!isAuditEventType(event.type)) throw new TypeError(`unknown audit event type: ${String(event.type)}`);
  if (!isIsoTime(event.time)) {
    throw new TypeError(`audit event time must be ISO 8601 UTC with milliseconds: ${String(event.time)}`);
  }
  for (const field of AUDIT_ID_FIELDS) {
    const id = event[field];
    if (id !== undefined && (typeof id !== 'string' || id === '')) {
      throw new TypeError(`audit event ${field} must be a non-empty string when present`);
    }
  }
  if (event.data === undefined) throw new TypeError('audit event data is required (use {} for none)');
}
