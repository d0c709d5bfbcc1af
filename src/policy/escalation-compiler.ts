import { type Diagnostics, where } from './compile-diagnostics.js';
import { ownValue } from './null-prototype.js';
import {
  DEFAULT_ESCALATION_MAX_DURATION,
  type CompiledEscalation,
  type EscalationSource,
  type GrantEscalationSource,
  type IntegrationGrantSource,
  type PathSegment,
  type PolicyDocument,
} from './policy-types.js';
import { sortedRecord, sortedUnion } from './scope-set.js';

/*
 * Break-glass (`escalation:`): which scopes of an integration an agent may request above its policy, and who
 * approves. Three sources, each optional: the agent's integration block, its named roles' blocks, the integration
 * file. Per scope the most specific source wins (agent > roles > integration file); several roles listing one
 * scope merge (approvers united, the shortest max_duration, a reason required when any requires one).
 *
 * A denied scope is requestable only when every document that denies it lifts that itself (`override_deny`, with a
 * warning each): a document listing its own denied scope without `override_deny` keeps it denied (a warning: the
 * entry is ignored), an agent can never lift a role's deny (error), a role never another role's (the role's entry
 * is dropped for that agent, with a warning), and an integration file, having no deny list, never reaches one.
 */

type GrantDocument = PolicyDocument<'agent_policy'> | PolicyDocument<'role_policy'>;
type RoleDoc = PolicyDocument<'role_policy'>;
type AgentDoc = PolicyDocument<'agent_policy'>;

/**
 * The rules one agent or role document must keep in its own escalation blocks: `override_deny` names scopes of
 * `scopes` that are on the document's own `deny_scope` (error otherwise); each override is a warning, and so is a
 * scope on its `deny_scope` listed without `override_deny` (it stays denied: compileEscalation leaves it out).
 * `deniedElsewhere(integration, scope)` names who else denies a scope (an agent's roles), reported by the caller:
 * such scopes are skipped here.
 */
export function checkOwnEscalations(
  doc: GrantDocument,
  diag: Diagnostics,
  deniedElsewhere: (integration: string, scope: string) => string | undefined = () => undefined,
): void {
  for (const [name, grant] of Object.entries(doc.body.integrations ?? {})) {
    const escalation = grant.escalation;
    if (escalation === undefined) continue;
    const at: PathSegment[] = [doc.kind, 'integrations', name, 'escalation'];
    const ownDeny = new Set(grant.deny_scope ?? []);
    const overrides = new Set(escalation.override_deny ?? []);
    const listed = new Set(escalation.scopes);
    for (const [i, scope] of escalation.scopes.entries()) {
      if (deniedElsewhere(name, scope) !== undefined) continue;
      if (ownDeny.has(scope) && !overrides.has(scope)) {
        const message =
          `"${scope}" is in deny_scope for ${name}, so it stays denied and is never requestable: to let an ` +
          'approver lift the deny, list it in override_deny too; otherwise remove it from scopes';
        diag.warning(doc, [...at, 'scopes', i], message);
      }
    }
    for (const [i, scope] of (escalation.override_deny ?? []).entries()) {
      const path = [...at, 'override_deny', i];
      if (!listed.has(scope)) diag.error(doc, path, `"${scope}" is not in this escalation's scopes`);
      else if (deniedElsewhere(name, scope) !== undefined) continue;
      else if (!ownDeny.has(scope)) {
        diag.error(doc, path, `"${scope}" is not in this document's deny_scope for ${name}: override_deny lifts only that`);
      } else {
        diag.warning(doc, path, `"${scope}" is in deny_scope for ${name} but may be requested with an approver's approval (override_deny)`);
      }
    }
  }
}

interface RoleGrant {
  role: RoleDoc;
  grant: IntegrationGrantSource;
}

/**
 * The compiled `escalation` of one agent and integration. `denied` is the compiled deny set (agent's ∪ roles');
 * `fromIntegration` the integration file's block. Errors about the agent lifting a role's deny are reported here.
 */
