/**
 * The errors of the PEP SDK: one base type with a closed union of codes, described by one table. Every code
 * means the same thing to the agent: the guarded call did not happen. The SDK fails closed, so a PDP that
 * cannot be reached is a refusal with its own code, never an allow.
 *
 * Messages name what failed and the PDP's own error code; they never contain an API key or an access token.
 */
import type { AccessRequestHintV1, AccessRequestStatus, AccessRequestV1 } from '../wire/access-request-v1.js';
import type { DecisionResponseV1 } from '../wire/decision-v1.js';
import type { DeniedScope, Outcome, Reason, ResourceRef } from '../wire/evaluation-v1.js';

/** Code → whether asking again later (with a new decision) can succeed. */
export const PEP_ERRORS = {
  /** The PDP could not be reached in time, or answered 503: nothing was decided, so nothing is allowed. */
  pdp_unavailable: { retryable: true },
  /**
   * The PDP refused the request itself (unknown API key, agent not allowed for this caller, invalid request,
   * task already exists) or answered something that is not its API. Asking again will not help.
   */
  pdp_error: { retryable: false },
  /** The decision was deny or undefined, or an allow whose granted scopes do not cover the call. */
  permission_denied: { retryable: false },
  /**
   * The call was allowed but no token could be had for it: the redemption window passed, the decision was
   * already redeemed, the issuer was down, or the PDP became unreachable between deciding and redeeming.
   */
  token_unavailable: { retryable: true },
  /**
   * `ApprovalPending`: the call needs an approver's answer, and an access request for it is pending. Call again
   * once it is approved (poll `PdpClient.waitForAccessRequest(accessRequestId)`): the new decision uses the
   * elevation.
   */
  approval_pending: { retryable: true },
  /** `ApprovalRefused`: the access request for the call was denied by an approver, or expired unanswered. */
  approval_refused: { retryable: false },
} as const;

export type PepErrorCode = keyof typeof PEP_ERRORS;

export interface PepErrorOptions {
  /** The HTTP status the PDP answered, when it answered. */
  status?: number;
  /** The PDP's own error code (`decision_expired`, `store_unavailable`, ...), when it sent one. */
  pdpCode?: string;
  cause?: unknown;
}

export class PepError extends Error {
  override readonly name: string = 'PepError';
  readonly code: PepErrorCode;
  /** The HTTP status the PDP answered; undefined when it did not answer (network error, timeout). */
  readonly status: number | undefined;
  /** The PDP's error code from its `{ error: { code } }` body, when it sent one. */
  readonly pdpCode: string | undefined;
  /** Whether a later attempt (with a new decision) may succeed. From `PEP_ERRORS`. */
  readonly retryable: boolean;

  constructor(code: PepErrorCode, message: string, options: PepErrorOptions = {}) {
    const entry = PEP_ERRORS[code];
    if (entry === undefined) throw new TypeError(`unknown PepError code: ${String(code)}`);
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.pdpCode = options.pdpCode;
    this.retryable = entry.retryable;
  }
}

/**
 * The PDP did not allow the call, or allowed less than it needs. Carries the decision, so the agent can be
 * told why (`reasons` are written for that) and an auditor can find the record (`decisionId`).
 */
export class PermissionDenied extends PepError {
  override readonly name = 'PermissionDenied';
  override readonly code = 'permission_denied' as const;
  readonly decisionId: string;
  /** `deny`, `undefined` (no policy decided: treated as deny), or `allow` for a grant that does not cover the call. */
  readonly outcome: Outcome;
  readonly agentId: string;
  readonly taskId: string;
  readonly integration: string;
  readonly resource: ResourceRef | null;
  /** The scopes the call needs. */
  readonly neededScopes: readonly string[];
  /** What the decision granted (`[]` on deny). */
  readonly grantedScopes: readonly string[];
  /** The needed scopes the decision did not grant. */
  readonly missingScopes: readonly string[];
  readonly deniedScopes: readonly DeniedScope[];
  /** Why, from the policy: show these to the agent. */
  readonly reasons: readonly Reason[];
  readonly policyRevision: string;
  /**
   * Present when an approver could lift this denial (reason `approval_required`): how to ask, bound to this
   * decision (`template.decision_id`). Submit it with `PdpClient.submitAccessRequest` before `expiresAt`.
   */
  readonly accessRequest: AccessRequestHintV1 | undefined;

