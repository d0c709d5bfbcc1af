/**
 * The AuthZEN Authorization API 1.0 over our evaluator, store and audit trail (docs/doors.md). A request is routed
 * by its subject's type:
 *
 * - `agent`: a decision request in AuthZEN's clothes. Subject id → agent, action name → the one scope, resource →
 *   the record (or `{ type: "integration", id }` for a call on no record), context → integration and task. It goes
 *   through the Decider exactly as `POST /v1/decide` does (caller and task checks, trusted task context, a
 *   `decision` event, a decision id redeemable for a token), and the AuthZEN decision is true only when that exact
 *   scope was granted.
 * - a type configured under `authzen.subjects`: a Rego pack's entrypoint, given the request as its input, recorded
 *   as an `evaluation` event (`rule-evaluator.ts`).
 * - anything else: `decision: false` (fail closed), nothing evaluated; the answer is recorded all the same (an
 *   `evaluation` event under `UNROUTED_PATH`), as is a search no policy can enumerate.
 *
 * Searches enumerate candidates (the agent's grantable scopes; a pack's entity catalog), evaluate each without
 * recording it, and record the one answer as an `evaluation` event.
 */
import { createHash } from 'node:crypto';
import type { AuthzenConfig, AuthzenSubjectRoute, CallerConfig } from '../config/config-types.js';
import { isPdpError, PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import type {
  AuthzenDecisionV1,
  AuthzenEvaluationRequestV1,
  AuthzenEvaluationsRequestV1,
  AuthzenEvaluationsResponseV1,
  AuthzenMetadataV1,
  AuthzenProperties,
  AuthzenSearchRequestV1,
  AuthzenSearchResponseV1,
  EvaluationItem,
} from '../wire/authzen-v1.js';
import type { DecisionRequestV1, DecisionResponseV1 } from '../wire/decision-v1.js';
import { parseDecisionRequest } from '../wire/request-parsers.js';
import { maySpeakFor } from './caller-agents.js';
import { NO_POLICY_REVISION, type Decider } from './decider.js';
import { buildEvaluationInput } from './evaluation-input.js';
import { grantableScopes } from './grantable-scopes.js';
import type { PolicyEngine } from './policy-engine.js';
import type { RuleEvaluator } from './rule-evaluator.js';
import { resolveTask, type RegisteredTask, type TaskLookup } from './trusted-task.js';

/** The subject type that means one of our agents. */
export const AGENT_SUBJECT = 'agent';
/** The path an agent search's answer is recorded under (its `evaluation` event): not the decision's own path. */
export const AGENT_SEARCH_PATH = 'agentpdp/search';
/**
 * The path of an answer no entrypoint gave (its `evaluation` event): a subject type no policy answers for
 * (`decision: false`), or a search no policy can enumerate (no results).
 */
export const UNROUTED_PATH = 'authzen/unrouted';

/** The resource type that means "no record": the call is on the integration named by the id. */
export const INTEGRATION_RESOURCE = 'integration';

export interface AuthzenServiceOptions {
  config: AuthzenConfig;
  decider: Pick<Decider, 'decide'>;
  rules: RuleEvaluator;
  engine: Pick<PolicyEngine, 'active' | 'evaluate'>;
  store: TaskLookup;
  now?: () => Date;
}

type Found = { type: string; id: string; properties?: AuthzenProperties } | { name: string; properties?: AuthzenProperties };

export class AuthzenService {
  readonly #o: AuthzenServiceOptions;

  constructor(options: AuthzenServiceOptions) {
    this.#o = options;
  }

  /** Largest `evaluations` array of one request (`authzen.max_evaluations`). */
  get maxEvaluations(): number {
    return this.#o.config.max_evaluations;
  }

  metadata(): AuthzenMetadataV1 {
    const base = this.#o.config.pdp_url;
    return {
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`,
      search_subject_endpoint: `${base}/access/v1/search/subject`,
      search_resource_endpoint: `${base}/access/v1/search/resource`,
      search_action_endpoint: `${base}/access/v1/search/action`,
    };
  }

  /** One Access Evaluation. Errors of the request itself (a malformed agent request, a forbidden agent) throw. */
  async evaluate(caller: CallerConfig, request: AuthzenEvaluationRequestV1, traceId: string | null, tasks?: TaskLookup): Promise<AuthzenDecisionV1> {
    const type = request.subject.type;
    if (type === AGENT_SUBJECT) return this.#agentDecision(caller, request, traceId, tasks);
    const route = this.#route(type);
    if (route === undefined) {
      // Nothing is evaluated, but the answer is still recorded: no answer of this door escapes the chain.
      const context = { reason_code: 'subject_type_unknown', reason: `no policy answers for subjects of type ${type}` };
      const recorded = await this.#o.rules.record(caller, 'authzen', UNROUTED_PATH, request, { result: { decision: false, context } }, this.#revision(), traceId);
      return { decision: false, context: { ...context, decision_id: recorded.decision_id } };
    }
    const answer = await this.#o.rules.evaluate(caller, 'authzen', route.decision, request, traceId).catch(misrouted(type));
    const decided = packDecision(answer.defined ? answer.result : undefined);
    return { decision: decided.decision, context: { ...(decided.context ?? {}), decision_id: answer.decision_id } };
  }

  /**
   * Access Evaluations: every item under `execute_all` (concurrently: the store commits their records together),
   * or in order until the first deny (`deny_on_first_deny`) or permit (`permit_on_first_permit`), answering the
   * items evaluated. An item that is malformed or refused is that item's `decision: false` with the error in its
   * context; it says nothing of the other items. `itemFailed` is told of each item's error and the agent it named (the
   * route audits the refusals among them, as the pipeline audits a whole request's).
   */
  async evaluations(
    caller: CallerConfig,
    parsed: AuthzenEvaluationsRequestV1,
    traceId: string | null,
    itemFailed?: (err: unknown, agentId: string | undefined) => void,
  ): Promise<AuthzenDecisionV1 | AuthzenEvaluationsResponseV1> {
    if (parsed.single !== undefined) return this.evaluate(caller, parsed.single, traceId);
    const items = parsed.items ?? [];
    // The items of a batch usually share their task: it is read once for all of them.
    const read = new Map<string, Promise<RegisteredTask | undefined>>();
    const tasks: TaskLookup = {
      getTask: (id) => {
        let task = read.get(id);
        if (task === undefined) read.set(id, (task = Promise.resolve(this.#o.store.getTask(id))));
        return task;
      },
    };
    const one = (item: EvaluationItem, i: number): Promise<AuthzenDecisionV1> =>
      'invalid' in item
        ? Promise.resolve(itemError(400, 'invalid_request', 'the evaluation is incomplete', item.invalid))
        : this.evaluate(caller, item.request, traceId, tasks).catch((err: unknown) => {
            itemFailed?.(err, item.request.subject.type === AGENT_SUBJECT ? item.request.subject.id : undefined);
            // The item's own members are named from the batch's root, as a malformed item's are.
            return errorDecision(err, `evaluations[${i}].`);
          });
    if (parsed.semantic === 'execute_all') return { evaluations: await Promise.all(items.map(one)) };
    const stopOn = parsed.semantic === 'deny_on_first_deny' ? false : true;
    const evaluations: AuthzenDecisionV1[] = [];
    for (const [i, item] of items.entries()) {
      const decision = await one(item, i);
      evaluations.push(decision);
      if (decision.decision === stopOn) break;
    }
    return { evaluations };
  }

  /** A search: candidates evaluated one by one (not recorded), the answer recorded once, paged. */
  async search(caller: CallerConfig, request: AuthzenSearchRequestV1, traceId: string | null): Promise<AuthzenSearchResponseV1> {
    const type = request.subject.type;
    let found: { results: Found[]; path: string; revision: string; context?: AuthzenProperties };
    if (type === AGENT_SUBJECT) {
      found = await this.#agentSearch(caller, request);
    } else {
      const route = this.#route(type);
      if (route === undefined || route.entities === null) {
        // No policy enumerates these subjects: an empty list, recorded like any other answer.
        found = { results: [], path: UNROUTED_PATH, revision: this.#revision() };
      } else {
        try {
          found = this.#packSearch(route, request);
        } catch (err) {
          return misrouted(type)(err);
        }
      }
    }
    const page = pageOf(request, found.results, this.#o.config.max_page_size);
    const recorded = await this.#o.rules.record(caller, 'authzen', found.path, { search: request.kind, request }, { result: { results: found.results.map(ref) } }, found.revision, traceId);
    return {
      page: page.page,
      context: { ...(found.context ?? {}), decision_id: recorded.decision_id },
      results: page.results.map(ref),
    };
  }

  /** The revision of the policy in force, recorded with an answer no entrypoint gave. */
  #revision(): string {
    return this.#o.engine.active?.revision ?? NO_POLICY_REVISION;
  }

  #route(type: string): AuthzenSubjectRoute | undefined {
    const subjects = this.#o.config.subjects;
    return Object.hasOwn(subjects, type) ? subjects[type] : undefined;
  }

  async #agentDecision(caller: CallerConfig, request: AuthzenEvaluationRequestV1, traceId: string | null, tasks: TaskLookup | undefined): Promise<AuthzenDecisionV1> {
    const decisionRequest = toDecisionRequest(request);
    const scope = request.action.name;
    const answer = await this.#o.decider.decide(caller, decisionRequest, traceId, tasks === undefined ? {} : { tasks }).catch((err: unknown) => {
      // The Decider names /v1/decide's fields; the caller sent AuthZEN's.
      if (!isPdpError(err) || err.details.length === 0) throw err;
      throw new PdpError(err.code, err.message, { details: err.details.map((d) => ({ ...d, path: authzenPath(d.path) })), cause: err });
    });
    return { decision: answer.allow && answer.outcome === 'allow' && answer.granted_scopes.includes(scope), context: agentContext(answer) };
  }

  /**
   * Action search for an agent: which scopes it may get on an integration for a task (and a record). The candidates
   * are the scopes the compiled policy could grant (`grantable-scopes.ts`); each is then evaluated by the real
   * policy, as a decision for that scope alone would be, so a record binding or an extension rule removes it.
   * Subject and resource searches over agents are not answered (no policy here enumerates agents or records).
   */
  async #agentSearch(caller: CallerConfig, request: AuthzenSearchRequestV1): Promise<{ results: Found[]; path: string; revision: string; context?: AuthzenProperties }> {
    const active = this.#o.engine.active;
    if (active === undefined) throw new PdpError('bundle_missing', 'no policy is loaded');
    if (request.kind !== 'action') {
      return { results: [], path: AGENT_SEARCH_PATH, revision: active.revision, context: { reason_code: 'not_searchable', reason: `${request.kind} search is not answered for agents` } };
    }
    const base = toDecisionRequest({ subject: request.subject as AuthzenEvaluationRequestV1['subject'], action: { name: 'search' }, resource: request.resource as AuthzenEvaluationRequestV1['resource'], ...(request.context === undefined ? {} : { context: request.context }) }, false);
    if (!maySpeakFor(caller, base.agent_id)) {
      throw new PdpError('forbidden_agent', `caller ${caller.id} may not ask about agent ${base.agent_id}`, { details: [{ path: 'subject.id', message: 'not an agent this caller may speak for' }] });
    }
    const now = (this.#o.now ?? (() => new Date()))();
    const task = await resolveTask(this.#o.store, caller, base, now);
    if (task.denial !== undefined) {
      return { results: [], path: AGENT_SEARCH_PATH, revision: active.revision, context: { reason_code: task.denial.code } };
    }
    const agents = active.policySet.data.policies.agents;
    const agent = Object.hasOwn(agents, base.agent_id) ? agents[base.agent_id] : undefined;
    const candidates = grantableScopes(agent, task.input.type, [base.integration])[base.integration]?.grantable ?? [];
    const results: Found[] = [];
    for (const scope of candidates) {
      const input = buildEvaluationInput({ ...base, scopes: [scope] }, caller.id, task.input, now);
      const { evaluation } = this.#o.engine.evaluate(input);
      if (evaluation.outcome === 'allow' && evaluation.granted_scopes.includes(scope)) results.push({ name: scope });
    }
    return { results, path: AGENT_SEARCH_PATH, revision: active.revision };
  }

  /** A pack's search: its catalog's candidates of the searched kind, each evaluated with the request around it. */
  #packSearch(route: AuthzenSubjectRoute, request: AuthzenSearchRequestV1): { results: Found[]; path: string; revision: string } {
    const catalog = this.#o.rules.peek(route.entities as string, {});
    const entities = isObject(catalog.result) ? catalog.result : {};
    const results: Found[] = [];
    const listed = (key: string): Record<string, unknown>[] => (Array.isArray(entities[key]) ? (entities[key] as unknown[]).filter(isObject) : []);
    const candidates =
      request.kind === 'action'
        ? listed('actions').filter((a) => typeof a['name'] === 'string')
        : listed(request.kind === 'subject' ? 'subjects' : 'resources').filter((e) => e['type'] === (request.kind === 'subject' ? request.subject.type : request.resource.type) && typeof e['id'] === 'string');
    for (const candidate of candidates) {
      const evaluation = candidateRequest(request, candidate);
      const answer = this.#o.rules.peek(route.decision, evaluation);
      if (packDecision(answer.defined ? answer.result : undefined).decision) {
        results.push(request.kind === 'action' ? { name: candidate['name'] as string } : { type: candidate['type'] as string, id: candidate['id'] as string });
      }
    }
    return { results, path: route.decision, revision: catalog.revision };
  }
}

/**
 * A route naming an entrypoint the bundle lacks is the deployment's fault, not the caller's: a 503 (nothing
 * decided), never the OPA data API's 404 about a path the caller did not send. The load warns about it too.
 */
function misrouted(type: string): (err: unknown) => never {
  return (err) => {
    if (isPdpError(err) && err.code === 'entrypoint_not_found') {
      throw new PdpError('evaluation_failed', `authzen.subjects.${type} names an entrypoint the policy bundle does not export`, { cause: err });
    }
    throw err;
  };
}

/** The evaluation a search candidate stands for: the request, with the candidate in the searched-for place. */
function candidateRequest(request: AuthzenSearchRequestV1, candidate: Record<string, unknown>): AuthzenEvaluationRequestV1 {
  // The request's own properties for the searched-for entity win over the catalog's (they are the PEP's facts).
  const properties = (own: AuthzenProperties | undefined): AuthzenProperties | undefined => {
    const merged = { ...(isObject(candidate['properties']) ? candidate['properties'] : {}), ...(own ?? {}) };
    return Object.keys(merged).length === 0 ? undefined : merged;
  };
  const withProps = <T extends object>(entity: T, props: AuthzenProperties | undefined): T => (props === undefined ? entity : { ...entity, properties: props });
  const context = request.context === undefined ? {} : { context: request.context };
  switch (request.kind) {
    case 'subject':
      return { subject: withProps({ type: request.subject.type, id: candidate['id'] as string }, properties(request.subject.properties)), action: request.action!, resource: request.resource as AuthzenEvaluationRequestV1['resource'], ...context };
    case 'resource':
      return { subject: request.subject as AuthzenEvaluationRequestV1['subject'], action: request.action!, resource: withProps({ type: request.resource.type, id: candidate['id'] as string }, properties(request.resource.properties)), ...context };
    case 'action':
      return { subject: request.subject as AuthzenEvaluationRequestV1['subject'], action: withProps({ name: candidate['name'] as string }, isObject(candidate['properties']) ? candidate['properties'] : undefined), resource: request.resource as AuthzenEvaluationRequestV1['resource'], ...context };
  }
}

/** A pack's value as a decision: `true`/`false`, or `{ decision: boolean, context?: object }`; anything else denies. */
function packDecision(value: unknown): AuthzenDecisionV1 {
  if (typeof value === 'boolean') return { decision: value };
  if (isObject(value) && typeof value['decision'] === 'boolean') {
    return { decision: value['decision'], ...(isObject(value['context']) ? { context: value['context'] } : {}) };
  }
  return { decision: false, context: { reason_code: value === undefined ? 'policy_undefined' : 'policy_result_invalid' } };
}

/**
 * The decision request an agent's AuthZEN request stands for. `context.integration` names the integration (or the
 * resource does, as `{ type: "integration", id }`, for a call on no record); `context.task_id`, or `context.task`
 * (`{ id, type?, context? }`, asserting context as `/v1/decide` allows it), the task; `context.ttl_seconds` the
 * lifetime asked for. Checked with `/v1/decide`'s own schema; a problem is a 400 naming the AuthZEN member.
 */
function toDecisionRequest(r: AuthzenEvaluationRequestV1, withScope = true): DecisionRequestV1 {
  const ctx = r.context ?? {};
  const onIntegration = r.resource.type === INTEGRATION_RESOURCE;
  const task = ctx['task'] !== undefined ? ctx['task'] : ctx['task_id'] !== undefined ? { id: ctx['task_id'] } : undefined;
  const candidate: Record<string, unknown> = {
    agent_id: r.subject.id,
    task,
    integration: onIntegration ? r.resource.id : ctx['integration'],
    scopes: withScope ? [r.action.name] : ['search'],
    ...(onIntegration ? {} : { resource: { type: r.resource.type, id: r.resource.id } }),
    ...(ctx['ttl_seconds'] === undefined ? {} : { ttl_seconds: ctx['ttl_seconds'] }),
  };
  const missing: ErrorDetail[] = [];
  if (task === undefined) missing.push({ path: 'context.task_id', message: 'an agent request names its task (context.task_id, or context.task)' });
  if (candidate['integration'] === undefined) missing.push({ path: 'context.integration', message: 'an agent request names its integration (context.integration, or a resource of type integration)' });
  if (missing.length > 0) throw new PdpError('invalid_request', missing.map((d) => d.message).join('; '), { details: missing });
  try {
    return parseDecisionRequest(candidate);
  } catch (err) {
    if (!isPdpError(err)) throw err;
    const details = (err.details ?? []).map((d) => ({ ...d, path: authzenPath(d.path) }));
    throw new PdpError('invalid_request', `invalid agent request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  }
}

/** A `/v1/decide` field's name in the AuthZEN request it came from. */
function authzenPath(path: string): string {
  const trimmed = path.replace(/^\//, '').replace(/\//g, '.');
  if (trimmed.startsWith('agent_id')) return 'subject.id';
  if (trimmed.startsWith('scopes')) return 'action.name';
  if (trimmed.startsWith('integration')) return 'context.integration';
  if (trimmed.startsWith('task')) return `context.${trimmed}`;
  if (trimmed.startsWith('ttl_seconds')) return 'context.ttl_seconds';
  return trimmed;
}

/** What an agent decision's AuthZEN context carries: our answer, with the decision id a PEP redeems. */
function agentContext(a: DecisionResponseV1): AuthzenProperties {
  return {
    decision_id: a.decision_id,
    outcome: a.outcome,
    reasons: a.reasons,
    granted_scopes: a.granted_scopes,
    denied_scopes: a.denied_scopes,
    policy_revision: a.policy_revision,
    token_ttl_seconds: a.token_ttl_seconds,
    redeemable_until: a.redeemable_until,
    ...(a.access_request === undefined ? {} : { access_request: a.access_request }),
  };
}

function itemError(status: number, code: string, message: string, details?: readonly ErrorDetail[]): AuthzenDecisionV1 {
  return { decision: false, context: { error: { status, code, message, ...(details === undefined || details.length === 0 ? {} : { details }) } } };
}

/** A refused or failed item: its error, with no more said than a whole-request error would say (5xx: no message). */
function errorDecision(err: unknown, prefix = ''): AuthzenDecisionV1 {
  if (isPdpError(err)) {
    const details = err.status >= 500 ? undefined : err.details.map((d) => ({ ...d, path: d.path === '(body)' ? prefix.slice(0, -1) || d.path : `${prefix}${d.path}` }));
    return itemError(err.status, err.code, err.status >= 500 ? 'the evaluation could not be made' : err.message, details);
  }
  return itemError(500, 'internal', 'the evaluation could not be made');
}

function ref(found: Found): { type: string; id: string } | { name: string } {
  return 'name' in found ? { name: found.name } : { type: found.type, id: found.id };
}

/**
 * Pages of a result list. The token is opaque to the PEP: the offset and a digest of the request without its
 * page, so a token used with another request (which the spec says must not change mid-pagination) is refused.
 */
function pageOf(request: AuthzenSearchRequestV1, results: Found[], maxPageSize: number): { page: { next_token: string; count: number; total: number }; results: Found[] } {
  // Everything but the page must stay the same between pages: the digest covers it. The page size travels in the
  // token, so a follow-up may send the token alone (as the certification harness does), or the same limit.
  const { page, ...rest } = request;
  const digest = createHash('sha256').update(JSON.stringify(rest)).digest('base64url').slice(0, 16);
  let offset = 0;
  let limit = Math.min(page?.limit ?? maxPageSize, maxPageSize);
  if (page?.token !== undefined && page.token !== '') {
    const m = /^([0-9]{1,9})\.([0-9]{1,4})\.([A-Za-z0-9_-]{16})$/.exec(Buffer.from(page.token, 'base64url').toString('latin1'));
    if (m === null || m[3] !== digest || (page.limit !== undefined && Math.min(page.limit, maxPageSize) !== Number(m[2]))) {
      throw new PdpError('invalid_request', 'page.token is not a token of this search (the request and its page size must not change between pages)', { details: [{ path: 'page.token', message: 'not a token of this search' }] });
    }
    // The token is opaque, not secret: a hand-made one may name any offset (a page a PEP could reach anyway), never a
    // page larger than authzen.max_page_size.
    offset = Number(m[1]);
    limit = Math.min(Number(m[2]), maxPageSize);
  }
  const slice = results.slice(offset, offset + limit);
  const next = offset + slice.length;
  // A page of none (limit 0) ends the list: a token naming the same offset again would loop a PEP forever.
  const nextToken = slice.length > 0 && next < results.length ? Buffer.from(`${next}.${limit}.${digest}`, 'latin1').toString('base64url') : '';
  return { page: { next_token: nextToken, count: slice.length, total: results.length }, results: slice };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
