/*
 * "Never widen", as a check on two compiled policy sets: what every agent may get after a change is within what it
 * may get before. `applySuggestion` refuses a change that fails it (a bug, never an operator's doing), and the
 * engine's property test uses it as its oracle.
 */
import { canonicalJson } from '../audit/index.js';
import { ownValue } from '../policy/null-prototype.js';
import type { CompiledAgent, PolicySet, ScopeSet } from '../policy/policy-types.js';

/** Every way `after` grants more than `before`, in words; `[]` when it narrows or keeps everything. */
export function widenings(before: PolicySet, after: PolicySet): string[] {
  const out: string[] = [];
  if (canonicalJson(before.data.policies.integrations) !== canonicalJson(after.data.policies.integrations)) out.push('the integrations (scopes, implications) changed');
  const agents = new Set([...Object.keys(before.data.policies.agents), ...Object.keys(after.data.policies.agents)]);
  for (const id of [...agents].sort()) {
    const a = ownValue(after.data.policies.agents, id);
    const b = ownValue(before.data.policies.agents, id);
    if (a === undefined) continue;
    if (b === undefined) out.push(`agent ${id} is new`);
    else out.push(...agentWidenings(id, b, a));
  }
  return out;
}

function agentWidenings(id: string, b: CompiledAgent, a: CompiledAgent): string[] {
  const out: string[] = [];
  if (a.token_ttl > b.token_ttl) out.push(`${id}: token_ttl ${b.token_ttl} → ${a.token_ttl}`);
  for (const [name, ai] of Object.entries(a.integrations)) {
    const bi = ownValue(b.integrations, name);
    if (bi === undefined) {
      if (Object.keys(ai.allowed).length > 0 || Object.keys(ai.escalation).length > 0) out.push(`${id}: integration ${name} is new`);
      continue;
    }
    for (const s of extra(ai.allowed, bi.allowed)) out.push(`${id}: ${name} allows ${s}`);
    for (const s of extra(bi.denied, ai.denied)) out.push(`${id}: ${name} no longer denies ${s}`);
    for (const [scope, binding] of Object.entries(bi.bindings)) {
      const held = ai.allowed[scope] === true || ai.escalation[scope] !== undefined;
      const now = ai.bindings[scope];
      if (held && (now === undefined || now.resource_type !== binding.resource_type || now.context_key !== binding.context_key)) out.push(`${id}: ${name} ${scope} is no longer bound as it was`);
    }
    for (const [scope, e] of Object.entries(ai.escalation)) {
      const was = bi.escalation[scope];
      if (was === undefined) out.push(`${id}: ${name} ${scope} became requestable`);
      else if (
        e.approvers.some((g) => !was.approvers.includes(g)) ||
        e.max_duration > was.max_duration ||
        (was.require_reason && !e.require_reason) ||
        (e.override_deny && !was.override_deny)
      ) {
        out.push(`${id}: ${name} ${scope}'s escalation terms loosened`);
      }
    }
  }
  out.push(...taskTypeWidenings(id, b, a));
  return out;
}

/**
 * Task types in force (per_task_downscope with at least one type) restrict a task to its type's lists; without
 * them a task may get everything allowed. So: off before, anything after narrows; on before, on after with no
 * new type and no list growing.
 */
function taskTypeWidenings(id: string, b: CompiledAgent, a: CompiledAgent): string[] {
  const inForce = (agent: CompiledAgent): boolean => agent.per_task_downscope && Object.keys(agent.task_types).length > 0;
  if (!inForce(b)) return [];
  if (!inForce(a)) return [`${id}: task types are no longer in force`];
  const out: string[] = [];
  for (const [type, perIntegration] of Object.entries(a.task_types)) {
    const was = ownValue(b.task_types, type);
    if (was === undefined) {
      out.push(`${id}: task type ${type} is new`);
      continue;
    }
    for (const [name, scopes] of Object.entries(perIntegration)) {
      const before = ownValue(was, name) ?? {};
      for (const s of extra(scopes, before)) out.push(`${id}: task type ${type} gets ${name} ${s}`);
    }
  }
  return out;
}

function extra(set: ScopeSet, within: ScopeSet): string[] {
  return Object.keys(set).filter((s) => within[s] !== true);
}
