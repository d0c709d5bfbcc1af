import { type Diagnostics, where } from './compile-diagnostics.js';
import type { AwsStatementSource, GcsRuleSource, CompiledAwsMap, CompiledAwsStatement, CompiledProviderMap, MapTemplatePart, PathSegment, PolicyDocument } from './policy-types.js';
import { sortedRecord, sortedUnion } from './scope-set.js';
import type { ScopeCatalogues } from './endpoint-map-compiler.js';
import { TASK_CONTEXT_KEY_PATTERN } from '../wire/decision-v1.js';

/*
 * Provider maps (`provider_map:`, docs/providers.md): per integration, how each granted scope and the bound record
 * narrow the provider credential minted for a grant (src/providers/ mints it). Compiled here into
 * `PolicySet.providerMaps`, never into the Rego data document: like an endpoint map, a map-only change leaves every
 * decision and the revision as they were (its file and digest are in `PolicySet.files`).
 */

type MapDoc = PolicyDocument<'provider_map'>;

/**
 * Every `provider_map` document compiled, by integration. The integration must have a file listing its scopes, and
 * every one of them must be mapped (an unmapped granted scope could only be dropped or widened at mint time), and
 * nothing else. Every problem is reported through `diag` with file and line.
 */
export function compileProviderMaps(documents: readonly PolicyDocument[], catalogues: ScopeCatalogues, diag: Diagnostics): Record<string, CompiledProviderMap> {
  const maps = documents.filter((d): d is MapDoc => d.kind === 'provider_map').sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const byIntegration = new Map<string, { doc: MapDoc; map: CompiledProviderMap }>();
  for (const doc of maps) {
    const name = doc.body.integration;
    const first = byIntegration.get(name);
    if (first !== undefined) {
      diag.error(doc, ['provider_map', 'integration'], `a second provider map for integration ${name}: the first is ${where(first.doc, ['provider_map', 'integration'])}`);
      continue;
    }
    const catalogue = catalogues.get(name);
    if (catalogue === undefined) {
      diag.error(doc, ['provider_map', 'integration'], `integration "${name}" has no integration file listing its scopes: a provider map must map every scope of it`);
    } else {
      for (const scope of catalogue.scopes) {
        if (!Object.hasOwn(doc.body.scopes, scope)) {
          diag.error(doc, ['provider_map', 'scopes'], `scope "${scope}" of integration ${name} (${catalogue.file}) is not mapped: every scope must be`, true);
        }
      }
    }
    const mapped = Object.entries(doc.body.scopes).filter(([scope]) => {
      if (catalogue === undefined || catalogue.scopes.has(scope)) return true;
      diag.error(doc, ['provider_map', 'scopes', scope], `"${scope}" is not a scope of integration ${name} (see the scopes list in ${catalogue.file})`, true);
      return false;
    });
    if (doc.body.kind === 'aws') {
      const scopes = mapped.map(([scope, statements]) => [scope, (statements as AwsStatementSource[]).map((s, i) => compileStatement(doc, ['provider_map', 'scopes', scope, i], s, diag))] as const);
      const map: CompiledAwsMap = { integration: name, kind: 'aws', scopes: sortedRecord(scopes) };
      const chars = longestSessionPolicyChars(map);
      if (chars > MAP_LIMITS.stsPolicyChars) {
        diag.warning(
          doc,
          ['provider_map', 'scopes'],
          `the session policy of all these scopes together, each template value at its longest (${MAP_LIMITS.templateValueChars} characters), is ${chars} characters: STS takes at most ${MAP_LIMITS.stsPolicyChars}, so a grant of many of them may be refused before STS is called (provider_failed)`,
          true,
        );
      }
      byIntegration.set(name, { doc, map });
    } else if (doc.body.kind === 'gcp_storage') {
      const scopes = mapped.map(
        ([scope, rules]) =>
          [
            scope,
            (rules as GcsRuleSource[]).map((r, i) => {
              let prefix: MapTemplatePart[] | null = null;
              if (r.object_prefix !== undefined) {
                const parsed = parseMapTemplate(r.object_prefix);
                const problem = typeof parsed === 'string' ? parsed : placeholderBoundaryProblem(parsed);
                if (problem !== null) diag.error(doc, ['provider_map', 'scopes', scope, i, 'object_prefix'], `invalid template: ${problem}`);
                else prefix = parsed as MapTemplatePart[];
              }
              return { bucket: r.bucket, role: r.role, object_prefix: prefix };
            }),
          ] as const,
      );
      const rules = scopes.reduce((n, [, list]) => n + list.length, 0);
      if (rules > MAP_LIMITS.gcsBoundaryRules) {
        diag.warning(
          doc,
          ['provider_map', 'scopes'],
          `all these scopes together map to ${rules} access boundary rules: Google STS takes at most ${MAP_LIMITS.gcsBoundaryRules}, so a grant of many of them is refused before Google is called (provider_failed)`,
          true,
        );
      }
      byIntegration.set(name, { doc, map: { integration: name, kind: 'gcp_storage', scopes: sortedRecord(scopes) } });
    } else {
      const subject = parseMapTemplate(doc.body.subject ?? '');
      if (typeof subject === 'string') diag.error(doc, ['provider_map', 'subject'], `invalid template: ${subject}`);
      const scopes = mapped.map(([scope, urls]) => [scope, sortedUnion(urls as string[])] as const);
      byIntegration.set(name, { doc, map: { integration: name, kind: 'google_workspace', subject: typeof subject === 'string' ? [] : subject, scopes: sortedRecord(scopes) } });
    }
  }
  return sortedRecord([...byIntegration].map(([name, { map }]) => [name, map] as const));
}

