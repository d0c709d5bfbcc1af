import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePolicies, compileSteps } from '../../src/policy/policy-compiler.js';
import { buildPolicySet } from '../../src/policy/policy-loader.js';
import type { AgentPolicySource, PolicyDocument, RolePolicySource } from '../../src/policy/policy-types.js';
import { closeImplications } from '../../src/policy/scope-closure.js';
import { yaml } from './policy-fixtures.js';

/** Compiles in-memory files and returns the compiled agent `id` plus the warnings. */
function compileAgent(files: Record<string, string>, id = 'a') {
  const set = buildPolicySet(Object.entries(files).map(([file, text]) => ({ file, text })));
  return { agent: set.data.policies.agents[id], warnings: set.warnings, set };
}

const roleR = yaml`
  role_policy:
    id: r
    integrations:
      crm:
        max_scope: [read, write, comment]
        deny_scope: [delete]
        bind:
          write: { resource: customer, context: customer_id }
      mail:
        max_scope: [mail:read]
    task_types:
      resolve:
        crm: [read, write, comment]
      triage:
        crm: [read]
    token_ttl: 1800
`;
const roleS = yaml`
  role_policy:
    id: s
    integrations:
      crm:
        max_scope: [read, export]
        deny_scope: [admin]
    task_types:
      resolve:
        crm: [export]
    token_ttl: 600
`;

