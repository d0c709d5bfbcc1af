import fc from 'fast-check';
import { stringify } from 'yaml';
import { evaluationTime } from '../../src/pdp/evaluation-input.js';
import type { EvaluationInputV1 } from '../../src/policy/decision-types.js';
import type { PolicySource } from '../../src/policy/policy-loader.js';

/**
 * Random agent-policy sets (integrations with implications, roles, agents with ceilings, denies, bindings and
 * task types) as the YAML files a policy author would write, and random decision inputs against them.
 *
 * Names that are also keys of `Object.prototype` (`constructor`, `toString`, `valueOf`, `hasOwnProperty`,
 * `__proto__`) are valid ids and scopes, so they appear among the integrations, scopes, task types and agent ids:
 * a lookup on a plain object would find `Object.prototype`'s member (or, for `__proto__`, replace the prototype).
 */
const INTEGRATIONS = ['github', 'constructor', 'toString'] as const;
const SCOPES = ['read', 'write', 'admin', 'delete', 'constructor', '__proto__'] as const;
const TASK_TYPES = ['triage', 'valueOf', 'hasOwnProperty'] as const;
/** Scopes named like prototype keys stay bare (`__proto__`), the others are namespaced (`github:read`). */
const BARE_SCOPES: ReadonlySet<string> = new Set(['constructor', '__proto__']);
const scopeOf = (integration: string, s: string): string => (BARE_SCOPES.has(s) ? s : `${integration}:${s}`);
/** The second agent is called `toString`. */
const agentId = (i: number): string => (i === 1 ? 'toString' : `agent-${i}`);

const rarely = <T>(common: fc.Arbitrary<T>, rare: fc.Arbitrary<T>): fc.Arbitrary<T> =>
  fc.oneof({ arbitrary: common, weight: 9 }, { arbitrary: rare, weight: 1 });

const subset = <T>(items: readonly T[], max = items.length) => fc.subarray([...items], { maxLength: max });

export interface GeneratedPolicySet {
  sources: PolicySource[];
  agents: string[];
  taskTypes: string[];
}

const integrationDoc = (name: string) =>
  fc
    .array(fc.tuple(fc.constantFrom(...SCOPES), subset(SCOPES, 2)), { maxLength: 3 })
    .map((pairs) => {
      const implies: Record<string, string[]> = Object.create(null);
      for (const [from, to] of pairs) {
        const targets = to.filter((t) => t !== from).map((t) => scopeOf(name, t));
        if (targets.length > 0) implies[scopeOf(name, from)] = targets;
      }
      return { file: `integrations/${name}.yaml`, text: stringify({ integration: { id: name, implies } }) };
    });

const grants = (integrations: readonly string[], withBindings: boolean) =>
  fc
    .tuple(...integrations.map((i) => fc.tuple(fc.subarray([...SCOPES], { minLength: 2, maxLength: 5 }), subset(SCOPES, 1), fc.boolean(), rarely(fc.constant(true), fc.constant(false))).map(([max, deny, bind, present]) => ({ i, max, deny, bind, present }))))
    .map((entries) => {
      const out: Record<string, object> = {};
      for (const { i, max, deny, bind, present } of entries) {
        if (!present || max.length === 0) continue;
        const b = withBindings && bind ? { bind: { [scopeOf(i, max[0]!)]: { resource: 'customer', context: 'customer_id' } } } : {};
        out[i] = { max_scope: max.map((s) => scopeOf(i, s)), deny_scope: deny.map((s) => scopeOf(i, s)), ...b };
      }
      return out;
    });

const taskTypes = (integrations: readonly string[]) =>
  fc.dictionary(
    fc.constantFrom(...TASK_TYPES),
    fc.tuple(fc.constantFrom(...integrations), fc.subarray([...SCOPES], { minLength: 1, maxLength: 5 })).map(([i, scopes]) => ({ [i]: scopes.map((s) => scopeOf(i, s)) })),
    { maxKeys: 2 },
  );

