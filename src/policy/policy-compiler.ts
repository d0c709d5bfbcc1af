import type { ErrorDetail } from '../errors/pdp-error.js';
import { compileAgent } from './agent-compiler.js';
import { byLocation, Diagnostics, where } from './compile-diagnostics.js';
import { checkIntegration, checkKnownScopes, checkRole } from './document-checks.js';
import { compileEndpointMaps } from './endpoint-map-compiler.js';
import { compileProviderMaps, warnShortProviderTtls, warnUnboundRecordScopes } from './provider-map-compiler.js';
import type {
  CompiledAgent,
  CompiledEndpointMap,
  CompiledProviderMap,
  CompiledIntegration,
  EscalationSource,
  IntegrationInfo,
  PolicyData,
  PolicyDocument,
  PolicyKind,
} from './policy-types.js';
import { emptyRecord } from './null-prototype.js';
import { closeImplications } from './scope-closure.js';
import { sortedRecord, sortedUnion } from './scope-set.js';

export interface CompileResult {
  data: PolicyData;
  /** Every integration in `data.policies.integrations`; `audience` when its file declares one. */
  integrations: Record<string, IntegrationInfo>;
  /** Endpoint maps by integration (not part of `data`); `{}` when none. */
  endpointMaps: Record<string, CompiledEndpointMap>;
  /** Provider maps by integration (not part of `data`); `{}` when none. */
  providerMaps: Record<string, CompiledProviderMap>;
  /** The roles each agent names, for the agents naming any (not part of `data`). */
  agentRoles: Record<string, string[]>;
  /** Non-empty means the set must be refused as a whole. Sorted by file, line, column. */
  errors: ErrorDetail[];
  warnings: ErrorDetail[];
}

/** Agents compiled between two pauses of {@link compileSteps} (about 15 ms of work). */
const AGENTS_PER_STEP = 200;

/**
 * Pure: schema-valid documents in, the OPA data document out. Roles and implications are resolved here so the
 * Rego does keyed lookups only. Every problem in every document is collected; nothing throws.
 */
export function compilePolicies(documents: readonly PolicyDocument[]): CompileResult {
  const steps = compileSteps(documents);
  for (;;) {
    const step = steps.next();
    if (step.done === true) return step.value;
  }
}

/**
 * {@link compilePolicies} as a generator that pauses after every AGENTS_PER_STEP agents and returns the result:
 * one code path, which the loader drives with a turn of the event loop at each pause (about 70 µs per agent, so
 * 100,000 agents would otherwise hold it for 7 s).
 */
export function* compileSteps(documents: readonly PolicyDocument[]): Generator<void, CompileResult, void> {
  const diag = new Diagnostics();
  const agents = indexById(documents, 'agent_policy', diag);
  const roles = indexById(documents, 'role_policy', diag);
  const integrationDocs = indexById(documents, 'integration', diag);

  const catalogues = new Map<string, { file: string; scopes: ReadonlySet<string> }>();
  const escalations = new Map<string, EscalationSource>();
  for (const [id, doc] of integrationDocs) {
    if (doc.body.scopes !== undefined) catalogues.set(id, { file: doc.file, scopes: new Set(doc.body.scopes) });
    if (doc.body.escalation !== undefined) escalations.set(id, doc.body.escalation);
  }
  for (const doc of integrationDocs.values()) checkIntegration(doc, diag);
  for (const role of roles.values()) {
    checkRole(role, diag);
    checkKnownScopes(role, catalogues, diag);
  }
  const compiledAgents = emptyRecord<CompiledAgent>();
  const agentRoles = emptyRecord<string[]>();
  let compiled = 0;
  for (const [id, agent] of agents) {
    checkKnownScopes(agent, catalogues, diag);
    compiledAgents[id] = compileAgent(agent, roles, diag, escalations);
    if ((agent.body.roles ?? []).length > 0) agentRoles[id] = [...(agent.body.roles ?? [])];
    if (++compiled % AGENTS_PER_STEP === 0) yield;
  }

  const used = Object.values(compiledAgents).map((a) => Object.keys(a.integrations));
  const names = sortedUnion(integrationDocs.keys(), ...used);
  const integrations = emptyRecord<CompiledIntegration>();
  const info = emptyRecord<IntegrationInfo>();
  for (const name of names) {
    const body = integrationDocs.get(name)?.body;
    integrations[name] = { implies: closeImplications(body?.implies ?? {}) };
    info[name] = body?.audience === undefined ? {} : { audience: body.audience };
  }
  const endpointMaps = compileEndpointMaps(documents, new Set(names), catalogues, diag);
  const providerMaps = compileProviderMaps(documents, catalogues, diag);
  warnShortProviderTtls(agents, compiledAgents, providerMaps, diag);
  warnUnboundRecordScopes(agents, compiledAgents, providerMaps, diag);
  return {
    data: { policies: { agents: sortedRecord(Object.entries(compiledAgents)), integrations } },
    integrations: info,
    endpointMaps,
    providerMaps,
    agentRoles,
    errors: diag.errors.sort(byLocation),
    warnings: diag.warnings.sort(byLocation),
  };
}

/** Documents of one kind by id, in file order; a second document with the same id is an error naming both files. */
function indexById<K extends Exclude<PolicyKind, 'endpoint_map' | 'provider_map'>>(
  documents: readonly PolicyDocument[],
  kind: K,
  diag: Diagnostics,
): Map<string, PolicyDocument<K>> {
  const index = new Map<string, PolicyDocument<K>>();
  const ofKind = documents.filter((d): d is PolicyDocument<K> => d.kind === kind);
  for (const doc of ofKind.sort((a, b) => compareText(a.file, b.file))) {
    const id = doc.body.id;
    const first = index.get(id);
    if (first === undefined) index.set(id, doc);
    else diag.error(doc, [kind, 'id'], `duplicate ${kind} id "${id}": also defined in ${where(first, [kind, 'id'])}`);
  }
  return new Map([...index].sort(([a], [b]) => compareText(a, b)));
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The longest `token_ttl` of the compiled agents (0 with none): `PolicySet.longestTokenTtl`. */
export function longestTokenTtl(data: PolicyData): number {
  let longest = 0;
  const agents = data.policies.agents;
  for (const id in agents) longest = Math.max(longest, (agents[id] as { token_ttl: number }).token_ttl);
  return longest;
}
