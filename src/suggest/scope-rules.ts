/*
 * The two rules about one scope of one agent and integration (docs/suggestions.md):
 * - remove_scope: in the agent's own max_scope, carried by tokens, never shown used → out of max_scope;
 * - move_to_task_type: used, but only by tasks of one type → only that type may get it (task_types,
 *   per_task_downscope).
 * Both only ever take away. Neither touches a role (shared by other agents), a deny list or a binding that still
 * guards something.
 */
import { ownValue } from '../policy/null-prototype.js';
import { count, day, enough, propose, sourceNames, type AgentContext } from './suggestion-builder.js';
import type { ScopeEvidence } from './suggestion-types.js';
import { usedTotal, type IntegrationUsage } from './usage-evidence.js';
import type { YamlEdit, YamlValue } from './yaml-edit.js';

const AGENT = 'agent_policy';

/** Whether `scope` is held through `held`: named in it, or implied by a scope in it. */
export function covered(scope: string, held: Iterable<string>, implies: Readonly<Record<string, readonly string[]>>): boolean {
  for (const h of held) if (h === scope || (Object.hasOwn(implies, h) && (implies[h] as readonly string[]).includes(scope))) return true;
  return false;
}

/**
 * Used scopes that only `scope` holds among `held` (through its implications): removing it would take them away.
 * `used` are the scopes shown used.
 */
export function onlyHeldThrough(scope: string, held: readonly string[], used: Iterable<string>, implies: Readonly<Record<string, readonly string[]>>): string[] {
  const implied = Object.hasOwn(implies, scope) ? (implies[scope] as readonly string[]) : [];
  const rest = held.filter((h) => h !== scope);
  return [...used].filter((u) => u !== scope && implied.includes(u) && !covered(u, rest, implies)).sort();
}

/** remove_scope for `e.scope`, which the caller found own, allowed, granted, unused and not needed through implication. */
export function removeScope(ctx: AgentContext, integration: string, usage: IntegrationUsage, e: ScopeEvidence): void {
  const scope = e.scope;
  if (!enough(ctx, e.days_observed, e.granted)) {
    ctx.notes.push({
      kind: 'too_little_data',
      integration,
      scope,
      message: `${scope} was carried by ${count(e.granted, 'token')} over ${count(e.days_observed, 'day')} and never used; below the thresholds (${ctx.thresholds.min_tokens} tokens, ${ctx.thresholds.min_days} days): not suggested yet`,
    });
    return;
  }
  const own = ownValue(ctx.file.body.integrations, integration);
  const at = [AGENT, 'integrations', integration];
  const edits: YamlEdit[] = [{ op: 'remove_item', path: [...at, 'max_scope'], value: scope }];
  // Its binding goes with it, unless the scope stays requestable (a binding also guards an elevated scope).
  if (own?.bind !== undefined && Object.hasOwn(own.bind, scope) && !(own.escalation?.scopes ?? []).includes(scope)) {
    edits.push({ op: 'remove_key', path: [...at, 'bind', scope] });
  }
  for (const [type, perIntegration] of Object.entries(ctx.file.body.task_types ?? {})) {
    if ((ownValue(perIntegration, integration) ?? []).includes(scope)) edits.push({ op: 'remove_item', path: [AGENT, 'task_types', type, integration], value: scope });
  }
  propose(ctx, {
    integration,
    kind: 'remove_scope',
    target: scope,
    edits,
    proposal: { summary: `remove ${scope} from ${ctx.agent}'s ${integration} max_scope: carried by ${count(e.granted, 'token')} over ${count(e.days_observed, 'day')}, never used`, scope },
    scope: e,
    sources: usage.sources,
    days: e.days_observed,
    samples: e.granted,
    tokens_issued: usage.tokens_issued,
    reasons: [
      `${count(e.granted, 'token')} carried ${scope} from ${day(e.granted_first_at)} to ${day(e.granted_last_at)} (${count(e.days_observed, 'day')})`,
      `no use of it in the window; ${integration}'s use evidence: ${sourceNames(usage.sources)}`,
      ...(e.requested > 0 ? [`decisions asked for it ${count(e.requested, 'time')} (asking is not using)`] : []),
    ],
  });
}

