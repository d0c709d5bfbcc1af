import fc from 'fast-check';
import { stringify } from 'yaml';
import { evaluationTime } from '../../src/pdp/evaluation-input.js';
import type { EvaluationInputV1 } from '../../src/policy/decision-types.js';
import type { PolicySource } from '../../src/policy/policy-loader.js';

/**
 * Random policy sets the PDP accepts, aimed at the rules of docs/policy-semantics.md: roles with ceilings, denies,
 * bindings and task types; agents that narrow them, inherit them, or declare integrations and task types no role
 * has; implications with cycles; deny/max overlaps; bound scopes that are substitutes; TTLs on both sides. Names
 * that are `Object.prototype` keys (`constructor`, `toString`, `valueOf`, `hasOwnProperty`, `__proto__`) and scopes
 * with `+` and `=` appear throughout. Requests add unknown agents, integrations, task types and scopes.
 */

const INTEGRATIONS = ['crm', 'constructor', 'toString'] as const;
const SCOPES = ['read', 'write', 'admin', 'a+b', 'k=v', '__proto__', 'constructor'] as const;
const TASK_TYPES = ['triage', 'valueOf', 'hasOwnProperty'] as const;
const AGENT_IDS = ['agent-0', 'toString', 'constructor', 'agent-3'] as const;

/** One binding per scope, so that no two documents ever bind a scope differently (that refuses the set). */
const ACCOUNT_BOUND: ReadonlySet<string> = new Set(['a+b', 'k=v']);
const bindingOf = (scope: string) =>
  ACCOUNT_BOUND.has(scope) ? { resource: 'account', context: 'account_id' } : { resource: 'customer', context: 'customer_id' };

type Scope = (typeof SCOPES)[number];
type ScopeLists = Record<string, string[]>;

/** `common`, or one time in `odds + 1` `rare`. */
const rarely = <T>(common: fc.Arbitrary<T>, rare: fc.Arbitrary<T>, odds = 7) =>
  fc.oneof({ arbitrary: common, weight: odds }, { arbitrary: rare, weight: 1 });

const scopes = (min = 0, max: number = SCOPES.length) => fc.subarray([...SCOPES], { minLength: min, maxLength: max });
const sometimes = <T>(arb: fc.Arbitrary<T>, freq = 2) => fc.option(arb, { nil: undefined, freq });

export interface GeneratedSet {
  sources: PolicySource[];
  agents: string[];
  /** Per agent, the integrations, task types and scopes its documents name: requests mostly ask within them. */
  reach: Record<string, { integrations: string[]; types: string[]; scopes: Record<string, string[]> }>;
}

interface GrantDraft {
  max: Scope[];
  /** An agent with roles states no max_scope here: it inherits its roles' ceiling. */
  inherit: boolean;
  deny: Scope[];
  bindMask: boolean[];
}

const grantDraft = fc.record({
  max: scopes(1, 6),
  inherit: rarely(fc.constant(false), fc.constant(true), 2),
  deny: rarely(fc.constant<Scope[]>([]), scopes(1, 2), 2),
  bindMask: fc.array(rarely(fc.constant(false), fc.constant(true), 3), { minLength: SCOPES.length, maxLength: SCOPES.length }),
});

const taskTypesDraft = fc.dictionary(
  fc.constantFrom(...TASK_TYPES),
  fc.dictionary(fc.constantFrom(...INTEGRATIONS), scopes(0, 6), { maxKeys: 2 }),
  { maxKeys: 2 },
);

const integrationDraft = fc.record({
  file: rarely(fc.constant(true), fc.constant(false), 4),
  catalogue: fc.boolean(),
  implies: fc.array(fc.tuple(fc.constantFrom(...SCOPES), scopes(1, 3)), { maxLength: 6 }),
});

/** The grant as YAML: bound scopes only among the ones the document's max_scope allows it to bind. */
function grant(draft: GrantDraft, withMax: boolean, bindable: readonly string[]): Record<string, unknown> {
  const bound = SCOPES.filter((s, i) => draft.bindMask[i] && bindable.includes(s));
  return {
    ...(withMax ? { max_scope: draft.max } : {}),
    ...(draft.deny.length > 0 ? { deny_scope: draft.deny } : {}),
    ...(bound.length > 0 ? { bind: Object.fromEntries(bound.map((s) => [s, bindingOf(s)])) } : {}),
  };
}

