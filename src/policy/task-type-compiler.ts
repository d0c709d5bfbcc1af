import type { Diagnostics } from './compile-diagnostics.js';
import { emptyRecord, ownValue } from './null-prototype.js';
import type { CompiledAgent, CompiledAgentIntegration, PolicyDocument, ScopeSet } from './policy-types.js';
import { sortedRecord, sortedUnion, toScopeSet } from './scope-set.js';

type AgentDoc = PolicyDocument<'agent_policy'>;
type RoleDoc = PolicyDocument<'role_policy'>;

/**
 * Task types of one agent: every type the agent or a named role declares. A type some named role declares is a
 * ceiling the agent can only narrow, integrations included: per integration, the declaring roles' lists united
 * (nothing for an integration none of them lists), narrowed by the agent's list when the agent lists that
 * integration for the type. A type no named role declares is the agent's own lists. Then always within the agent's
 * allowed set. A scope the agent lists that does not survive is dropped with a warning.
 * (docs/policy-semantics.md, "Task types".)
 */
export function compileTaskTypes(
  agent: AgentDoc,
  roles: readonly RoleDoc[],
  integrations: Readonly<Record<string, CompiledAgentIntegration>>,
  diag: Diagnostics,
): CompiledAgent['task_types'] {
  const own = agent.body.task_types ?? {};
  const types = sortedUnion(Object.keys(own), ...roles.map((r) => Object.keys(r.body.task_types ?? {})));
  return sortedRecord(
    types.map((type) => {
      const ownType = ownValue(own, type) ?? {};
      const roleTypes = roles.map((r) => ownValue(r.body.task_types, type)).filter((t) => t !== undefined);
      const names = sortedUnion(Object.keys(ownType), ...roleTypes.map((t) => Object.keys(t)));
      const perIntegration = emptyRecord<ScopeSet>();
      for (const name of names) {
        const allowed = ownValue(integrations, name)?.allowed;
        if (allowed === undefined) continue; // reported by checkTaskTypeIntegrations
        // Undefined when no named role declares the type; empty when some do but none lists this integration.
        const roleUnion = roleTypes.length > 0 ? new Set(roleTypes.flatMap((t) => ownValue(t, name) ?? [])) : undefined;
        const roleListsIt = roleTypes.some((t) => ownValue(t, name) !== undefined);
        const ownList = ownValue(ownType, name);
        let scopes: string[];
        if (ownList === undefined) scopes = [...(roleUnion ?? [])];
        else {
          scopes = [];
          for (const [i, scope] of ownList.entries()) {
            const at = ['agent_policy', 'task_types', type, name, i];
            if (roleUnion !== undefined && !roleUnion.has(scope)) {
              const why = roleListsIt
                ? `the named roles' task type ${type} does not list it for ${name}`
                : `the named roles' task type ${type} does not list integration ${name}`;
              diag.warning(agent, at, `"${scope}" is dropped: ${why}`);
            } else if (ownValue(allowed, scope) !== true) {
              diag.warning(agent, at, `"${scope}" is dropped: it is not in the agent's allowed scopes for ${name}`);
            } else scopes.push(scope);
          }
        }
        perIntegration[name] = toScopeSet(scopes.filter((s) => ownValue(allowed, s) === true));
      }
      return [type, perIntegration] as const;
    }),
  );
}
