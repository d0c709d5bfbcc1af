import { type Diagnostics, where } from './compile-diagnostics.js';
import { checkTaskTypeIntegrations } from './document-checks.js';
import { checkOwnEscalations, compileEscalation, roleDenier } from './escalation-compiler.js';
import { ownValue } from './null-prototype.js';
import {
  DEFAULT_TOKEN_TTL,
  type BindingSource,
  type CompiledAgent,
  type CompiledAgentIntegration,
  type CompiledBinding,
  type EscalationSource,
  type IntegrationGrantSource,
  type PathSegment,
  type PolicyDocument,
} from './policy-types.js';
import { sortedRecord, sortedUnion, toScopeSet } from './scope-set.js';
import { compileTaskTypes } from './task-type-compiler.js';

type AgentDoc = PolicyDocument<'agent_policy'>;
type RoleDoc = PolicyDocument<'role_policy'>;
interface RoleGrant {
  role: RoleDoc;
  grant: IntegrationGrantSource & { max_scope: string[] };
}

/**
 * One agent with its named roles resolved: roles set the ceiling, the agent can only narrow it. Problems are
 * reported to `diag`; the result is still built (from what is valid) so that every error is found in one pass.
 * `integrationEscalations`: the integration files' `escalation` blocks, by integration id.
 */
export function compileAgent(
  agent: AgentDoc,
  roleIndex: ReadonlyMap<string, RoleDoc>,
  diag: Diagnostics,
  integrationEscalations: ReadonlyMap<string, EscalationSource> = new Map(),
): CompiledAgent {
  const body = agent.body;
  const named = body.roles ?? [];
  const roles: RoleDoc[] = [];
  for (const [i, id] of named.entries()) {
    const role = roleIndex.get(id);
    if (role !== undefined) roles.push(role);
    else diag.error(agent, ['agent_policy', 'roles', i], `unknown role "${id}": no valid role_policy has this id`);
  }
  checkOwnEscalations(agent, diag, roleDenier(roles));
  const names = sortedUnion(Object.keys(body.integrations ?? {}), ...roles.map((r) => Object.keys(r.body.integrations)));
  const integrations = sortedRecord(
    names.map(
      (name) => [name, compileIntegration(agent, roles, named.length > 0, name, integrationEscalations.get(name), diag)] as const,
    ),
  );
  checkTaskTypeIntegrations(agent, body.task_types, new Set(names), diag);
  if (Object.keys(body.task_types ?? {}).length > 0 && body.per_task_downscope !== true) {
    diag.warning(agent, ['agent_policy', 'task_types'], 'task_types apply only when per_task_downscope is true', true);
  }
  return {
    token_ttl: Math.min(body.token_ttl ?? DEFAULT_TOKEN_TTL, ...roles.map((r) => r.body.token_ttl ?? Infinity)),
    per_task_downscope: body.per_task_downscope ?? false,
    integrations,
    task_types: compileTaskTypes(agent, roles, integrations, diag),
  };
}

function compileIntegration(
  agent: AgentDoc,
  roles: readonly RoleDoc[],
  hasRoles: boolean,
  name: string,
  fromIntegration: EscalationSource | undefined,
  diag: Diagnostics,
): CompiledAgentIntegration {
  const own = ownValue(agent.body.integrations, name);
  const grants: RoleGrant[] = roles.flatMap((role) => {
    const grant = ownValue(role.body.integrations, name);
    return grant === undefined ? [] : [{ role, grant }];
  });
  const roleCeiling = new Set(grants.flatMap((g) => g.grant.max_scope));
  const ownMax = own?.max_scope;
  // What this document calls max_scope (the agent's own list, else the inherited one): what a binding may name.
  const declared = ownMax === undefined ? roleCeiling : new Set(ownMax);
  const ceiling = hasRoles ? new Set([...declared].filter((s) => roleCeiling.has(s))) : declared;

  const denied = new Map<string, string>(); // scope → who denies it, for warnings
  for (const g of grants) {
    for (const s of g.grant.deny_scope ?? []) if (!denied.has(s)) denied.set(s, `role ${g.role.body.id}`);
  }
  for (const s of own?.deny_scope ?? []) denied.set(s, 'its own deny_scope');

  const roleNames = grants.map((g) => `role ${g.role.body.id}`).join(', ');
  for (const [i, scope] of (ownMax ?? []).entries()) {
    const at = ['agent_policy', 'integrations', name, 'max_scope', i];
    if (hasRoles && !roleCeiling.has(scope)) {
      const why = grants.length === 0 ? `no named role grants integration ${name}` : `above the ceiling of ${roleNames}`;
      diag.warning(agent, at, `"${scope}" is dropped: ${why}`);
    } else if (denied.has(scope)) {
      diag.warning(agent, at, `"${scope}" is dropped: denied by ${denied.get(scope)}`);
    }
  }
  // A requestable scope may be bound too (the binding holds when it is elevated), whether or not it is in max_scope.
  const bindable = new Set([...declared, ...(own?.escalation?.scopes ?? [])]);
  return {
    allowed: toScopeSet([...ceiling].filter((s) => !denied.has(s))),
    denied: toScopeSet(denied.keys()),
    bindings: compileBindings(agent, grants, bindable, name, diag),
    escalation: compileEscalation(agent, grants, name, new Set(denied.keys()), fromIntegration, diag),
  };
}

/** Role bindings ∪ agent bindings; one scope bound two different ways is an error. */
function compileBindings(
  agent: AgentDoc,
  grants: readonly RoleGrant[],
  declared: ReadonlySet<string>,
  name: string,
  diag: Diagnostics,
): Record<string, CompiledBinding> {
  const chosen = new Map<string, { binding: BindingSource; from: string }>();
  const named = agent.body.roles ?? [];
  for (const { role, grant } of grants) {
    for (const [scope, binding] of Object.entries(grant.bind ?? {})) {
      const prev = chosen.get(scope);
      const from = `role ${role.body.id} (${where(role, ['role_policy', 'integrations', name, 'bind', scope])})`;
      if (prev === undefined) chosen.set(scope, { binding, from });
      else if (!sameBinding(prev.binding, binding)) {
        const at = ['agent_policy', 'roles', named.indexOf(role.body.id)];
        diag.error(agent, at, `${from} binds "${scope}" of ${name} differently from ${prev.from}`);
      }
    }
  }
  const path: PathSegment[] = ['agent_policy', 'integrations', name, 'bind'];
  for (const [scope, binding] of Object.entries(ownValue(agent.body.integrations, name)?.bind ?? {})) {
    const prev = chosen.get(scope);
    if (!declared.has(scope)) {
      diag.error(agent, [...path, scope], `bound scope "${scope}" is not in max_scope (nor escalation.scopes) for ${name}`, true);
    } else if (prev !== undefined && !sameBinding(prev.binding, binding)) {
      diag.error(agent, [...path, scope], `"${scope}" is already bound differently by ${prev.from}`, true);
    } else chosen.set(scope, { binding, from: 'the agent' });
  }
  const compiled = [...chosen].map(
    ([scope, { binding }]) => [scope, { resource_type: binding.resource, context_key: binding.context }] as const,
  );
  return sortedRecord(compiled);
}

function sameBinding(a: BindingSource, b: BindingSource): boolean {
  return a.resource === b.resource && a.context === b.context;
}