function compileStatement(doc: MapDoc, at: PathSegment[], s: AwsStatementSource, diag: Diagnostics): CompiledAwsStatement {
  const template = (text: string, path: PathSegment[]): MapTemplatePart[] => {
    const parsed = parseMapTemplate(text);
    const problem = typeof parsed === 'string' ? parsed : placeholderBoundaryProblem(parsed);
    if (problem !== null) {
      diag.error(doc, path, `invalid template: ${problem}`);
      return [{ text }];
    }
    return parsed as MapTemplatePart[];
  };
  const conditions: Record<string, Record<string, MapTemplatePart[][]>> = {};
  for (const [op, keys] of Object.entries(s.conditions ?? {})) {
    const compiled: Record<string, MapTemplatePart[][]> = {};
    for (const [key, values] of Object.entries(keys)) compiled[key] = values.map((v, i) => template(v, [...at, 'conditions', op, key, i]));
    conditions[op] = compiled;
  }
  return {
    actions: sortedUnion(s.actions),
    resources: s.resources.map((r, i) => template(r, [...at, 'resources', i])),
    conditions,
  };
}

/**
 * The providers' limits a map is checked against at compile time (the same numbers as `PROVIDER_LIMITS` in
 * src/providers/provider-limits.ts, which refuses a request past them at mint time; `policy/` imports nothing of ours).
 */
export const MAP_LIMITS = {
  /** AssumeRole's session policy plaintext. */
  stsPolicyChars: 2048,
  /** A Credential Access Boundary's rules. */
  gcsBoundaryRules: 10,
  /** The longest value a template takes (`TEMPLATE_VALUE` in src/providers/map-templates.ts). */
  templateValueChars: 128,
} as const;

/**
 * The length of the session policy JSON of a grant of every scope of `map`, each template value at its longest: the
 * same document `sessionPolicy` (src/providers/aws-sts.ts) builds, with every placeholder filled with 128 characters.
 */
export function longestSessionPolicyChars(map: CompiledAwsMap): number {
  const fill = (parts: readonly MapTemplatePart[]): string => parts.map((p) => ('text' in p ? p.text : 'x'.repeat(MAP_LIMITS.templateValueChars))).join('');
  const statements = Object.values(map.scopes).flatMap((list) =>
    list.map((s) => ({
      Effect: 'Allow',
      Action: [...s.actions],
      Resource: s.resources.map(fill),
      ...(Object.keys(s.conditions).length === 0
        ? {}
        : { Condition: Object.fromEntries(Object.entries(s.conditions).map(([op, keys]) => [op, Object.fromEntries(Object.entries(keys).map(([key, values]) => [key, values.map(fill)]))])) }),
    })),
  );
  return JSON.stringify({ Version: '2012-10-17', Statement: statements }).length;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;
const TASK_KEY = new RegExp(TASK_CONTEXT_KEY_PATTERN);

/** `{record.id}`, `{record.type}`, `{task.<context key>}` and text without braces; a string says why not. */
export function parseMapTemplate(text: string): MapTemplatePart[] | string {
  const parts: MapTemplatePart[] = [];
  let last = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    const literal = text.slice(last, m.index);
    if (/[{}]/.test(literal)) return `unbalanced brace in "${text}"`;
    if (literal !== '') parts.push({ text: literal });
    const name = m[1] ?? '';
    if (name === 'record.id' || name === 'record.type') parts.push({ from: 'record', name: name === 'record.id' ? 'id' : 'type' });
    else if (name.startsWith('task.') && TASK_KEY.test(name.slice(5))) parts.push({ from: 'task', name: name.slice(5) });
    else return `{${name}} is not {record.id}, {record.type} or {task.<context key>}`;
    last = m.index + m[0].length;
  }
  const tail = text.slice(last);
  if (/[{}]/.test(tail)) return `unbalanced brace in "${text}"`;
  if (tail !== '') parts.push({ text: tail });
  return parts;
}

/**
 * A placeholder in a pattern (an AWS resource or condition value, a GCS object prefix) must end where a value cannot
 * go on: at the end of the text, or before `/` or `:`. Followed by `*`, `?` or a character a value may hold (a
 * letter, a digit, `._@+=,-`), or by another placeholder, the pattern reaches further than the value:
 * `arn:aws:s3:::bucket/{record.id}*` with id `acme` also matches `acme-evil/…`. Null when every placeholder ends so;
 * otherwise why not. (A `*` after the `/` is fine: `customers/{record.id}/*`.)
 */
