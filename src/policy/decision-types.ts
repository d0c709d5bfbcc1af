/**
 * The evaluation contract between the PDP and the Rego core (docs/architecture.md): the input the PDP builds,
 * and the result `data.agentpdp.decision` yields. Versioned: a breaking change is a V2, not an edit.
 */
import type { ElevationInputV1 } from '../wire/access-request-v1.js';
import type { DeniedScope, ResourceRef, Reason } from '../wire/evaluation-v1.js';
import type { EvaluationTimeV1 } from '../wire/evaluation-time.js';

export type { EvaluationTimeV1 } from '../wire/evaluation-time.js';

export type { ElevationInputV1 } from '../wire/access-request-v1.js';

export type { DeniedScope, DeniedScopeReason, Outcome, Reason, ResourceRef } from '../wire/evaluation-v1.js';

export interface EvaluationInputV1 {
  agent_id: string;
  caller_id: string;
  task: { id: string; type?: string; context: Record<string, unknown>; registered: boolean };
  integration: string;
  scopes: string[];
  resource?: ResourceRef;
  ttl_seconds?: number;
  /**
   * When the decision is made. The Decider sets it on every input (`src/pdp/evaluation-input.ts`); optional here
   * because an input recorded before it existed, or built for a what-if without a clock, may lack it.
   */
  time?: EvaluationTimeV1;
  /**
   * The active elevation (an approved access request) for exactly this agent, task, integration and record, found
   * by key in the store; absent when there is none. The policy grants its scopes only while it still lists them
   * as requestable (docs/architecture.md, "Evaluation input (v1)").
   */
  elevation?: ElevationInputV1;
}

/** What the Rego core returns for a defined decision. */
export interface EvaluationResultV1 {
  outcome: 'allow' | 'deny';
  granted_scopes: string[];
  denied_scopes: DeniedScope[];
  reasons: Reason[];
  token_ttl_seconds: number;
  /** Granted scopes that only the input's elevation made grantable; sorted; `[]` unless an allow used it. */
  elevated_scopes: string[];
  /**
   * Only on a requestable deny (reason `approval_required`): what an access request may ask for, and the policy's
   * terms for it. Every scope in it is denied with reason `approval_required`.
   */
  access_request?: AccessRequestOfferV1;
}

/** The policy's side of a requestable denial; the PDP adds the endpoint, window and template (`AccessRequestHintV1`). */
export interface AccessRequestOfferV1 {
  /** The requested scopes an approval would add, sorted. */
  scopes: string[];
  /** Approver groups, the union over `scopes`, sorted, non-empty. */
  approvers: string[];
  /** Seconds: the smallest `max_duration` over `scopes`. */
  max_duration: number;
  /** A reason is required when any of `scopes` requires one. */
  require_reason: boolean;
}

/** What the evaluator hands to the PDP: a defined result, or "undefined" (never an allow). */
export type Evaluation =
  | (EvaluationResultV1 & { defined: true })
  | {
      defined: false;
      outcome: 'undefined';
      granted_scopes: [];
      denied_scopes: [];
      reasons: Reason[];
      token_ttl_seconds: 0;
      elevated_scopes: [];
      access_request?: undefined;
    };
