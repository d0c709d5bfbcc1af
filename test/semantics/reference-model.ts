import { parseDocument } from 'yaml';

/**
 * docs/policy-semantics.md as code: a second implementation of the policy language, written from that page (the
 * rule names C1–C8 and D1–D8 are its), not from rego/ or src/policy/. It shares nothing with them: it parses the
 * YAML itself, keeps every name-keyed table in a `Map` (so `constructor` or `__proto__` are names like any other)
 * and decides in plain TypeScript. reference-model.test.ts checks the real evaluator against it.
 *
 * It assumes a policy set the PDP accepts (no errors); it does not predict errors or warnings.
 */

/** What the policy is asked (policy-semantics.md, section 2). */
export interface ModelInput {
  agent_id: string;
  integration: string;
  scopes: readonly string[];
  task: { type?: unknown; context?: unknown };
  resource?: { type: string; id: unknown };
  ttl_seconds?: number;
}

/** The five fields the policy decides (D8), reasons as their codes in order. */
export interface ModelAnswer {
  outcome: 'allow' | 'deny';
  granted_scopes: string[];
  denied_scopes: Array<{ scope: string; reason: string; granted_instead?: string[] }>;
  reasons: string[];
  token_ttl_seconds: number;
}

type Scopes = ReadonlySet<string>;
interface Binding {
  resource: string;
  context: string;
}
interface Grant {
  max_scope?: string[];
  deny_scope?: string[];
  bind?: Map<string, Binding>;
}
type TaskTypes = Map<string, Map<string, string[]>>;
interface AgentDoc {
  id: string;
  roles: string[];
  integrations: Map<string, Grant>;
  token_ttl?: number;
  per_task_downscope?: boolean;
  task_types: TaskTypes;
}
interface RoleDoc {
  id: string;
  integrations: Map<string, Grant>;
  token_ttl?: number;
  task_types: TaskTypes;
}

/** One agent, compiled (section 3). */
interface CompiledAgent {
  integrations: Map<string, { allowed: Scopes; denied: Scopes; bindings: Map<string, Binding> }>;
  taskTypes: Map<string, Map<string, Scopes>>;
  ttl: number;
  restricted: boolean;
}

const DEFAULT_TTL = 3600;
const MAX_SAFE = 2 ** 53 - 1;

const union = (...sets: Iterable<string>[]): Set<string> => new Set(sets.flatMap((s) => [...s]));
const intersect = (a: Iterable<string>, b: Scopes): Set<string> => new Set([...a].filter((s) => b.has(s)));
const minus = (a: Iterable<string>, b: Scopes): Set<string> => new Set([...a].filter((s) => !b.has(s)));
const sorted = (s: Iterable<string>): string[] => [...s].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));

export class ReferenceModel {
  readonly #agents = new Map<string, CompiledAgent>();
  readonly #implies = new Map<string, Map<string, Scopes>>();

  /** The policy files as the PDP reads them: relative path and YAML text. */
  static fromSources(sources: ReadonlyArray<{ file: string; text: string }>): ReferenceModel {
    const agents: AgentDoc[] = [];
    const roles = new Map<string, RoleDoc>();
    const implies = new Map<string, Map<string, string[]>>();
    for (const { text } of sources) {
      // One document per file, whose single top-level key says what it is.
      const top = parseDocument(text).toJS({ mapAsMap: true }) as Map<string, Map<string, unknown>>;
      const [kind, body] = [...top][0]!;
      if (kind === 'agent_policy') agents.push(readAgent(body));
      else if (kind === 'role_policy') {
        const role = readRole(body);
        roles.set(role.id, role);
      } else implies.set(String(body.get('id')), (body.get('implies') as Map<string, string[]> | undefined) ?? new Map());
    }
    const model = new ReferenceModel();
    for (const [name, map] of implies) model.#implies.set(name, closeImplications(map));
    for (const agent of agents) model.#agents.set(agent.id, compileAgent(agent, roles));
    return model;
  }