  constructor(decision: DecisionResponseV1, neededScopes: readonly string[]) {
    const granted = new Set(decision.granted_scopes);
    const missing = decision.allow ? neededScopes.filter((s) => !granted.has(s)) : [...neededScopes];
    super('permission_denied', describe(decision, neededScopes, missing), { status: 200 });
    this.decisionId = decision.decision_id;
    this.outcome = decision.outcome;
    this.agentId = decision.agent_id;
    this.taskId = decision.task_id;
    this.integration = decision.integration;
    this.resource = decision.resource;
    this.neededScopes = Object.freeze([...neededScopes]);
    this.grantedScopes = Object.freeze([...decision.granted_scopes]);
    this.missingScopes = Object.freeze(missing);
    this.deniedScopes = Object.freeze([...decision.denied_scopes]);
    this.reasons = Object.freeze([...decision.reasons]);
    this.policyRevision = decision.policy_revision;
    this.accessRequest = decision.access_request === undefined ? undefined : freezeHint(decision.access_request);
  }

  /** True when an approver could lift this denial (`accessRequest` is present). */
  get approvalRequired(): boolean {
    return this.accessRequest !== undefined;
  }
}

/**
 * The call was denied with `approval_required`, an access request for it was submitted, and no approver has
 * answered yet (or the guard was told not to wait). The tool was not called. Resolve it later by id: poll
 * `PdpClient.getAccessRequest` / `waitForAccessRequest(accessRequestId)`, then call the guarded tool again.
 */
export class ApprovalPending extends PepError {
  override readonly name = 'ApprovalPending';
  override readonly code = 'approval_pending' as const;
  readonly accessRequestId: string;
  /** Where the request's status is polled (`GET /v1/access-requests/{id}`, as the PDP advertises it). */
  readonly statusEndpoint: string;
  /** The request expires unanswered at this time. */
  readonly expiresAt: string;
  /** The request as last seen (status `pending`). */
  readonly accessRequest: AccessRequestV1;
  /** The denial the request asks to lift. */
  readonly denied: PermissionDenied;

  constructor(request: AccessRequestV1, denied: PermissionDenied) {
    super('approval_pending', `approval pending: access request ${request.id} for ${request.agent_id} on ${request.integration} [${request.scopes.join(', ')}] awaits an approver of ${request.approver_groups.join(', ')} until ${request.expires_at} (decision ${denied.decisionId})`, { status: 200 });
    this.accessRequestId = request.id;
    this.statusEndpoint = request.status_endpoint;
    this.expiresAt = request.expires_at;
    this.accessRequest = request;
    this.denied = denied;
  }
}

/** The access request for the call ended without an approval: `denied` by an approver, or `expired`. */
export class ApprovalRefused extends PepError {
  override readonly name = 'ApprovalRefused';
  override readonly code = 'approval_refused' as const;
  readonly accessRequestId: string;
  /** `denied` or `expired`. */
  readonly requestStatus: Exclude<AccessRequestStatus, 'pending' | 'approved'>;
  /** The approver's note, if any. */
  readonly note: string | null;
  readonly accessRequest: AccessRequestV1;
  readonly denied: PermissionDenied;

  constructor(request: AccessRequestV1, denied: PermissionDenied) {
    const status = request.status === 'denied' ? 'denied' : 'expired';
    const by = status === 'denied' ? `denied by ${request.decided_by ?? 'an approver'}${request.note ? ` (${request.note})` : ''}` : `expired at ${request.expires_at} unanswered`;
    super('approval_refused', `approval refused: access request ${request.id} was ${by} (decision ${denied.decisionId})`, { status: 200 });
    this.accessRequestId = request.id;
    this.requestStatus = status;
    this.note = request.note;
    this.accessRequest = request;
    this.denied = denied;
  }
}

function freezeHint(hint: AccessRequestHintV1): AccessRequestHintV1 {
  return Object.freeze({ ...hint, template: Object.freeze({ ...hint.template }), scopes: Object.freeze([...hint.scopes]) as string[] });
}

function describe(d: DecisionResponseV1, needed: readonly string[], missing: readonly string[]): string {
  const on = d.resource === null ? '' : ` on ${d.resource.type} ${d.resource.id}`;
  const why = d.reasons.map((r) => `${r.code}: ${r.message}`).join('; ') || `outcome ${d.outcome}`;
  const head = `permission denied: ${d.agent_id} may not use ${d.integration} [${needed.join(', ')}]${on}`;
  if (d.allow) return `${head}: granted only [${d.granted_scopes.join(', ')}], missing [${missing.join(', ')}] (decision ${d.decision_id}; ${why})`;
  return `${head} (decision ${d.decision_id}): ${why}`;
}

export function isPepError(err: unknown): err is PepError {
  return err instanceof PepError;
}

export function isPermissionDenied(err: unknown): err is PermissionDenied {
  return err instanceof PermissionDenied;
}

export function isApprovalPending(err: unknown): err is ApprovalPending {
  return err instanceof ApprovalPending;
}
