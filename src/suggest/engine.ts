/*
 * The suggestion engine: a window's usage summary and the policy set in force → suggestions that narrow agents'
 * policies, and what the reports say about every scope (docs/suggestions.md). Pure: no clock, no files, no store.
 *
 * It never widens anything: each rule only removes a scope from a list, lowers a number or turns task types on
 * with lists no larger than what the agent may have today (a property test applies every suggestion to its file
 * and checks the compiled policy narrows). Scopes in a deny list, scopes never granted, integrations without any
 * use evidence and windows below the thresholds yield no suggestion; a scope granted by a role, which other agents
 * share, yields a note, never a suggestion.
 */
import { ownValue } from '../policy/null-prototype.js';
import type { CompiledAgentIntegration, PolicySet } from '../policy/policy-types.js';
import type { UsageSummary } from '../store/index.js';
import type { PolicyFiles } from './policy-folder.js';
import { covered, moveToTaskType, onlyHeldThrough, removeScope } from './scope-rules.js';
import { count, enough, type AgentContext } from './suggestion-builder.js';
import type { AgentAnalysis, IntegrationAnalysis, ScopeAnalysis, ScopeVerdict, SuggestionRun, SuggestionThresholds } from './suggestion-types.js';
import { shortenTtl } from './ttl-rule.js';
import { daysBetween, emptyEvidence, indexUsage, usedTotal, type IntegrationUsage } from './usage-evidence.js';

export interface EngineInput {
  summary: UsageSummary;
  /** The policy set in force, and the agents' and roles' source documents it was built from. */
  policy: PolicySet;
  files: PolicyFiles;
  thresholds: SuggestionThresholds;
  /** When the run is made (ISO 8601). */
  now: string;
  /** Only this agent. */
  agent?: string;
}

export function suggestPolicies(input: EngineInput): SuggestionRun {
  const { summary, policy, files, thresholds } = input;
  const index = indexUsage(summary);
  const agents: AgentAnalysis[] = [];
  const suggestions: SuggestionRun['suggestions'] = [];
  for (const agent of [...index.keys()].sort()) {
    if (input.agent !== undefined && agent !== input.agent) continue;
    const usage = index.get(agent) as Map<string, IntegrationUsage>;
    const compiled = ownValue(policy.data.policies.agents, agent);
    const file = files.agents.get(agent);
    if (compiled === undefined || file === undefined) {
      agents.push(unknownAgent(agent, usage));
      continue;
    }
    const ctx: AgentContext = {
      agent,
      compiled,
      file,
      roles: (file.body.roles ?? []).flatMap((id) => files.roles.get(id) ?? []),
      usage,
      implies: (integration) => ownValue(policy.data.policies.integrations, integration)?.implies ?? {},
      observedTypes: observedTypes(usage),
      thresholds,
      since: summary.since,
      until: summary.until,
      suggestions: [],
      notes: [],
    };
    const names = [...new Set([...Object.keys(compiled.integrations), ...usage.keys()])].sort();
    const integrations = names.map((name) => analyseIntegration(ctx, name, usage.get(name) ?? emptyUsage(name)));
    shortenTtl(ctx);
    suggestions.push(...ctx.suggestions);
    agents.push({ agent_id: agent, file: file.file, token_ttl: compiled.token_ttl, per_task_downscope: compiled.per_task_downscope, integrations, notes: ctx.notes });
  }
  suggestions.sort((a, b) => compareKeys([a.agent_id, a.integration, a.kind, a.target], [b.agent_id, b.integration, b.kind, b.target]));
  return {
    generated_at: input.now,
    since: summary.since,
    until: summary.until,
    first_day: summary.first_day,
    last_day: summary.last_day,
    thresholds: { ...thresholds },
    policy_revision: policy.revision,
    suggestions,
    agents,
  };
}