/** move_to_task_type for `e.scope`, which the caller found allowed and used. */
export function moveToTaskType(ctx: AgentContext, integration: string, usage: IntegrationUsage, e: ScopeEvidence): void {
  const scope = e.scope;
  const users = Object.entries(e.task_types).filter(([, c]) => c.used > 0).map(([type]) => type);
  const type = users[0];
  if (users.length !== 1 || type === undefined || type === '' || !enough(ctx, e.days_observed, e.granted)) return;
  const compiledTypes = ctx.compiled.task_types;
  const active = ctx.compiled.per_task_downscope && Object.keys(compiledTypes).length > 0;
  const implies = ctx.implies(integration);
  const allowed = Object.keys(ctx.compiled.integrations[integration]?.allowed ?? {}).sort();
  const edits: YamlEdit[] = [];
  // The evidence is about types whose tasks held the scope (had tokens carrying it) and did not use it: a type whose
  // tasks never held it (tokens for other integrations only) says nothing about it, and is not taken it from.
  const held = (t: string): boolean => (Object.hasOwn(e.task_types, t) ? (e.task_types[t]?.granted ?? 0) : 0) > 0;
  let from: string[];
  if (active) {
    // Task types are in force: the scope leaves the other types' lists (those of types the window saw holding it).
    if (ownValue(ownValue(compiledTypes, type), integration)?.[scope] !== true) return;
    from = Object.keys(compiledTypes)
      .filter((t) => t !== type && ctx.observedTypes.has(t) && held(t) && ownValue(ownValue(compiledTypes, t), integration)?.[scope] === true)
      .sort();
    for (const t of from) {
      const list = Object.keys(ownValue(ownValue(compiledTypes, t), integration) ?? {}).sort();
      if (!keepsImplied(ctx, integration, t, scope, list, usage, implies)) return;
      const ownList = ownValue(ownValue(ctx.file.body.task_types, t), integration);
      if (ownList !== undefined) edits.push({ op: 'remove_item', path: [AGENT, 'task_types', t, integration], value: scope });
      // Inherited from a role: the agent narrows it in its own file (it may, never widen it).
      else edits.push({ op: 'set', path: [AGENT, 'task_types', t, integration], value: list.filter((s) => s !== scope) });
    }
  } else {
    if (Object.keys(compiledTypes).length > 0) {
      ctx.notes.push({
        kind: 'task_types_inactive',
        integration,
        scope,
        message: `${scope} is used only by ${type} tasks, but ${ctx.agent} declares task types with per_task_downscope off: turning it on would change more than this scope; not suggested (review the task types by hand)`,
      });
      return;
    }
    if (ctx.observedTypes.has('')) {
      ctx.notes.push({
        kind: 'untyped_tasks',
        integration,
        scope,
        message: `${scope} is used only by ${type} tasks, but some of ${ctx.agent}'s tokens were for tasks without a type, which task types would refuse: not suggested`,
      });
      return;
    }
    from = [...ctx.observedTypes].filter((t) => t !== type && held(t)).sort();
    // Every type the window saw keeps everything it may have today, but for this scope: nothing else changes.
    const taskTypes: Record<string, Record<string, string[]>> = {};
    for (const t of [...ctx.observedTypes].sort()) {
      const lists: Record<string, string[]> = {};
      for (const [name, grant] of Object.entries(ctx.compiled.integrations).sort(([a], [b]) => (a < b ? -1 : 1))) {
        const scopes = Object.keys(grant.allowed).sort().filter((s) => t === type || name !== integration || s !== scope);
        if (Object.keys(grant.allowed).length > 0) lists[name] = scopes;
      }
      if (t !== type && !keepsImplied(ctx, integration, t, scope, allowed, usage, implies)) return;
      taskTypes[t] = lists;
    }
    if (ctx.file.body.per_task_downscope !== true) edits.push({ op: 'set', path: [AGENT, 'per_task_downscope'], value: true });
    edits.push({ op: 'set', path: [AGENT, 'task_types'], value: taskTypes as unknown as YamlValue });
  }
  if (from.length === 0) return;
  const setsFlag = !active && ctx.file.body.per_task_downscope !== true;
  propose(ctx, {
    integration,
    kind: 'move_to_task_type',
    target: scope,
    edits,
    proposal: {
      summary: `give ${scope} (${integration}) only to ${type} tasks of ${ctx.agent}, no longer to ${from.join(', ')}`,
      scope,
      task_type: type,
      from_task_types: from,
      sets_per_task_downscope: setsFlag,
    },
    scope: e,
    sources: usage.sources,
    days: e.days_observed,
    samples: e.granted,
    tokens_issued: usage.tokens_issued,
    reasons: [
      `${count(usedTotal(e), 'use')} of ${scope} from ${day(e.used_first_at)} to ${day(e.used_last_at)}, all by ${type} tasks`,
      `${count(e.granted, 'token')} carried it over ${count(e.days_observed, 'day')}; tasks of ${from.join(', ')} had tokens in the window and never used it`,
      ...(setsFlag ? [`per_task_downscope is turned on: a task of a type not listed (none was seen in the window) would get nothing`] : []),
    ],
  });
}

/** Whether tasks of `type`, without `scope`, still hold every scope they were seen using through it. */
function keepsImplied(
  ctx: AgentContext,
  integration: string,
  type: string,
  scope: string,
  list: readonly string[],
  usage: IntegrationUsage,
  implies: Readonly<Record<string, readonly string[]>>,
): boolean {
  const usedByType = [...usage.scopes.values()].filter((s) => (ownValue(s.task_types, type)?.used ?? 0) > 0).map((s) => s.scope);
  const lost = onlyHeldThrough(scope, list, usedByType, implies);
  if (lost.length === 0) return true;
  ctx.notes.push({
    kind: 'implied_use',
    integration,
    scope,
    message: `${type} tasks use ${lost.join(', ')} through ${scope} (implied): ${scope} stays with them`,
  });
  return false;
}
