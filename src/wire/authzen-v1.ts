/**
 * The OpenID AuthZEN Authorization API 1.0 on the wire: its information model (subject, action, resource, context,
 * decision), the Access Evaluation(s) and Search requests and answers, and the PDP metadata. Parsed by hand rather
 * than by a closed JSON Schema because the spec asks for two things a closed schema cannot give: unknown members
 * are ignored (forward compatibility), and in a batch one malformed item is that item's `decision: false`, not a
 * 400 for the whole request.
 */
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { jsonValueProblems } from './validate-body.js';

export type AuthzenProperties = Record<string, unknown>;

export interface AuthzenSubject {
  type: string;
  id: string;
  properties?: AuthzenProperties;
}
export type AuthzenResource = AuthzenSubject;
export interface AuthzenAction {
  name: string;
  properties?: AuthzenProperties;
}

export interface AuthzenEvaluationRequestV1 {
  subject: AuthzenSubject;
  action: AuthzenAction;
  resource: AuthzenResource;
  context?: AuthzenProperties;
}

export interface AuthzenDecisionV1 {
  decision: boolean;
  context?: AuthzenProperties;
}

export const EVALUATIONS_SEMANTICS = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;
export type EvaluationsSemantic = (typeof EVALUATIONS_SEMANTICS)[number];

/** One item of a batch after the defaults are merged: a request, or why the item is not one (its answer is a deny). */
export type EvaluationItem = { request: AuthzenEvaluationRequestV1 } | { invalid: ErrorDetail[] };

export interface AuthzenEvaluationsRequestV1 {
  /** Absent when the request had no (or an empty) `evaluations` array: then it is one evaluation. */
  items?: EvaluationItem[];
  single?: AuthzenEvaluationRequestV1;
  semantic: EvaluationsSemantic;
}

export interface AuthzenEvaluationsResponseV1 {
  evaluations: AuthzenDecisionV1[];
}

export type SearchKind = 'subject' | 'resource' | 'action';

/** A search request, checked for its kind: the searched-for entity has a type only (its id is ignored). */
export interface AuthzenSearchRequestV1 {
  kind: SearchKind;
  /** For a subject search: `{ type }` (and any properties); else the input subject. */
  subject: { type: string; id?: string; properties?: AuthzenProperties };
  /** Absent for an action search. */
  action?: AuthzenAction;
  resource: { type: string; id?: string; properties?: AuthzenProperties };
  context?: AuthzenProperties;
  page?: { token?: string; limit?: number };
}

export interface AuthzenSearchResponseV1 {
  page?: { next_token: string; count?: number; total?: number };
  context?: AuthzenProperties;
  results: Array<{ type: string; id: string } | { name: string }>;
}

/** `GET /.well-known/authzen-configuration`. */
export interface AuthzenMetadataV1 {
  policy_decision_point: string;
  access_evaluation_endpoint: string;
  access_evaluations_endpoint: string;
  search_subject_endpoint: string;
  search_resource_endpoint: string;
  search_action_endpoint: string;
}

/** Longest type, id or action name accepted (the spec sets none; ours keeps logs and the trail sane). */
const MAX_NAME = 256;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Collects what is wrong with one entity; `needsId` false for the searched-for entity of a search. */
function entity(value: unknown, path: string, key: 'type' | 'name', needsId: boolean, problems: ErrorDetail[]): void {
  if (value === undefined) {
    problems.push({ path, message: 'is required' });
    return;
  }
  if (!isObject(value)) {
    problems.push({ path, message: 'must be an object' });
    return;
  }
  const name = value[key];
  if (typeof name !== 'string' || name === '' || name.length > MAX_NAME) problems.push({ path: `${path}.${key}`, message: `must be a string of 1 to ${MAX_NAME} characters` });
  if (key === 'type') {
    const id = value['id'];
    if (needsId && (typeof id !== 'string' || id === '' || id.length > MAX_NAME)) problems.push({ path: `${path}.id`, message: `must be a string of 1 to ${MAX_NAME} characters` });
  }
  if (value['properties'] !== undefined && !isObject(value['properties'])) problems.push({ path: `${path}.properties`, message: 'must be an object' });
}

/** The entity as the model defines it: its own members only (unknown members are ignored, not passed on). */
function pick(value: Record<string, unknown>, key: 'type' | 'name', withId: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = { [key]: value[key] };
  if (withId && typeof value['id'] === 'string') out['id'] = value['id'];
  if (isObject(value['properties'])) out['properties'] = value['properties'];
  return out;
}