/** Task types may only name integrations their owner has. */
function taskTypes(draft: Record<string, ScopeLists>, has: ReadonlySet<string>): Record<string, ScopeLists> {
  const out: Record<string, ScopeLists> = {};
  for (const [type, lists] of Object.entries(draft)) {
    out[type] = Object.fromEntries(Object.entries(lists).filter(([i]) => has.has(i)));
  }
  return out;
}

/** Integration names include `constructor` and `toString`: only own properties count. */
const own = <V>(r: Record<string, V>, key: string): V | undefined => (Object.hasOwn(r, key) ? r[key] : undefined);

const record = <V>(entries: Array<[string, V]>): Record<string, V> => Object.fromEntries(entries);

export const policySetArb: fc.Arbitrary<GeneratedSet> = fc
  .record({
    integrations: fc.tuple(...INTEGRATIONS.map(() => integrationDraft)),
    roles: fc.array(
      fc.record({
        integrations: fc.dictionary(fc.constantFrom(...INTEGRATIONS), grantDraft, { minKeys: 1, maxKeys: 3 }),
        task_types: taskTypesDraft,
        token_ttl: sometimes(fc.integer({ min: 30, max: 7200 })),
      }),
      { maxLength: 3 },
    ),
    agents: fc.array(
      fc.record({
        roleMask: fc.array(rarely(fc.constant(false), fc.constant(true), 2), { minLength: 3, maxLength: 3 }),
        integrations: fc.dictionary(fc.constantFrom(...INTEGRATIONS), grantDraft, { minKeys: 1, maxKeys: 3 }),
        task_types: taskTypesDraft,
        token_ttl: sometimes(fc.integer({ min: 30, max: 7200 })),
        per_task_downscope: fc.boolean(),
      }),
      { minLength: 1, maxLength: AGENT_IDS.length },
    ),
  })
  .map(({ integrations, roles, agents }) => {
    const sources: PolicySource[] = [];
    INTEGRATIONS.forEach((id, i) => {
      const d = integrations[i]!;
      if (!d.file) return;
      const implies: ScopeLists = Object.create(null); // `__proto__` is a scope here
      for (const [from, to] of d.implies) implies[from] = [...new Set([...(implies[from] ?? []), ...to])];
      const doc = { id, ...(d.catalogue ? { scopes: [...SCOPES] } : {}), implies };
      sources.push({ file: `integrations/${id}.yaml`, text: stringify({ integration: doc }) });
    });

    const roleIds = roles.map((_, i) => `role-${i}`);
    roles.forEach((r, i) => {
      const grants = record(Object.entries(r.integrations).map(([name, g]) => [name, grant(g, true, g.max)]));
      const has = new Set(Object.keys(grants));
      const doc = { id: roleIds[i], integrations: grants, task_types: taskTypes(r.task_types, has), ...(r.token_ttl ? { token_ttl: r.token_ttl } : {}) };
      sources.push({ file: `roles/${roleIds[i]}.yaml`, text: stringify({ role_policy: doc }) });
    });

    const ids = agents.map((_, i) => AGENT_IDS[i]!);
    const reach: GeneratedSet['reach'] = Object.create(null);
    agents.forEach((a, i) => {
      const named = roleIds.filter((_, r) => a.roleMask[r]);
      const namedRoles = roles.filter((_, r) => a.roleMask[r]);
      const grants = record(
        Object.entries(a.integrations).map(([name, g]) => {
          // Without roles every integration states its max_scope; a binding names a scope of the document's
          // max_scope (the agent's own, else its roles' ceiling).
          const withMax = named.length === 0 || !g.inherit;
          const inherited = namedRoles.flatMap((r) => own(r.integrations, name)?.max ?? []);
          return [name, grant(g, withMax, withMax ? g.max : inherited)];
        }),
      );
      const has = new Set([...Object.keys(grants), ...namedRoles.flatMap((r) => Object.keys(r.integrations))]);
      const types = new Set([...Object.keys(a.task_types), ...namedRoles.flatMap((r) => Object.keys(r.task_types))]);
      // What requests mostly ask for: scopes the agent's and its roles' documents name for the integration.
      const scopesOf = (name: string) => [
        ...new Set([
          ...(own(a.integrations, name)?.max ?? []),
          ...namedRoles.flatMap((r) => own(r.integrations, name)?.max ?? []),
          ...Object.values(a.task_types).flatMap((t) => own(t, name) ?? []),
        ]),
      ];
      reach[ids[i]!] = { integrations: [...has], types: [...types], scopes: Object.fromEntries([...has].map((n) => [n, scopesOf(n)])) };
      const doc = {
        id: ids[i],
        ...(named.length > 0 ? { roles: named } : {}),
        integrations: grants,
        task_types: taskTypes(a.task_types, has),
        ...(a.token_ttl ? { token_ttl: a.token_ttl } : {}),
        per_task_downscope: a.per_task_downscope,
      };
      sources.push({ file: `agents/agent-${i}.yaml`, text: stringify({ agent_policy: doc }) });
    });
    return { sources, agents: ids, reach };
  });

