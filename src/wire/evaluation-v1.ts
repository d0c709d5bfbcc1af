/** Leaf types shared by the wire format and the policy evaluator. */
export type Outcome = 'allow' | 'deny' | 'undefined';

export type DeniedScopeReason = 'deny_scope' | 'capped' | 'above_ceiling' | 'task_type' | 'record_binding';

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
