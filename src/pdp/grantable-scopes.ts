/**
 * `POST /v1/grantable-scopes`: which scopes an agent could at most be granted on each integration for one task,
 * read straight from the compiled policy (docs/policy-semantics.md: C4, C5, C7, C8, D1–D3). It is the upper bound
 * a PEP filters with (an MCP server hides the tools an agent can never use), not a decision: no Rego is evaluated,
 * nothing is recorded, no token can come of it. Extension rules (`package agentpdp.ext`) can only deny, so what
 * they would refuse is still inside the bound; a decision remains the only answer that allows.
 */
import type { CallerConfig } from '../config/config-types.js';
import { PdpError } from '../errors/pdp-error.js';
import type { CompiledAgent, CompiledAgentIntegration, ScopeSet } from '../policy/policy-types.js';
import type { GrantableIntegrationV1, GrantableScopesRequestV1, GrantableScopesResponseV1 } from '../wire/grantable-scopes-v1.js';
import { maySpeakFor } from './caller-agents.js';
import type { PolicyEngine } from './policy-engine.js';
import { resolveTask, type TaskLookup } from './trusted-task.js';

const members = (set: ScopeSet | undefined): string[] => (set === undefined ? [] : Object.keys(set).filter((s) => set[s] === true));
const byCode = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The bound for `agent` on a task of type `taskType` (undefined: the task has none), by integration, limited to
 * `only` when given. Pure. An unknown agent has no integrations (D1); a task-restricted agent (C8) on a type that
 * is not one of its own gets nothing anywhere, not even requestable scopes (D2: such a request is rejected before
 * any scope is looked at, and it is not requestable either).
 */
export function grantableScopes(
  agent: CompiledAgent | undefined,
  taskType: string | undefined,
  only?: readonly string[],
): Record<string, GrantableIntegrationV1> {
  if (agent === undefined) return {};
  const restricted = agent.per_task_downscope === true && Object.keys(agent.task_types).length > 0;
  const ofType = restricted && taskType !== undefined && Object.hasOwn(agent.task_types, taskType) ? agent.task_types[taskType] : undefined;
  const rejected = restricted && ofType === undefined;
  const wanted = only === undefined ? undefined : new Set(only);
  const names = Object.keys(agent.integrations).filter((name) => wanted === undefined || wanted.has(name)).sort(byCode);
  const out: Record<string, GrantableIntegrationV1> = {};
  for (const name of names) {
    const integration = agent.integrations[name];
    if (integration === undefined) continue;
    const taskScopes = restricted ? new Set(members(ofType !== undefined && Object.hasOwn(ofType, name) ? ofType[name] : undefined)) : undefined;
    const { grantable, requestable } = rejected ? { grantable: [], requestable: [] } : integrationBound(integration, taskScopes);
    const bindings = integration.bindings ?? {};
    const bound = Object.fromEntries(grantable.filter((s) => Object.hasOwn(bindings, s)).map((s) => [s, bindings[s]?.resource_type as string]));
    out[name] = { grantable, requestable, bound };
  }
  return out;
}

/**
 * One compiled integration's bound, sorted: E (D3) and the scopes that may be requested above it. Without
 * `taskScopes` (no task type applies), E is the agent's effective ceiling on it, roles applied: allowed − denied.
 * Pure; shared by the grantable-scopes answer and the agents view (`agent-views.ts`).
 */
export function integrationBound(
  integration: CompiledAgentIntegration,
  taskScopes?: ReadonlySet<string>,
): { grantable: string[]; requestable: string[] } {
  const denied = new Set(members(integration.denied));
  // D3: E = (allowed ∩ taskScopes) − denied for a restricted agent, else allowed − denied.
  const grantable = members(integration.allowed).filter((s) => !denied.has(s) && (taskScopes === undefined || taskScopes.has(s))).sort(byCode);
  const inE = new Set(grantable);
  // Requestable as the Rego has it: listed, and not denied unless its author lifted the deny (override_deny).
  const escalation = integration.escalation ?? {};
  const requestable = Object.keys(escalation).filter((s) => !inE.has(s) && (!denied.has(s) || escalation[s]?.override_deny === true)).sort(byCode);
  return { grantable, requestable };
}

export interface GrantableScopesOptions {
  engine: Pick<PolicyEngine, 'active'>;
  store: TaskLookup;
  now?: () => Date;
}

/**
 * The caller and task checks of a decision, then the bound on the policy in force. A caller that may not speak
 * for the agent, or may not assert the context it sent, is refused as `decide` refuses it (403); a task a decision
 * would deny before consulting the policy answers `task_denial` with no integrations. Reads only: no decision
 * record, no audit event.
 */
export class GrantableScopes {
  readonly #o: GrantableScopesOptions;

  constructor(options: GrantableScopesOptions) {
    this.#o = options;
  }

  async answer(caller: CallerConfig, request: GrantableScopesRequestV1): Promise<GrantableScopesResponseV1> {
    if (!maySpeakFor(caller, request.agent_id)) {
      throw new PdpError('forbidden_agent', `caller ${caller.id} may not ask about agent ${request.agent_id}`, {
        details: [{ path: 'agent_id', message: 'not an agent this caller may speak for' }],
      });
    }
    const now = (this.#o.now ?? (() => new Date()))();
    const task = await resolveTask(this.#o.store, caller, request, now);
    const active = this.#o.engine.active;
    if (!active) throw new PdpError('bundle_missing', 'no policy is loaded');
    const base = { agent_id: request.agent_id, task_id: request.task.id, policy_revision: active.revision };
    // A denied task says nothing of itself: another agent's task type is not this caller's to learn.
    if (task.denial !== undefined) return { ...base, task_type: null, task_denial: task.denial.code, integrations: {} };
    const agents = active.policySet.data.policies.agents;
    const agent = Object.hasOwn(agents, request.agent_id) ? agents[request.agent_id] : undefined;
    return {
      ...base,
      task_type: task.input.type ?? null,
      task_denial: null,
      integrations: grantableScopes(agent, task.input.type, request.integrations),
    };
  }
}