/** One of `names`, or (rarely, and always when there is none) one of `others`. */
const mostlyFrom = (names: readonly string[], others: readonly string[], odds = 7) =>
  names.length === 0 ? fc.constantFrom(...others) : rarely(fc.constantFrom(...names), fc.constantFrom(...others), odds);

/** Context values as a registered task may hold them: D5's text matching, including its edges. */
const contextValue = fc.constantFrom<unknown>('1234', '1234', 1234, '5678', '', 1234.5, true, 12345678901234, 9007199254740993, -7, undefined);

export const inputArb = (set: GeneratedSet): fc.Arbitrary<EvaluationInputV1> =>
  rarely(fc.constantFrom(...set.agents), fc.constantFrom('ghost', 'hasOwnProperty'), 12)
    .chain((agent_id) => {
      const reach = set.reach[agent_id] ?? { integrations: [], types: [], scopes: {} };
      return fc.record({
        agent_id: fc.constant(agent_id),
        integration: mostlyFrom(reach.integrations, [...INTEGRATIONS, 'other', 'valueOf'], 12),
        type: sometimes(mostlyFrom(reach.types, [...TASK_TYPES, 'undeclared', 'constructor']), 6),
        near: fc.constant(reach.scopes),
      });
    })
    .chain((who) =>
      fc.record({
        agent_id: fc.constant(who.agent_id),
        integration: fc.constant(who.integration),
        type: fc.constant(who.type),
        // Mostly scopes the agent's documents name for this integration, else any scope, or one nobody names;
        // rarely none at all.
        scopes: fc
          .uniqueArray(
            fc.oneof(
              { arbitrary: mostlyFrom(own(who.near, who.integration) ?? [], SCOPES, 3), weight: 10 },
              { arbitrary: fc.constantFrom('delete', 'read:x', '*'), weight: 1 },
            ),
            { minLength: 1, maxLength: 3 },
          )
          .chain((asked) => rarely(fc.constant(asked), fc.constant<string[]>([]), 30)),
        customer: contextValue,
        account: contextValue,
        suspended: rarely(fc.constant<unknown>(undefined), fc.constantFrom<unknown>(true, 'true'), 20),
        resource: sometimes(
          fc.record({
            type: rarely(fc.constantFrom('customer', 'account'), fc.constant('order')),
            id: fc.constantFrom('1234', '1234', '5678', '12345678901234', '1234.5', '9007199254740993', '-7', '01234'),
          }),
          4,
        ),
        ttl: sometimes(fc.integer({ min: 1, max: 10_000 })),
        // As the PDP passes it (section 2): any instant; no shipped rule lets it change an answer (D6).
        time: rarely(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.constant(undefined), 20),
      }),
    )
    .map((r) => {
      const context: Record<string, unknown> = {};
      if (r.customer !== undefined) context['customer_id'] = r.customer;
      if (r.account !== undefined) context['account_id'] = r.account;
      if (r.suspended !== undefined) context['suspended'] = r.suspended;
      return {
        agent_id: r.agent_id,
        caller_id: 'semantics',
        task: { id: 'task-1', ...(r.type !== undefined ? { type: r.type } : {}), context, registered: true },
        integration: r.integration,
        scopes: r.scopes,
        ...(r.resource ? { resource: r.resource } : {}),
        ...(r.ttl ? { ttl_seconds: r.ttl } : {}),
        ...(r.time !== undefined ? { time: evaluationTime(new Date(r.time)) } : {}),
      };
    });