function checkEvaluation(body: Record<string, unknown>, path: string): { request: AuthzenEvaluationRequestV1 } | { invalid: ErrorDetail[] } {
  const problems: ErrorDetail[] = [];
  entity(body['subject'], `${path}subject`, 'type', true, problems);
  entity(body['action'], `${path}action`, 'name', false, problems);
  entity(body['resource'], `${path}resource`, 'type', true, problems);
  if (body['context'] !== undefined && !isObject(body['context'])) problems.push({ path: `${path}context`, message: 'must be an object' });
  if (problems.length > 0) return { invalid: problems };
  const request: AuthzenEvaluationRequestV1 = {
    subject: pick(body['subject'] as Record<string, unknown>, 'type', true) as unknown as AuthzenSubject,
    action: pick(body['action'] as Record<string, unknown>, 'name', false) as unknown as AuthzenAction,
    resource: pick(body['resource'] as Record<string, unknown>, 'type', true) as unknown as AuthzenResource,
    ...(isObject(body['context']) ? { context: body['context'] } : {}),
  };
  return { request };
}

function refuse(message: string, details: ErrorDetail[]): never {
  throw new PdpError('invalid_request', message, { details });
}

/**
 * The checks every body gets before its members are read: a JSON object, nesting at most BODY_MAX_DEPTH deep (the
 * audit trail records nothing deeper, and nothing walks it first), no lone surrogate (neither WASM nor the trail
 * takes one). A 400 for the whole request, a batch's too: such a body is malformed, not an item that is denied.
 */
function wholeBody(body: unknown): asserts body is Record<string, unknown> {
  if (!isObject(body)) refuse('the body must be a JSON object', [{ path: '', message: 'must be an object' }]);
  const problems = jsonValueProblems(body);
  if (problems.length > 0) refuse(`invalid request: ${problems.map((d) => `${d.path} ${d.message}`).join('; ')}`, problems);
}

/** `POST /access/v1/evaluation`: a missing or malformed member is a 400 naming it. */
export function parseAuthzenEvaluation(body: unknown): AuthzenEvaluationRequestV1 {
  wholeBody(body);
  return singleEvaluation(body);
}

/** One evaluation of a body `wholeBody` already checked (an `evaluations` request without items, too: walked once). */
function singleEvaluation(body: Record<string, unknown>): AuthzenEvaluationRequestV1 {
  const checked = checkEvaluation(body, '');
  if ('invalid' in checked) refuse(`invalid evaluation request: ${checked.invalid.map((d) => `${d.path} ${d.message}`).join('; ')}`, checked.invalid);
  return checked.request;
}

/**
 * `POST /access/v1/evaluations`. The top-level subject, action, resource and context are defaults each item may
 * override: an item's entity replaces the default whole (context too, as the spec's example shows), except that an
 * identifier it lacks (a subject's or resource's type or id, an action's name) is the default's (`withIdentifiers`).
 * Without items it is one evaluation (400 when that is incomplete). With items, a whole-payload problem is a 400 (not an object, `evaluations` not an array,
 * more than `max` items, an unknown semantic) and an incomplete item is that item's deny.
 */
export function parseAuthzenEvaluations(body: unknown, max: number): AuthzenEvaluationsRequestV1 {
  wholeBody(body);
  const options = body['options'];
  if (options !== undefined && !isObject(options)) refuse('options must be an object', [{ path: 'options', message: 'must be an object' }]);
  const named = isObject(options) ? options['evaluations_semantic'] : undefined;
  if (named !== undefined && !(EVALUATIONS_SEMANTICS as readonly unknown[]).includes(named)) {
    refuse(`options.evaluations_semantic must be one of ${EVALUATIONS_SEMANTICS.join(', ')}`, [{ path: 'options.evaluations_semantic', message: `must be one of ${EVALUATIONS_SEMANTICS.join(', ')}` }]);
  }
  const semantic = (named ?? 'execute_all') as EvaluationsSemantic;
  const list = body['evaluations'];
  if (list !== undefined && !Array.isArray(list)) refuse('evaluations must be an array', [{ path: 'evaluations', message: 'must be an array' }]);
  if (list === undefined || list.length === 0) return { single: singleEvaluation(body), semantic };
  if (list.length > max) refuse(`at most ${max} evaluations per request`, [{ path: 'evaluations', message: `has ${list.length} items; at most ${max}` }]);
  for (const key of ['subject', 'action', 'resource', 'context'] as const) {
    if (body[key] !== undefined && !isObject(body[key])) refuse(`${key} must be an object`, [{ path: key, message: 'must be an object' }]);
  }
  const items = list.map((item: unknown, i): EvaluationItem => {
    if (!isObject(item)) return { invalid: [{ path: `evaluations[${i}]`, message: 'must be an object' }] };
    const merged: Record<string, unknown> = {};
    for (const key of ['subject', 'action', 'resource', 'context'] as const) {
      const value = item[key] !== undefined ? withIdentifiers(item[key], body[key], IDENTIFIERS[key]) : body[key];
      if (value !== undefined) merged[key] = value;
    }
    return checkEvaluation(merged, `evaluations[${i}].`);
  });
  return { items, semantic };
}