export function compileEscalation(
  agent: AgentDoc,
  grants: readonly RoleGrant[],
  name: string,
  denied: ReadonlySet<string>,
  fromIntegration: EscalationSource | undefined,
  diag: Diagnostics,
): Record<string, CompiledEscalation> {
  const chosen = new Map<string, CompiledEscalation>();

  // Integration file: every agent covering the integration, never a denied scope.
  if (fromIntegration !== undefined) {
    for (const scope of fromIntegration.scopes) {
      if (!denied.has(scope)) chosen.set(scope, entry(fromIntegration, false));
    }
  }

  // Named roles: merged per scope; a scope some role denies only when every denying role lifts it itself.
  const perScope = new Map<string, { role: RoleDoc; escalation: GrantEscalationSource }[]>();
  for (const { role, grant } of grants) {
    const escalation = grant.escalation;
    if (escalation === undefined) continue;
    for (const scope of escalation.scopes) {
      const list = perScope.get(scope) ?? [];
      list.push({ role, escalation });
      perScope.set(scope, list);
    }
  }
  const agentDeny = new Set(ownValue(agent.body.integrations, name)?.deny_scope ?? []);
  const named = agent.body.roles ?? [];
  for (const [scope, sources] of perScope) {
    if (agentDeny.has(scope)) continue; // the agent narrows: its own deny wins, as it does over a role's ceiling
    const deniers = grants.filter((g) => (g.grant.deny_scope ?? []).includes(scope)).map((g) => g.role);
    const lifting = new Set(sources.filter((s) => (s.escalation.override_deny ?? []).includes(scope)).map((s) => s.role));
    const unlifted = deniers.find((r) => !lifting.has(r));
    if (unlifted !== undefined) {
      for (const { role } of sources) {
        if (role === unlifted) continue; // its own warning (deny without override_deny) is reported by checkRole
        const message = `role ${role.body.id}'s escalation of "${scope}" for ${name} is dropped: role ${unlifted.body.id} denies it`;
        diag.warning(agent, ['agent_policy', 'roles', named.indexOf(role.body.id)], message);
      }
      continue;
    }
    chosen.set(scope, {
      approvers: sortedUnion(...sources.map((s) => s.escalation.approvers)),
      max_duration: Math.min(...sources.map((s) => s.escalation.max_duration ?? DEFAULT_ESCALATION_MAX_DURATION)),
      require_reason: sources.some((s) => s.escalation.require_reason === true),
      override_deny: deniers.length > 0,
    });
  }

  // The agent's own block: wins per scope. It cannot lift a role's deny.
  const own = ownValue(agent.body.integrations, name)?.escalation;
  if (own !== undefined) {
    const overrides = new Set(own.override_deny ?? []);
    for (const [i, scope] of own.scopes.entries()) {
      const denier = grants.find((g) => (g.grant.deny_scope ?? []).includes(scope));
      if (denier !== undefined) {
        const from = where(denier.role, ['role_policy', 'integrations', name, 'deny_scope']);
        const message = `"${scope}" is in the deny_scope of role ${denier.role.body.id} (${from}): an agent cannot lift a role's deny`;
        diag.error(agent, ['agent_policy', 'integrations', name, 'escalation', 'scopes', i], message);
        chosen.delete(scope);
        continue;
      }
      if (agentDeny.has(scope) && !overrides.has(scope)) {
        chosen.delete(scope); // stays denied: a warning of checkOwnEscalations
        continue;
      }
      chosen.set(scope, entry(own, agentDeny.has(scope)));
    }
  }
  return sortedRecord(chosen);
}

/** For `checkOwnEscalations` on an agent: the named role that denies `scope` of `integration`, if any. */
export function roleDenier(roles: readonly RoleDoc[]): (integration: string, scope: string) => string | undefined {
  return (integration, scope) =>
    roles.find((r) => (ownValue(r.body.integrations, integration)?.deny_scope ?? []).includes(scope))?.body.id;
}

function entry(source: EscalationSource, overrideDeny: boolean): CompiledEscalation {
  return {
    approvers: sortedUnion(source.approvers),
    max_duration: source.max_duration ?? DEFAULT_ESCALATION_MAX_DURATION,
    require_reason: source.require_reason === true,
    override_deny: overrideDeny,
  };
}
