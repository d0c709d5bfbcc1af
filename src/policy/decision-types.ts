/**
 * The evaluation contract between the PDP and the Rego core (docs/architecture.md): the input the PDP builds,
 * and the result `data.agentpdp.decision` yields. Versioned: a breaking change is a V2, not an edit.
 */
import type { DeniedScope, ResourceRef, Reason } from '../wire/evaluation-v1.js';

export type { DeniedScope, DeniedScopeReason, Outcome, Reason, ResourceRef } from '../wire/evaluation-v1.js';

export interface EvaluationInputV1 {
  agent_id: string;
  caller_id: string;
  task: { id: string; type?: string; context: Record<string, unknown>; registered: boolean };
  integration: string;
  scopes: string[];
  resource?: ResourceRef;
  ttl_seconds?: number;
}

/** What the Rego core returns for a defined decision. */
export interface EvaluationResultV1 {
  outcome: 'allow' | 'deny';
  granted_scopes: string[];
  denied_scopes: DeniedScope[];
  reasons: Reason[];
  token_ttl_seconds: number;
}

/** What the evaluator hands to the PDP: a defined result, or "undefined" (never an allow). */
export type Evaluation =
  | (EvaluationResultV1 & { defined: true })
  | { defined: false; outcome: 'undefined'; granted_scopes: []; denied_scopes: []; reasons: Reason[]; token_ttl_seconds: 0 };