export function placeholderBoundaryProblem(parts: readonly MapTemplatePart[]): string | null {
  for (const [i, part] of parts.entries()) {
    if ('text' in part) continue;
    const next = parts[i + 1];
    if (next === undefined || ('text' in next && /^[/:]/.test(next.text))) continue;
    const label = `{${part.from}.${part.name}}`;
    const after = 'text' in next ? JSON.stringify(next.text[0]) : `{${next.from}.${next.name}}`;
    return `${label} is followed by ${after}: a value could be continued there (id "acme" would also match "acme-evil…"); end the placeholder with / or : or the end of the text`;
  }
  return null;
}

/** The shortest credential each kind mints (AWS STS's minimum; Google's one-hour tokens): docs/providers.md. */
export const PROVIDER_MINIMUM_SECONDS: Readonly<Record<CompiledProviderMap['kind'], number>> = { aws: 900, google_workspace: 3600, gcp_storage: 3600 };

/**
 * A warning for each agent whose token_ttl (after its roles) is below the minimum of a provider-mapped integration it
 * may use: every redeem of it would be refused `provider_ttl_too_short` (when the config names that provider).
 */
export function warnShortProviderTtls(
  agents: ReadonlyMap<string, PolicyDocument<'agent_policy'>>,
  compiled: Readonly<Record<string, { token_ttl: number; integrations: Readonly<Record<string, unknown>> }>>,
  maps: Readonly<Record<string, CompiledProviderMap>>,
  diag: Diagnostics,
): void {
  for (const { doc, agent, integration, map } of mappedIntegrations(agents, compiled, maps)) {
    const minimum = PROVIDER_MINIMUM_SECONDS[map.kind];
    if (agent.token_ttl >= minimum) continue;
    const at: PathSegment[] = doc.body.token_ttl === undefined ? ['agent_policy', 'id'] : ['agent_policy', 'token_ttl'];
    diag.warning(doc, at, `token_ttl ${agent.token_ttl} s is below the ${minimum} s a ${map.kind} credential for ${integration} lives at least: its redeems will be refused (provider_ttl_too_short)`);
  }
}

/** Each agent's integrations that a provider map covers, with the agent's document and compiled policy. */
function* mappedIntegrations<A extends { integrations: Readonly<Record<string, unknown>> }>(
  agents: ReadonlyMap<string, PolicyDocument<'agent_policy'>>,
  compiled: Readonly<Record<string, A>>,
  maps: Readonly<Record<string, CompiledProviderMap>>,
): Generator<{ doc: PolicyDocument<'agent_policy'>; agent: A; integration: string; grant: A['integrations'][string]; map: CompiledProviderMap }> {
  for (const [id, doc] of agents) {
    const agent = Object.hasOwn(compiled, id) ? compiled[id] : undefined;
    if (agent === undefined) continue;
    for (const [integration, grant] of Object.entries(agent.integrations)) {
      const map = Object.hasOwn(maps, integration) ? maps[integration] : undefined;
      if (map !== undefined) yield { doc, agent, integration, grant: grant as A['integrations'][string], map };
    }
  }
}

/** Whether a scope's mapping draws on the decision's record (`{record.id}`, `{record.type}`). */
function mapsWithRecord(map: CompiledProviderMap, scope: string): boolean {
  const usesRecord = (parts: readonly MapTemplatePart[] | null): boolean => parts !== null && parts.some((p) => 'from' in p && p.from === 'record');
  if (map.kind === 'aws') {
    const statements = Object.hasOwn(map.scopes, scope) ? map.scopes[scope] ?? [] : [];
    return statements.some((st) => st.resources.some(usesRecord) || Object.values(st.conditions).some((byKey) => Object.values(byKey).some((values) => values.some(usesRecord))));
  }
  if (map.kind === 'gcp_storage') {
    const rules = Object.hasOwn(map.scopes, scope) ? map.scopes[scope] ?? [] : [];
    return rules.some((r) => usesRecord(r.object_prefix));
  }
  return usesRecord(map.subject);
}

/**
 * A warning for each scope an agent may be granted whose provider mapping draws on the record (`{record.id}`) while
 * the agent's policy does not bind that scope to a record: the credential is then narrowed to whatever record the
 * agent names (of any type), which a binding (`bind:`) would tie to its task's own.
 */
export function warnUnboundRecordScopes(
  agents: ReadonlyMap<string, PolicyDocument<'agent_policy'>>,
  compiled: Readonly<Record<string, { integrations: Readonly<Record<string, { allowed: Readonly<Record<string, true>>; bindings: Readonly<Record<string, unknown>> }>> }>>,
  maps: Readonly<Record<string, CompiledProviderMap>>,
  diag: Diagnostics,
): void {
  for (const { doc, integration, grant, map } of mappedIntegrations(agents, compiled, maps)) {
    for (const scope of Object.keys(grant.allowed).sort()) {
      if (Object.hasOwn(grant.bindings, scope) || !mapsWithRecord(map, scope)) continue;
      diag.warning(
        doc,
        ['agent_policy', 'integrations', integration],
        `${scope} is mapped with {record.*} by the provider map of ${integration} but not bound to a record here: its credential reaches whatever record the agent names (bind it to the task's record with bind:)`,
      );
    }
  }
}
