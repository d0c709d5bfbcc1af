/**
 * The errors of the PEP SDK: one base type with a closed union of codes, described by one table. Every code
 * means the same thing to the agent: the guarded call did not happen. The SDK fails closed, so a PDP that
 * cannot be reached is a refusal with its own code, never an allow.
 *
 * Messages name what failed and the PDP's own error code; they never contain an API key or an access token.
 */
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
  }
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