function analyseIntegration(ctx: AgentContext, integration: string, usage: IntegrationUsage): IntegrationAnalysis {
  const grant = ownValue(ctx.compiled.integrations, integration);
  const ownMax = ownValue(ctx.file.body.integrations, integration)?.max_scope;
  const allowed = Object.keys(grant?.allowed ?? {}).sort();
  const used = [...usage.scopes.values()].filter((e) => usedTotal(e) > 0).map((e) => e.scope);
  const implies = ctx.implies(integration);
  const names = [...new Set([...allowed, ...Object.keys(grant?.denied ?? {}), ...(ownMax ?? []), ...usage.scopes.keys()])].sort();
  const issuedDays = daysBetween(usage.issued_first_at, usage.issued_last_at);
  const dataEnough = enough(ctx, issuedDays, usage.tokens_issued);
  const scopes: ScopeAnalysis[] = [];
  let unusedOwn = 0;
  for (const scope of names) {
    const e = usage.scopes.get(scope) ?? emptyEvidence(scope);
    const isDenied = grant?.denied[scope] === true;
    const isAllowed = grant?.allowed[scope] === true;
    const origin = isDenied ? 'denied' : isAllowed ? (ownMax?.includes(scope) === true ? 'own' : 'role') : 'none';
    const lost = isAllowed ? onlyHeldThrough(scope, allowed, used, implies) : [];
    const verdict: ScopeVerdict = isDenied
      ? 'denied'
      : !isAllowed
        ? 'outside_policy'
        : usedTotal(e) > 0
          ? 'used'
          : e.granted === 0
            ? 'not_granted'
            : lost.length > 0
              ? 'implied'
              : 'unused';
    scopes.push({ scope, origin, verdict, evidence: e });
    if (grant === undefined) continue;
    if (e.denied > 0 && !isAllowed) aboveCeiling(ctx, integration, e.scope, e.denied, isDenied, covered(scope, allowed, implies));
    if (isAllowed && grant.bindings[scope] !== undefined && e.granted > 0) bindingHeld(ctx, integration, scope, grant);
    if (verdict === 'implied') {
      const message = `${scope} is never used itself, but it is the only scope that holds ${lost.join(', ')} (implied), which is used: it stays (narrowing it to ${lost.join(', ')} is a change to make by hand)`;
      ctx.notes.push({ kind: 'implied_use', integration, scope, message });
    } else if (verdict === 'unused' && origin === 'role') {
      roleGrant(ctx, integration, scope, e.granted);
    } else if (verdict === 'unused' && origin === 'own') {
      unusedOwn++;
      if (usage.sources.length > 0 && dataEnough) removeScope(ctx, integration, usage, e);
    } else if (verdict === 'used' && usage.sources.length > 0 && dataEnough) {
      moveToTaskType(ctx, integration, usage, e);
    }
  }
  if (grant !== undefined && unusedOwn > 0 && usage.sources.length === 0) {
    ctx.notes.push({
      kind: 'no_use_evidence',
      integration,
      scope: null,
      message: `${integration}: ${count(usage.tokens_issued, 'token')} issued, but no call through the enforcement proxy and no resource server report: nothing to compare with, so no scope is suggested for removal (introspections say a token was presented, not which scope was used)`,
    });
  } else if (grant !== undefined && usage.tokens_issued > 0 && !dataEnough) {
    ctx.notes.push({
      kind: 'too_little_data',
      integration,
      scope: null,
      message: `${integration}: ${count(usage.tokens_issued, 'token')} over ${count(issuedDays, 'day')}, below the thresholds (${ctx.thresholds.min_tokens} tokens, ${ctx.thresholds.min_days} days): nothing suggested for it yet`,
    });
  }
  return { integration, sources: usage.sources, tokens_issued: usage.tokens_issued, longest_use_seconds: usage.longest_use_seconds, scopes };
}

function aboveCeiling(ctx: AgentContext, integration: string, scope: string, times: number, denied: boolean, heldOtherwise: boolean): void {
  const why = denied ? 'which its deny_scope refuses' : heldOtherwise ? 'above its ceiling (capped to what it holds)' : 'above its ceiling';
  ctx.notes.push({
    kind: 'above_ceiling',
    integration,
    scope,
    message: `asked for ${scope} ${count(times, 'time')}, ${why}: reported, never a reason to widen`,
  });
}

function bindingHeld(ctx: AgentContext, integration: string, scope: string, grant: CompiledAgentIntegration): void {
  const binding = grant.bindings[scope];
  if (binding === undefined) return;
  ctx.notes.push({
    kind: 'binding_held',
    integration,
    scope,
    message: `${scope} is bound to the ${binding.resource_type} record of the task's ${binding.context_key}: nothing to change (a binding is never suggested away)`,
  });
}

function roleGrant(ctx: AgentContext, integration: string, scope: string, granted: number): void {
  const roles = ctx.roles.filter((r) => (ownValue(r.body.integrations, integration)?.max_scope ?? []).includes(scope));
  const from = roles.length === 0 ? 'its roles' : roles.map((r) => `role ${r.body.id} (${r.file})`).join(', ');
  ctx.notes.push({
    kind: 'role_grant',
    integration,
    scope,
    message: `${scope} was carried by ${count(granted, 'token')} and never used, but ${ctx.agent}'s ${integration} ceiling comes from ${from}, which other agents may share: not suggested (give ${ctx.agent} its own max_scope, or review the role)`,
  });
}

function unknownAgent(agent: string, usage: ReadonlyMap<string, IntegrationUsage>): AgentAnalysis {
  const integrations = [...usage.keys()].sort().map((name): IntegrationAnalysis => {
    const u = usage.get(name) as IntegrationUsage;
    const scopes = [...u.scopes.values()].sort((a, b) => compareKeys([a.scope], [b.scope])).map((e): ScopeAnalysis => ({ scope: e.scope, origin: 'none', verdict: 'outside_policy', evidence: e }));
    return { integration: name, sources: u.sources, tokens_issued: u.tokens_issued, longest_use_seconds: u.longest_use_seconds, scopes };
  });
  const message = `${agent} is in the window's usage but no policy file defines it now: nothing to suggest`;
  return { agent_id: agent, file: null, token_ttl: null, per_task_downscope: false, integrations, notes: [{ kind: 'not_in_policy', integration: null, scope: null, message }] };
}

function observedTypes(usage: ReadonlyMap<string, IntegrationUsage>): Set<string> {
  const types = new Set<string>();
  for (const u of usage.values()) for (const e of u.scopes.values()) for (const [type, c] of Object.entries(e.task_types)) if (c.granted > 0) types.add(type);
  return types;
}

function emptyUsage(integration: string): IntegrationUsage {
  return { integration, scopes: new Map(), sources: [], tokens_issued: 0, issued_first_at: null, issued_last_at: null, longest_use_seconds: null, tokens_with_use: 0 };
}

function compareKeys(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string;
    const y = b[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
