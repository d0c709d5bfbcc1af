/**
 * Wire format v1 of `POST /v1/grantable-scopes`: which scopes an agent could at most be granted on each of its
 * integrations for one task. An upper bound for a PEP's convenience filter (an MCP server's `tools/list` hides the
 * tools an agent can never use), never a decision: nothing is evaluated, recorded or issued
 * (docs/pep-integration.md, "Grantable scopes"). Shared by the server, the OpenAPI document and the PEP SDK.
 */
import { decisionRequestSchema, type DecisionRequestV1 } from './decision-v1.js';

export interface GrantableScopesRequestV1 {
  agent_id: string;
  /** Exactly as in a decision request: a registered task's id, or (a caller that may assert) its type and context. */
  task: DecisionRequestV1['task'];
  /** Answer only for these integrations (names the agent does not have are simply absent). Default: all of them. */
  integrations?: string[];
}

/** One integration of the agent, for this task. Every list sorted. */
export interface GrantableIntegrationV1 {
  /**
   * The scopes a decision for this task could grant as asked (the effective set E of docs/policy-semantics.md,
   * D3). A bound one only on its record (`bound`); an extension rule can still deny any of them.
   */
  grantable: string[];
  /** Scopes an approver could add (break-glass escalation) that are not grantable already. */
  requestable: string[];
  /** Grantable scope → the resource type it is bound to (the record comes from the task's context). */
  bound: Record<string, string>;
}

export interface GrantableScopesResponseV1 {
  agent_id: string;
  task_id: string;
  /** The task's type as the policy would see it (a registered task's own); null when none, or on a task denial. */
  task_type: string | null;
  /** The revision a decision made now would carry (`policy_revision` of `DecisionResponseV1`). */
  policy_revision: string;
  /**
   * The reason code a decision for this task would be denied with before the policy is consulted
   * (`task_not_registered`, `task_agent_mismatch`, `task_completed`, `task_expired`, `task_context_mismatch`);
   * `integrations` is then `{}`. Null when the task passes.
   */
  task_denial: string | null;
  /** By integration name; `{}` for an unknown agent. */
  integrations: Record<string, GrantableIntegrationV1>;
}

const { agent_id: agentIdSchema, task: taskSchema, integration: integrationSchema } = decisionRequestSchema.properties;

export const grantableScopesRequestSchema = {
  $id: 'GrantableScopesRequestV1',
  type: 'object',
  additionalProperties: false,
  required: ['agent_id', 'task'],
  properties: {
    agent_id: agentIdSchema,
    task: taskSchema,
    integrations: { type: 'array', minItems: 1, maxItems: 64, items: integrationSchema },
  },
} as const;
