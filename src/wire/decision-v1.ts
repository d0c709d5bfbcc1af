/**
 * Wire format v1 of `POST /v1/decide`. Shared by the server, the OpenAPI document and the PEP SDK; imports
 * nothing. The JSON Schemas here are the single source of truth for request validation and for the docs.
 */
import type { AccessRequestHintV1, ApprovalRefV1 } from './access-request-v1.js';
import type { DeniedScope, Outcome, Reason, ResourceRef } from './evaluation-v1.js';

export type ContextValue = string | number | boolean;

export interface DecisionRequestV1 {
  agent_id: string;
  task: { id: string; type?: string; context?: Record<string, ContextValue> };
  integration: string;
  scopes: string[];
  resource?: ResourceRef;
  ttl_seconds?: number;
}

export interface DecisionResponseV1 {
  decision_id: string;
  allow: boolean;
  outcome: Outcome;
  agent_id: string;
  integration: string;
  granted_scopes: string[];
  denied_scopes: DeniedScope[];
  reasons: Reason[];
  token_ttl_seconds: number;
  resource: ResourceRef | null;
  task_id: string;
  policy_revision: string;
  /** Until when `POST /v1/tokens` accepts this decision; null unless allowed. */
  redeemable_until: string | null;
  /**
   * Only on a deny that an approver could lift (reason `approval_required`): how to ask for it. The decision id is
   * the binding (the AuthZEN access-request profile's `evaluation_id`).
   */
  access_request?: AccessRequestHintV1;
  /** Only on an allow that holds scopes granted by an approved access request: which one, and until when. */
  approval?: ApprovalRefV1;
}

export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$';
/**
 * The one scope grammar: letters, digits and `_ . : / * + @ = -`, 1 to 128 characters, any of them first. Decision
 * requests and policy files are both validated with it (`src/policy/policy-schema.ts`; the copy in
 * `schemas/agent-policy.schema.json` is for editors and a test keeps it equal), so any scope a policy can name can
 * be requested, and a request cannot name a scope no policy could.
 */
export const SCOPE_PATTERN = '^[A-Za-z0-9_.:/*+@=-]{1,128}$';

/**
 * A task context key: what a task may carry, and so the one grammar a policy's record binding (`context:`) and a
 * provider map's `{task.<key>}` may name (a key no task can carry would never match).
 */
export const TASK_CONTEXT_KEY_PATTERN = '^[A-Za-z_][A-Za-z0-9_.-]{0,63}$';

const idSchema = { type: 'string', pattern: ID_PATTERN } as const;
const contextSchema = {
  type: 'object',
  maxProperties: 32,
  propertyNames: { pattern: TASK_CONTEXT_KEY_PATTERN },
  additionalProperties: {
    anyOf: [{ type: 'string', maxLength: 256 }, { type: 'number' }, { type: 'boolean' }],
  },
} as const;

export const resourceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'id'],
  properties: { type: idSchema, id: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

export const decisionRequestSchema = {
  $id: 'DecisionRequestV1',
  type: 'object',
  additionalProperties: false,
  required: ['agent_id', 'task', 'integration', 'scopes'],
  properties: {
    agent_id: idSchema,
    task: {
      type: 'object',
      additionalProperties: false,
      required: ['id'],
      properties: { id: idSchema, type: idSchema, context: contextSchema },
    },
    integration: idSchema,
    scopes: {
      type: 'array',
      minItems: 1,
      maxItems: 32,
      items: { type: 'string', pattern: SCOPE_PATTERN },
    },
    resource: resourceSchema,
    ttl_seconds: { type: 'integer', minimum: 1, maximum: 86400 },
  },
} as const;

export const taskRegistrationSchema = {
  $id: 'TaskRegistrationV1',
  type: 'object',
  additionalProperties: false,
  required: ['id', 'agent_id', 'type'],
  properties: {
    id: idSchema,
    agent_id: idSchema,
    type: idSchema,
    context: contextSchema,
    expires_in_seconds: { type: 'integer', minimum: 1, maximum: 604800 },
  },
} as const;

export interface TaskRegistrationV1 {
  id: string;
  agent_id: string;
  type: string;
  context?: Record<string, ContextValue>;
  expires_in_seconds?: number;
}

export interface TaskV1 {
  id: string;
  agent_id: string;
  type: string;
  context: Record<string, ContextValue>;
  status: 'active' | 'completed' | 'expired';
  registered_by: string;
  registered_at: string;
  expires_at: string;
  completed_at: string | null;
  /** On completion: how many tokens were revoked with the task. */
  revoked_tokens?: number;
}