const semantics: { note: string; files: Record<string, string>; expect: object }[] = [
  {
    note: 'an agent without roles gets its max_scope; its deny_scope is compiled as denied',
    files: { 'a.yaml': 'agent_policy:\n  id: a\n  integrations:\n    crm: { max_scope: [read, write], deny_scope: [delete, admin] }\n' },
    expect: { integrations: { crm: { allowed: { read: true, write: true }, denied: { admin: true, delete: true }, bindings: {} } }, token_ttl: 3600, per_task_downscope: false, task_types: {} },
  },
  {
    note: 'an agent in a role narrows the ceiling; role denies and bindings carry over; integrations only the role declares are inherited',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  integrations:\n    crm: { max_scope: [read, write] }\n' },
    expect: {
      integrations: {
        crm: { allowed: { read: true, write: true }, denied: { delete: true }, bindings: { write: { resource_type: 'customer', context_key: 'customer_id' } } },
        mail: { allowed: { 'mail:read': true }, denied: {}, bindings: {} },
      },
    },
  },
  {
    note: 'an agent that states no max_scope inherits the roles’ ceiling and can still add denies',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  integrations:\n    crm: { deny_scope: [comment] }\n' },
    expect: { integrations: { crm: { allowed: { read: true, write: true }, denied: { comment: true, delete: true } } } },
  },
  {
    note: 'two roles: ceilings unite, denies unite, the smallest token_ttl wins',
    files: { 'r.yaml': roleR, 's.yaml': roleS, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r, s]\n' },
    expect: {
      token_ttl: 600,
      integrations: { crm: { allowed: { comment: true, export: true, read: true, write: true }, denied: { admin: true, delete: true } } },
    },
  },
  {
    note: 'task types: the roles’ lists unite, the agent narrows a type it declares, other types are inherited',
    files: {
      'r.yaml': roleR,
      's.yaml': roleS,
      'a.yaml': 'agent_policy:\n  id: a\n  roles: [r, s]\n  integrations:\n    crm: { max_scope: [read, write, export] }\n  per_task_downscope: true\n  task_types:\n    resolve:\n      crm: [read, write]\n    audit:\n      mail: [mail:read]\n',
    },
    expect: {
      task_types: {
        audit: { mail: { 'mail:read': true } },
        resolve: { crm: { read: true, write: true } },
        triage: { crm: { read: true } },
      },
    },
  },
  {
    note: 'a role’s task type narrowed to nothing stays present (an empty set, not "no restriction")',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  integrations:\n    crm: { max_scope: [comment] }\n' },
    expect: { task_types: { resolve: { crm: { comment: true } }, triage: { crm: {} } } },
  },
  {
    note: 'token_ttl: the agent’s own below the role’s',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  token_ttl: 900\n  per_task_downscope: true\n' },
    expect: { token_ttl: 900, per_task_downscope: true },
  },
  {
    note: 'token_ttl: a role cannot raise the default of an agent that sets none',
    files: { 'r.yaml': roleR.replace('token_ttl: 1800', 'token_ttl: 7200'), 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n' },
    expect: { token_ttl: 3600 },
  },
  {
    note: 'token_ttl: an agent cannot exceed its role',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  token_ttl: 86400\n' },
    expect: { token_ttl: 1800 },
  },
  {
    note: 'the same binding from a role and the agent is fine',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  integrations:\n    crm:\n      bind:\n        write: { resource: customer, context: customer_id }\n        read: { resource: customer, context: customer_id }\n' },
    expect: { integrations: { crm: { bindings: { read: { resource_type: 'customer', context_key: 'customer_id' }, write: { resource_type: 'customer', context_key: 'customer_id' } } } } },
  },
];

describe('compilePolicies: semantics', () => {
  it.each(semantics)('$note', ({ files, expect: expected }) => {
    const { agent, warnings } = compileAgent(files);
    expect(warnings).toEqual([]);
    expect(agent).toMatchObject(expected);
  });
});

const warningCases: { note: string; files: Record<string, string>; allowed: object; warning: object; integration?: string }[] = [
  {
    note: 'an agent scope above its roles’ ceiling is dropped',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  integrations:\n    crm:\n      max_scope: [read, admin]\n' },
    allowed: { read: true },
    warning: { file: 'a.yaml', line: 6, column: 25, path: 'agent_policy.integrations.crm.max_scope[1]', message: '"admin" is dropped: above the ceiling of role r' },
  },
  {
    note: 'an integration no named role grants gives nothing',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  integrations:\n    github:\n      max_scope: [repo:read]\n' },
    allowed: { 'mail:read': true },
    warning: { file: 'a.yaml', line: 6, path: 'agent_policy.integrations.github.max_scope[0]', message: '"repo:read" is dropped: no named role grants integration github' },
    integration: 'github',
  },
  {
    note: 'a scope the agent both grants and denies',
    files: { 'a.yaml': 'agent_policy:\n  id: a\n  integrations:\n    crm:\n      max_scope: [read, write]\n      deny_scope: [write]\n' },
    allowed: { read: true },
    warning: { file: 'a.yaml', line: 5, path: 'agent_policy.integrations.crm.max_scope[1]', message: '"write" is dropped: denied by its own deny_scope' },
  },
  {
    note: 'a scope a role denies',
    files: {
      'r.yaml': roleR,
      's.yaml': roleS.replace('deny_scope: [admin]', 'deny_scope: [admin, comment]'),
      'a.yaml': 'agent_policy:\n  id: a\n  roles: [r, s]\n  integrations:\n    crm:\n      max_scope: [read, comment]\n',
    },
    allowed: { read: true },
    warning: { file: 'a.yaml', line: 6, path: 'agent_policy.integrations.crm.max_scope[1]', message: '"comment" is dropped: denied by role s' },
  },
  {
    note: 'a task-type scope the roles’ type does not list',
    files: { 'r.yaml': roleR, 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n  per_task_downscope: true\n  task_types:\n    triage:\n      crm: [read, write]\n' },
    allowed: { comment: true, read: true, write: true },
    warning: { file: 'a.yaml', line: 7, path: 'agent_policy.task_types.triage.crm[1]', message: '"write" is dropped: the named roles\' task type triage does not list it for crm' },
  },
  {
    note: 'a task-type scope outside the allowed set',
    files: { 'a.yaml': 'agent_policy:\n  id: a\n  integrations:\n    crm: { max_scope: [read] }\n  per_task_downscope: true\n  task_types:\n    t:\n      crm: [read, write]\n' },
    allowed: { read: true },
    warning: { file: 'a.yaml', line: 8, path: 'agent_policy.task_types.t.crm[1]', message: '"write" is dropped: it is not in the agent\'s allowed scopes for crm' },
  },
  {
    note: 'task_types without per_task_downscope have no effect',
    files: { 'a.yaml': 'agent_policy:\n  id: a\n  integrations:\n    crm: { max_scope: [read] }\n  task_types:\n    t:\n      crm: [read]\n' },
    allowed: { read: true },
    warning: { file: 'a.yaml', line: 5, column: 3, path: 'agent_policy.task_types', message: 'task_types apply only when per_task_downscope is true' },
  },
  {
    note: 'a role that grants and denies the same scope',
    files: { 'r.yaml': roleR.replace('deny_scope: [delete]', 'deny_scope: [delete, comment]'), 'a.yaml': 'agent_policy:\n  id: a\n  roles: [r]\n' },
    allowed: { read: true, write: true },
    warning: { file: 'r.yaml', line: 6, path: 'role_policy.integrations.crm.deny_scope[1]', message: '"comment" is both in max_scope and deny_scope; deny wins' },
  },
];

describe('compilePolicies: warnings do not refuse the set', () => {
  it.each(warningCases)('$note', ({ files, allowed, warning, integration }) => {
    const { agent, warnings } = compileAgent(files);
    expect(warnings).toEqual([expect.objectContaining(warning)]);
    const name = integration === undefined ? 'crm' : 'mail';
    expect(agent?.integrations[name]?.allowed).toEqual(allowed);
    if (integration !== undefined) expect(agent?.integrations[integration]?.allowed).toEqual({});
  });
});

describe('task types: an agent narrows a type its roles declare, integrations included (issue 14, bug 3)', () => {
  const role = 'role_policy:\n  id: r\n  integrations:\n    crm: { max_scope: [read, write] }\n    slack: { max_scope: [chat:write] }\n  task_types:\n    triage:\n      crm: [read]\n';

  it('an integration the roles’ type does not list gets nothing for that type, with a warning per scope', () => {
    const agent = 'agent_policy:\n  id: a\n  roles: [r]\n  per_task_downscope: true\n  task_types:\n    triage:\n      slack: [chat:write]\n';
    const { agent: compiled, warnings } = compileAgent({ 'r.yaml': role, 'a.yaml': agent });
    expect(compiled?.task_types).toEqual({ triage: { crm: { read: true }, slack: {} } });
    expect(warnings).toEqual([
      expect.objectContaining({ file: 'a.yaml', line: 7, path: 'agent_policy.task_types.triage.slack[0]', message: '"chat:write" is dropped: the named roles\' task type triage does not list integration slack' }),
    ]);
  });

  it('a type no named role declares is the agent’s own', () => {
    const agent = 'agent_policy:\n  id: a\n  roles: [r]\n  per_task_downscope: true\n  task_types:\n    digest:\n      slack: [chat:write]\n';
    const { agent: compiled, warnings } = compileAgent({ 'r.yaml': role, 'a.yaml': agent });
    expect(compiled?.task_types).toEqual({ digest: { slack: { 'chat:write': true } }, triage: { crm: { read: true } } });
    expect(warnings).toEqual([]);
  });
});

describe('implication closure', () => {
  it.each<{ note: string; implies: Record<string, string[]>; closed: Record<string, string[]> }>([
    { note: 'direct', implies: { 'repo:write': ['repo:read'] }, closed: { 'repo:write': ['repo:read'] } },
    { note: 'transitive and sorted', implies: { a: ['c'], c: ['b'], b: ['d'] }, closed: { a: ['b', 'c', 'd'], b: ['d'], c: ['b', 'd'] } },
    { note: 'a cycle is fine; no scope implies itself', implies: { a: ['b'], b: ['a'] }, closed: { a: ['b'], b: ['a'] } },
    { note: 'self-implication is dropped', implies: { a: ['a', 'b'] }, closed: { a: ['b'] } },
    { note: 'duplicates collapse', implies: { a: ['b', 'c'], b: ['c'] }, closed: { a: ['b', 'c'], b: ['c'] } },
  ])('$note', ({ implies, closed }) => {
    expect(closeImplications(implies)).toEqual(closed);
  });

  it('compiles every integration an agent uses, with or without a file', () => {
    const set = buildPolicySet([
      { file: 'g.yaml', text: 'integration:\n  id: github\n  audience: https://api.github.com\n  implies:\n    admin:org: [write:org]\n    write:org: [read:org]\n' },
      { file: 'a.yaml', text: 'agent_policy:\n  id: a\n  integrations:\n    slack: { max_scope: [chat:write] }\n' },
    ]);
    expect(set.data.policies.integrations).toEqual({
      github: { implies: { 'admin:org': ['read:org', 'write:org'], 'write:org': ['read:org'] } },
      slack: { implies: {} },
    });
    expect(set.integrations).toEqual({ github: { audience: 'https://api.github.com' }, slack: {} });
  });
});

// ---- property: role narrowing never widens ---------------------------------------------------------------------

// Names that are also Object.prototype keys are valid ids and scopes: the compiler must treat them as plain names.
const SCOPES = ['s0', 's1', 's2', 's3', '__proto__', 'constructor'];
const INTEGRATIONS = ['i0', 'toString', 'constructor'];
const scopes = fc.subarray(SCOPES);
const ttl = fc.option(fc.integer({ min: 1, max: 86400 }), { nil: undefined });
const grants = (requireMax: boolean) =>
  fc.dictionary(fc.constantFrom(...INTEGRATIONS), fc.record({ max_scope: requireMax ? scopes : fc.option(scopes, { nil: undefined }), deny_scope: scopes }));
const taskTypes = fc.dictionary(fc.constantFrom('t0', 'valueOf'), fc.dictionary(fc.constantFrom(...INTEGRATIONS), scopes));
const roleArb = fc.record({ integrations: grants(true), token_ttl: ttl, task_types: taskTypes });

function doc<K extends 'agent_policy' | 'role_policy'>(kind: K, body: K extends 'agent_policy' ? AgentPolicySource : RolePolicySource): PolicyDocument {
  return { kind, file: `${kind}/${body.id}.yaml`, body, locate: () => ({ line: 1, column: 1 }) } as PolicyDocument;
}

const setArb = fc
  .tuple(fc.array(roleArb, { maxLength: 3 }), fc.boolean(), fc.record({ integrations: grants(false), token_ttl: ttl, task_types: taskTypes }))
  .chain(([roles, useRoles, agent]) =>
    fc.subarray(roles.map((_, i) => `r${i}`)).map((named) => ({ roles, named: useRoles ? named : [], agent })),
  );

/** The test's own lookups must not find Object.prototype's members either. */
const ownOf = <V>(record: Readonly<Record<string, V>> | undefined, key: string): V | undefined =>
  record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;

function strip<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

describe('role narrowing never widens (property)', () => {
  it('allowed ⊆ ∪ roles’ max_scope, ⊆ the agent’s max_scope, disjoint from denied; task types ⊆ allowed and ⊆ the roles’ type; ttl ≤ every source', () => {
    fc.assert(
      fc.property(setArb, ({ roles, named, agent }) => {
        // Role task types may only name the role's own integrations (checked separately): keep those.
        const roleBodies = roles.map(
          (r, i) =>
            strip({
            id: `r${i}`,
            integrations: r.integrations,
            token_ttl: r.token_ttl,
            task_types: Object.fromEntries(Object.entries(r.task_types).map(([t, m]) => [t, Object.fromEntries(Object.entries(m).filter(([k]) => Object.hasOwn(r.integrations, k)))])),
            }) as RolePolicySource,
        );
        // Without roles every integration needs its own max_scope (the schema says so).
        const agentIntegrations = Object.fromEntries(
          Object.entries(agent.integrations).map(([k, g]) => [k, strip(named.length === 0 ? { ...g, max_scope: g.max_scope ?? [] } : g)]),
        );
        const known = new Set([...Object.keys(agentIntegrations), ...roleBodies.filter((r) => named.includes(r.id)).flatMap((r) => Object.keys(r.integrations))]);
        const agentTaskTypes = Object.fromEntries(Object.entries(agent.task_types).map(([t, m]) => [t, Object.fromEntries(Object.entries(m).filter(([k]) => known.has(k)))]));
        const agentBody: AgentPolicySource = strip({ id: 'a', roles: named, integrations: agentIntegrations, token_ttl: agent.token_ttl, task_types: agentTaskTypes });

        const result = compilePolicies([...roleBodies.map((r) => doc('role_policy', r)), doc('agent_policy', agentBody)]);
        expect(result.errors).toEqual([]);
        const compiled = result.data.policies.agents['a'];
        if (compiled === undefined) throw new Error('agent missing');
        const namedRoles = roleBodies.filter((r) => named.includes(r.id));
        for (const [name, integration] of Object.entries(compiled.integrations)) {
          const allowed = Object.keys(integration.allowed);
          const denied = new Set(Object.keys(integration.denied));
          const own = ownOf(agentBody.integrations, name);
          if (named.length > 0) {
            const ceiling = new Set(namedRoles.flatMap((r) => ownOf(r.integrations, name)?.max_scope ?? []));
            for (const s of allowed) expect(ceiling.has(s)).toBe(true);
            for (const r of namedRoles) for (const s of ownOf(r.integrations, name)?.deny_scope ?? []) expect(denied.has(s)).toBe(true);
          }
          if (own?.max_scope !== undefined) for (const s of allowed) expect(own.max_scope).toContain(s);
          for (const s of own?.deny_scope ?? []) expect(denied.has(s)).toBe(true);
          for (const s of allowed) expect(denied.has(s)).toBe(false);
          // Nothing is lost either (a scope called `__proto__` once vanished): exactly the narrowed ceiling.
          const roleCeiling = new Set(namedRoles.flatMap((r) => ownOf(r.integrations, name)?.max_scope ?? []));
          const declared = own?.max_scope ?? [...roleCeiling];
          const expected = declared.filter((s) => (named.length === 0 || roleCeiling.has(s)) && !denied.has(s));
          expect(allowed.sort()).toEqual([...new Set(expected)].sort());
        }
        const reachable = new Set([...Object.keys(agentBody.integrations ?? {}), ...namedRoles.flatMap((r) => Object.keys(r.integrations))]);
        expect(Object.keys(compiled.integrations).sort()).toEqual([...reachable].sort());
        for (const [type, perIntegration] of Object.entries(compiled.task_types)) {
          // A type a named role declares is a ceiling, integrations included: nothing outside the roles' lists.
          const roleTypes = namedRoles.map((r) => ownOf(r.task_types, type)).filter((t) => t !== undefined);
          for (const [name, set] of Object.entries(perIntegration)) {
            for (const s of Object.keys(set)) expect(ownOf(ownOf(compiled.integrations, name)?.allowed, s)).toBe(true);
            if (roleTypes.length === 0) continue;
            const roleList = new Set(roleTypes.flatMap((t) => ownOf(t, name) ?? []));
            for (const s of Object.keys(set)) expect({ type, name, s, inRoleType: roleList.has(s) }).toEqual({ type, name, s, inRoleType: true });
          }
        }
        for (const r of namedRoles) if (r.token_ttl !== undefined) expect(compiled.token_ttl).toBeLessThanOrEqual(r.token_ttl);
        expect(compiled.token_ttl).toBeLessThanOrEqual(agentBody.token_ttl ?? 3600);
      }),
      { numRuns: 300 },
    );
  });
});

describe('compileSteps: the compile the loader drives, pausing between agents', () => {
  it('pauses every 200 agents and returns what compilePolicies returns', () => {
    const agents = Array.from({ length: 450 }, (_, i) =>
      doc('agent_policy', { id: `agent-${String(i).padStart(3, '0')}`, integrations: { github: { max_scope: ['repo:read'] } } } as AgentPolicySource),
    );
    const steps = compileSteps(agents);
    let pauses = 0;
    let step = steps.next();
    while (step.done !== true) {
      pauses++;
      step = steps.next();
    }
    expect(pauses).toBe(2);
    expect(step.value).toEqual(compilePolicies(agents));
    expect(Object.keys(step.value.data.policies.agents)).toHaveLength(450);
  });
});