/** The identifying members of each entity of a request, which an item's entity takes from the default when it lacks them. */
const IDENTIFIERS: Readonly<Record<'subject' | 'action' | 'resource' | 'context', readonly string[]>> = {
  subject: ['type', 'id'],
  action: ['name'],
  resource: ['type', 'id'],
  context: [],
};

/**
 * An item's entity over the default one: the item's replaces the default whole (its properties are its own), except
 * that an identifying member it lacks is the default's. The certification scenario's C-3.2.7: a batch with
 * `resource: { type: "record" }` at the top and an item `resource: { id: "record-1", properties }` asks about record-1.
 */
function withIdentifiers(own: unknown, fallback: unknown, members: readonly string[]): unknown {
  if (!isObject(own) || !isObject(fallback)) return own;
  let out: Record<string, unknown> | undefined;
  for (const member of members) {
    if (own[member] !== undefined || fallback[member] === undefined) continue;
    // An id belongs to its type: an item naming another type does not take the default's id.
    if (member === 'id' && own['type'] !== undefined && own['type'] !== fallback['type']) continue;
    out ??= { ...own };
    out[member] = fallback[member];
  }
  return out ?? own;
}

/**
 * A search request of `kind`: the searched-for entity needs its type (its id, if sent, is ignored); every input
 * entity needs type and id (the action its name). The action search has no action.
 */
export function parseAuthzenSearch(kind: SearchKind, body: unknown): AuthzenSearchRequestV1 {
  wholeBody(body);
  const problems: ErrorDetail[] = [];
  entity(body['subject'], 'subject', 'type', kind !== 'subject', problems);
  if (kind !== 'action') entity(body['action'], 'action', 'name', false, problems);
  entity(body['resource'], 'resource', 'type', kind !== 'resource', problems);
  if (body['context'] !== undefined && !isObject(body['context'])) problems.push({ path: 'context', message: 'must be an object' });
  const page = body['page'];
  if (page !== undefined) {
    if (!isObject(page)) problems.push({ path: 'page', message: 'must be an object' });
    else {
      if (page['token'] !== undefined && typeof page['token'] !== 'string') problems.push({ path: 'page.token', message: 'must be a string' });
      if (page['limit'] !== undefined && !(Number.isSafeInteger(page['limit']) && (page['limit'] as number) >= 0)) problems.push({ path: 'page.limit', message: 'must be a non-negative integer' });
    }
  }
  if (problems.length > 0) refuse(`invalid ${kind} search request: ${problems.map((d) => `${d.path} ${d.message}`).join('; ')}`, problems);
  const p = isObject(page) ? page : undefined;
  return {
    kind,
    subject: pick(body['subject'] as Record<string, unknown>, 'type', kind !== 'subject') as AuthzenSearchRequestV1['subject'],
    ...(kind === 'action' ? {} : { action: pick(body['action'] as Record<string, unknown>, 'name', false) as unknown as AuthzenAction }),
    resource: pick(body['resource'] as Record<string, unknown>, 'type', kind !== 'resource') as AuthzenSearchRequestV1['resource'],
    ...(isObject(body['context']) ? { context: body['context'] } : {}),
    ...(p === undefined
      ? {}
      : { page: { ...(typeof p['token'] === 'string' ? { token: p['token'] } : {}), ...(typeof p['limit'] === 'number' ? { limit: p['limit'] } : {}) } }),
  };
}