  decide(input: ModelInput): ModelAnswer {
    const agent = this.#agents.get(input.agent_id);
    // D1: known agent and integration; otherwise every set below is empty.
    const integration = agent?.integrations.get(input.integration);
    const known = integration !== undefined;
    const allowed: Scopes = integration?.allowed ?? new Set();
    const denied: Scopes = integration?.denied ?? new Set();
    const bindings = integration?.bindings ?? new Map<string, Binding>();
    const R = new Set(input.scopes);

    // D2: task type.
    const type = input.task.type;
    const restricted = agent?.restricted === true;
    const typeDeclared = typeof type === 'string' && agent?.taskTypes.has(type) === true;
    const typeRejected = restricted && !typeDeclared;
    const taskScopes: Scopes = (typeDeclared ? agent?.taskTypes.get(type as string)?.get(input.integration) : undefined) ?? new Set();

    // D3: the effective set E.
    const E = restricted ? minus(intersect(allowed, taskScopes), denied) : minus(allowed, denied);

    // D5: a binding holds.
    const holds = (x: string): boolean => {
      const b = bindings.get(x);
      if (b === undefined) return true;
      if (input.resource === undefined || input.resource.type !== b.resource) return false;
      const context = input.task.context;
      const v = isRecord(context) && Object.hasOwn(context, b.context) ? text(context[b.context]) : undefined;
      return v !== undefined && v !== '' && text(input.resource.id) === v;
    };

    // D4: each requested scope, first rule that matches.
    const denyScope: string[] = [];
    const direct: string[] = [];
    const violations: string[] = [];
    const capped = new Map<string, string[]>();
    const dropped = new Map<string, 'task_type' | 'above_ceiling'>();
    const implies = this.#implies.get(input.integration);
    for (const s of R) {
      if (denied.has(s)) denyScope.push(s);
      else if (E.has(s)) {
        direct.push(s);
        if (!holds(s)) violations.push(s);
      } else {
        const substitutes = [...(implies?.get(s) ?? [])].filter((x) => E.has(x) && holds(x));
        if (substitutes.length > 0) capped.set(s, sorted(substitutes));
        else if (known) dropped.set(s, allowed.has(s) ? 'task_type' : 'above_ceiling');
      }
    }

    // D6: the shipped extensions. business_hours lists no agent as shipped, so input.time changes nothing.
    const context = input.task.context;
    const suspended = isRecord(context) && Object.hasOwn(context, 'suspended') && context['suspended'] === true;

    // D7: outcome.
    const grants = union(direct, ...capped.values());
    const allow =
      agent !== undefined && known && denyScope.length === 0 && !typeRejected && violations.length === 0 && !suspended && grants.size > 0;

    // D8: the answer.
    const entries: ModelAnswer['denied_scopes'] = [
      ...denyScope.map((scope) => ({ scope, reason: 'deny_scope' })),
      ...violations.map((scope) => ({ scope, reason: 'record_binding' })),
      ...[...capped].map(([scope, instead]) => (allow ? { scope, reason: 'capped', granted_instead: instead } : { scope, reason: 'capped' })),
      ...[...dropped].map(([scope, reason]) => ({ scope, reason })),
    ];
    const reasons: string[] = [];
    if (allow) {
      reasons.push('allowed');
      if (capped.size > 0) reasons.push('scopes_capped');
      if (dropped.size > 0) reasons.push('scopes_dropped');
    } else {
      if (agent === undefined) reasons.push('unknown_agent');
      else if (!known) reasons.push('integration_not_allowed');
      if (denyScope.length > 0) reasons.push('deny_scope');
      if (typeRejected) reasons.push('task_type_not_allowed');
      if (violations.length > 0) reasons.push('record_binding_mismatch');
      if (known && grants.size === 0) reasons.push('no_scope_granted');
      if (suspended) reasons.push('task_suspended');
    }
    const ttl = agent === undefined ? 0 : input.ttl_seconds === undefined ? agent.ttl : Math.min(agent.ttl, input.ttl_seconds);
    return {
      outcome: allow ? 'allow' : 'deny',
      granted_scopes: allow ? sorted(grants) : [],
      denied_scopes: entries.sort((a, b) => (a.scope < b.scope ? -1 : a.scope > b.scope ? 1 : 0)),
      reasons: sorted(reasons),
      token_ttl_seconds: allow ? ttl : 0,
    };
  }
}

/** D5's `text`: strings as they are, whole numbers within ±(2^53 − 1) as decimal digits; nothing else has one. */
function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= MAX_SAFE) return String(v);
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** C6: transitive closure, without the scope itself; cycles are fine. */
function closeImplications(implies: Map<string, string[]>): Map<string, Scopes> {
  const closed = new Map<string, Scopes>();
  for (const start of implies.keys()) {
    const seen = new Set<string>();
    const pending = [...(implies.get(start) ?? [])];
    while (pending.length > 0) {
      const next = pending.pop()!;
      if (seen.has(next)) continue;
      seen.add(next);
      pending.push(...(implies.get(next) ?? []));
    }
    seen.delete(start);
    closed.set(start, seen);
  }
  return closed;
}