export const policySetArb: fc.Arbitrary<GeneratedPolicySet> = fc
  .subarray([...INTEGRATIONS], { minLength: 1 })
  .chain((integrations) =>
    fc.record({
      integrationDocs: fc.tuple(...integrations.map(integrationDoc)),
      roles: fc.array(fc.record({ integrations: grants(integrations, false), task_types: taskTypes(integrations), token_ttl: fc.option(fc.integer({ min: 60, max: 7200 }), { nil: undefined }) }), { maxLength: 2 }),
      agents: fc.array(
        fc.record({
          integrations: grants(integrations, true),
          roleMask: fc.array(rarely(fc.constant(false), fc.constant(true)), { minLength: 2, maxLength: 2 }),
          task_types: taskTypes(integrations),
          token_ttl: fc.option(fc.integer({ min: 30, max: 7200 }), { nil: undefined }),
          per_task_downscope: fc.boolean(),
        }),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  )
  .map(({ integrationDocs, roles, agents }) => {
    const sources: PolicySource[] = [...integrationDocs];
    const roleIds = roles.map((_, i) => `role-${i}`);
    const roleGrants: Array<Record<string, unknown>> = [];
    roles.forEach((r, i) => {
      const integrations = Object.fromEntries(Object.entries(r.integrations).map(([k, v]) => [k, { max_scope: (v as { max_scope: string[] }).max_scope, deny_scope: (v as { deny_scope: string[] }).deny_scope }]));
      roleGrants.push(integrations);
      const doc = { id: roleIds[i], integrations, ...(r.token_ttl ? { token_ttl: r.token_ttl } : {}), task_types: pick(r.task_types, integrations) };
      sources.push({ file: `roles/role-${i}.yaml`, text: stringify({ role_policy: doc }) });
    });
    const agentIds = agents.map((_, i) => agentId(i));
    agents.forEach((a, i) => {
      const roles = roleIds.filter((_, r) => a.roleMask[r]);
      const reachable = Object.assign({}, a.integrations, ...roleGrants.filter((_, r) => a.roleMask[r]));
      const doc = {
        id: agentIds[i],
        ...(roles.length ? { roles } : {}),
        integrations: a.integrations,
        task_types: pick(a.task_types, reachable),
        ...(a.token_ttl ? { token_ttl: a.token_ttl } : {}),
        per_task_downscope: a.per_task_downscope,
      };
      sources.push({ file: `agents/${agentIds[i]}.yaml`, text: stringify({ agent_policy: doc }) });
    });
    return { sources, agents: agentIds, taskTypes: [...TASK_TYPES] };
  });

/** Task types may only name integrations the document grants. */
function pick(types: Record<string, Record<string, string[]>>, integrations: Record<string, unknown>): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [t, byIntegration] of Object.entries(types)) {
    const kept = Object.fromEntries(Object.entries(byIntegration).filter(([i]) => Object.hasOwn(integrations, i)));
    if (Object.keys(kept).length > 0) out[t] = kept;
  }
  return out;
}

const DAY_MS = 86_400_000;
const FIRST_DAY = Date.UTC(2000, 0, 1) / DAY_MS;
const LAST_DAY = Date.UTC(2100, 0, 1) / DAY_MS;

/**
 * A decision's instant, as the PDP passes it (`input.time`): any millisecond of 2000-2099, or (as often) a whole
 * minute or a millisecond either side of one, where time windows start and end; rarely no time at all.
 */
export const timeArb: fc.Arbitrary<EvaluationInputV1['time']> = rarely(
  fc
    .oneof(
      fc.integer({ min: FIRST_DAY * DAY_MS, max: LAST_DAY * DAY_MS }),
      fc
        .tuple(fc.integer({ min: FIRST_DAY, max: LAST_DAY }), fc.integer({ min: 0, max: 1439 }), fc.constantFrom(-1, 0, 0, 1))
        .map(([day, minute, ms]) => day * DAY_MS + minute * 60_000 + ms),
    )
    .map((ms) => evaluationTime(new Date(ms))),
  fc.constant(undefined),
);

export const inputArb = (set: GeneratedPolicySet): fc.Arbitrary<EvaluationInputV1> =>
  fc
    .record({
      agent_id: rarely(fc.constantFrom(...set.agents), fc.constant('ghost-agent')),
      integration: rarely(fc.constantFrom(...INTEGRATIONS), fc.constant('other')),
      scopes: fc.uniqueArray(fc.constantFrom(...SCOPES), { minLength: 0, maxLength: 3 }),
      foreign: rarely(fc.constant<string[]>([]), fc.constant<string[]>(['github:unknown'])),
      type: fc.option(rarely(fc.constantFrom(...set.taskTypes), fc.constant('undeclared')), { nil: undefined, freq: 4 }),
      customer: fc.constantFrom<unknown>('1234', '1234', 1234, '5678', undefined, ''),
      resource: fc.option(fc.record({ type: rarely(fc.constant('customer'), fc.constant('account')), id: fc.constantFrom('1234', '1234', '5678', '') }), { nil: undefined, freq: 4 }),
      ttl: fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: undefined }),
      suspended: rarely(fc.constant(false), fc.constant(true)),
      time: timeArb,
    })
    .map((r) => ({
      agent_id: r.agent_id,
      caller_id: 'oracle',
      task: {
        id: 'task-1',
        ...(r.type ? { type: r.type } : {}),
        context: { ...(r.customer === undefined ? {} : { customer_id: r.customer }), ...(r.suspended ? { suspended: true } : {}) },
        registered: true,
      },
      integration: r.integration,
      scopes: [...r.scopes.map((s) => scopeOf(r.integration, s)), ...r.foreign],
      ...(r.resource ? { resource: r.resource } : {}),
      ...(r.ttl ? { ttl_seconds: r.ttl } : {}),
      ...(r.time ? { time: r.time } : {}),
    }));
