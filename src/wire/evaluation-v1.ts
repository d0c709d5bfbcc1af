/**
 * Leaf types shared by the wire format and the policy evaluator, and the one definition of each closed list the
 * store, the exports, the OpenAPI document and the PEP SDK read: outcomes, denied-scope reasons and the core's
 * reason codes.
 */

/** What a decision answer can say. Only `allow` grants. */
export const OUTCOMES = ['allow', 'deny', 'undefined'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * What the trail can hold: the three answers, and `error` for an authorised request the PDP could not evaluate
 * (answered 503, nothing allowed, recorded when the store still works).
 */
export const RECORDED_OUTCOMES = [...OUTCOMES, 'error'] as const;
export type RecordedOutcome = (typeof RECORDED_OUTCOMES)[number];

/** Why one requested scope was not granted as asked (`denied_scopes[].reason`). */
export const DENIED_SCOPE_REASONS = ['deny_scope', 'capped', 'above_ceiling', 'task_type', 'record_binding', 'approval_required'] as const;
export type DeniedScopeReason = (typeof DENIED_SCOPE_REASONS)[number];

/**
 * The reason codes agent-pdp itself produces (`reasons[].code`): the Rego core's, the PDP's task checks, and
 * `undefined`, and for an `error` outcome the error's code (`evaluation_failed`, `bundle_missing`, `internal`). Extension rules in
 * `package agentpdp.ext` add codes of their own, so a reason code on the wire is any string.
 */
export const CORE_REASON_CODES = [
  'allowed',
  'scopes_capped',
  'scopes_dropped',
  'unknown_agent',
  'integration_not_allowed',
  'deny_scope',
  'task_type_not_allowed',
  'record_binding_mismatch',
  'no_scope_granted',
  'approval_required',
  'elevated',
  'extension_deny',
  'task_not_registered',
  'task_agent_mismatch',
  'task_completed',
  'task_expired',
  'task_context_mismatch',
  'undefined',
  'evaluation_failed',
  'bundle_missing',
  'internal',
] as const;
export type CoreReasonCode = (typeof CORE_REASON_CODES)[number];

export interface ResourceRef {
  type: string;
  id: string;
}

export interface DeniedScope {
  scope: string;
  reason: DeniedScopeReason;
  granted_instead?: string[];
}

export interface Reason {
  code: string;
  message: string;
}