/** C1–C8 for one agent. */
function compileAgent(agent: AgentDoc, roleIndex: ReadonlyMap<string, RoleDoc>): CompiledAgent {
  const roles = agent.roles.map((id) => roleIndex.get(id)!);
  const hasRoles = roles.length > 0;
  // C1
  const names = union(agent.integrations.keys(), ...(hasRoles ? roles.map((r) => r.integrations.keys()) : []));
  const integrations: CompiledAgent['integrations'] = new Map();
  for (const I of names) {
    const own = agent.integrations.get(I);
    const roleGrants = roles.flatMap((r) => (r.integrations.has(I) ? [r.integrations.get(I)!] : []));
    // C2
    const roleCeiling = union(...roleGrants.map((g) => g.max_scope ?? []));
    const declared = own?.max_scope !== undefined ? new Set(own.max_scope) : roleCeiling;
    const ceiling = hasRoles ? intersect(declared, roleCeiling) : declared;
    // C3, C4
    const denied = union(own?.deny_scope ?? [], ...roleGrants.map((g) => g.deny_scope ?? []));
    const allowed = minus(ceiling, denied);
    // C5
    const bindings = new Map<string, Binding>();
    for (const g of [...roleGrants, ...(own ? [own] : [])]) for (const [s, b] of g.bind ?? []) bindings.set(s, b);
    integrations.set(I, { allowed, denied, bindings });
  }
  // C7
  const types = union(agent.task_types.keys(), ...roles.map((r) => r.task_types.keys()));
  const taskTypes = new Map<string, Map<string, Scopes>>();
  for (const T of types) {
    const ownT = agent.task_types.get(T);
    const rolesT = roles.flatMap((r) => (r.task_types.has(T) ? [r.task_types.get(T)!] : []));
    const listed = union(ownT?.keys() ?? [], ...rolesT.map((t) => t.keys()));
    const perIntegration = new Map<string, Scopes>();
    for (const I of listed) {
      let list: Set<string>;
      if (rolesT.length > 0) {
        const roleList = union(...rolesT.map((t) => t.get(I) ?? []));
        list = ownT?.has(I) === true ? intersect(ownT.get(I)!, roleList) : roleList;
      } else list = new Set(ownT?.get(I) ?? []);
      perIntegration.set(I, intersect(list, integrations.get(I)?.allowed ?? new Set()));
    }
    taskTypes.set(T, perIntegration);
  }
  // C8
  const ttl = Math.min(agent.token_ttl ?? DEFAULT_TTL, ...roles.map((r) => r.token_ttl ?? Infinity));
  const restricted = agent.per_task_downscope === true && types.size > 0;
  return { integrations, taskTypes, ttl, restricted };
}

function readGrants(map: unknown): Map<string, Grant> {
  const out = new Map<string, Grant>();
  for (const [name, g] of (map as Map<string, Map<string, unknown>> | undefined) ?? []) {
    const bind = new Map<string, Binding>();
    for (const [s, b] of (g?.get('bind') as Map<string, Map<string, string>> | undefined) ?? []) {
      bind.set(s, { resource: b.get('resource')!, context: b.get('context')! });
    }
    out.set(name, {
      ...(g?.has('max_scope') ? { max_scope: g.get('max_scope') as string[] } : {}),
      deny_scope: (g?.get('deny_scope') as string[] | undefined) ?? [],
      bind,
    });
  }
  return out;
}

function readTaskTypes(map: unknown): TaskTypes {
  return new Map([...((map as TaskTypes | undefined) ?? [])].map(([t, m]) => [t, new Map(m ?? [])]));
}

function readAgent(body: Map<string, unknown>): AgentDoc {
  return {
    id: String(body.get('id')),
    roles: (body.get('roles') as string[] | undefined) ?? [],
    integrations: readGrants(body.get('integrations')),
    ...(body.has('token_ttl') ? { token_ttl: body.get('token_ttl') as number } : {}),
    ...(body.has('per_task_downscope') ? { per_task_downscope: body.get('per_task_downscope') as boolean } : {}),
    task_types: readTaskTypes(body.get('task_types')),
  };
}

function readRole(body: Map<string, unknown>): RoleDoc {
  return {
    id: String(body.get('id')),
    integrations: readGrants(body.get('integrations')),
    ...(body.has('token_ttl') ? { token_ttl: body.get('token_ttl') as number } : {}),
    task_types: readTaskTypes(body.get('task_types')),
  };
}
