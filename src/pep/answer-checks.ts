/**
 * Checks the shape of the PDP's answers before anything acts on them. An answer that is not the API (a proxy's
 * error page, a truncated body, another server on the port) is a `pdp_error`, never half-read as an allow.
 * Only the fields the SDK relies on are checked; unknown extra fields are allowed (the API may grow).
 */
import type { AccessRequestV1 } from '../wire/access-request-v1.js';
import type { DecisionRequestV1, DecisionResponseV1, TaskV1 } from '../wire/decision-v1.js';
import type { GrantableScopesResponseV1 } from '../wire/grantable-scopes-v1.js';
import { PepError } from './pep-error.js';
import type { AuthorizationServerMetadataV1, IntrospectionResponseV1, TokenResponseV1 } from '../wire/token-v1.js';
import type { UsageAnswerV1 } from '../wire/usage-v1.js';

type Json = Record<string, unknown>;

const OUTCOMES = new Set(['allow', 'deny', 'undefined']);

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isTextList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isText);
const isResource = (v: unknown): boolean => isObject(v) && isText(v['type']) && isText(v['id']);

function malformed(what: string, field: string): PepError {
  return new PepError('pdp_error', `the PDP's answer to ${what} is malformed ("${field}")`);
}

/** Returns the first failed field of `checks`, in order. */
function firstFailure(value: unknown, checks: Record<string, (v: unknown) => boolean>): string | undefined {
  if (!isObject(value)) return '(body)';
  for (const [field, ok] of Object.entries(checks)) if (!ok(value[field])) return field;
  return undefined;
}

function checked<T>(what: string, value: unknown, checks: Record<string, (v: unknown) => boolean>): T {
  const failed = firstFailure(value, checks);
  if (failed !== undefined) throw malformed(what, failed);
  return value as T;
}

/**
 * `POST /v1/decide`'s answer checked, and that it answers this request: the agent, integration, task and record it
 * names are the ones asked about (an answer about another request is not enforced, whatever it says).
 */
export function checkDecisionFor(value: unknown, request: DecisionRequestV1): DecisionResponseV1 {
  const decision = checkDecision(value);
  if (decision.agent_id !== request.agent_id) throw malformed('decide', 'agent_id');
  if (decision.integration !== request.integration) throw malformed('decide', 'integration');
  if (decision.task_id !== request.task.id) throw malformed('decide', 'task_id');
  const asked = request.resource ?? null;
  const answered = decision.resource;
  const sameRecord = asked === null ? answered === null : answered !== null && answered.type === asked.type && String(answered.id) === String(asked.id);
  if (!sameRecord) throw malformed('decide', 'resource');
  return decision;
}

export function checkDecision(value: unknown): DecisionResponseV1 {
  const decision = checked<DecisionResponseV1>('decide', value, {
    decision_id: isText,
    allow: (v) => typeof v === 'boolean',
    outcome: (v) => typeof v === 'string' && OUTCOMES.has(v),
    agent_id: isText,
    integration: isText,
    task_id: isText,
    granted_scopes: isTextList,
    denied_scopes: (v) => Array.isArray(v) && v.every((d) => isObject(d) && isText(d['scope']) && isText(d['reason'])),
    reasons: (v) => Array.isArray(v) && v.every((r) => isObject(r) && isText(r['code']) && typeof r['message'] === 'string'),
    token_ttl_seconds: (v) => typeof v === 'number',
    resource: (v) => v === null || v === undefined || isResource(v),
    policy_revision: (v) => typeof v === 'string',
    access_request: (v) => v === undefined || isHint(v),
    approval: (v) => v === undefined || (isObject(v) && isText(v['id']) && isText(v['approved_until'])),
  });
  // `allow` is what a PEP enforces; an answer whose two fields disagree is not trusted either way.
  if (decision.allow !== (decision.outcome === 'allow')) throw malformed('decide', 'allow');
  // A hint belongs to a denial of this very decision; anything else is not the API.
  if (decision.access_request !== undefined && (decision.allow || decision.access_request.template.decision_id !== decision.decision_id)) {
    throw malformed('decide', 'access_request');
  }
  return { ...decision, resource: decision.resource ?? null };
}

/**
 * `POST /v1/grantable-scopes`: every integration's lists, each `bound` scope a grantable one, and nothing at all
 * beside a task denial (an answer that both denies the task and names scopes is not the API).
 */
export function checkGrantableScopes(value: unknown): GrantableScopesResponseV1 {
  const answer = checked<GrantableScopesResponseV1>('grantable scopes', value, {
    agent_id: isText,
    task_id: isText,
    task_type: (v) => v === null || isText(v),
    policy_revision: isText,
    task_denial: (v) => v === null || isText(v),
    integrations: (v) => isObject(v) && Object.values(v).every(isGrantableIntegration),
  });
  if (answer.task_denial !== null && Object.keys(answer.integrations).length > 0) throw malformed('grantable scopes', 'integrations');
  return answer;
}

function isGrantableIntegration(v: unknown): boolean {
  if (!isObject(v) || !isTextList(v['grantable']) || !isTextList(v['requestable']) || !isObject(v['bound'])) return false;
  const grantable = new Set(v['grantable']);
  return Object.entries(v['bound']).every(([scope, type]) => grantable.has(scope) && isText(type));
}

const STATUSES = new Set(['pending', 'approved', 'denied', 'expired']);
const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isTextOrNull = (v: unknown): boolean => v === null || typeof v === 'string';

function isHint(v: unknown): boolean {
  return (
    isObject(v) &&
    isText(v['endpoint']) &&
    isText(v['expires_at']) &&
    isObject(v['template']) &&
    isText(v['template']['decision_id']) &&
    isTextList(v['scopes']) &&
    isCount(v['max_duration_seconds']) &&
    typeof v['require_reason'] === 'boolean'
  );
}

/** An access request (`POST /v1/access-requests`, `GET /v1/access-requests/{id}`). */
export function checkAccessRequest(value: unknown, what: string): AccessRequestV1 {
  return checked<AccessRequestV1>(what, value, {
    id: isText,
    status: (v) => typeof v === 'string' && STATUSES.has(v),
    status_endpoint: isText,
    expires_at: isText,
    decision_id: isText,
    agent_id: isText,
    task_id: isText,
    integration: isText,
    resource: (v) => v === null || isResource(v),
    scopes: isTextList,
    duration_seconds: isCount,
    approver_groups: isTextList,
    approved_until: isTextOrNull,
    decided_by: isTextOrNull,
    note: isTextOrNull,
  });
}

export function checkTokenResponse(value: unknown): TokenResponseV1 {
  return checked<TokenResponseV1>('redeem', value, {
    access_token: isText,
    token_type: (v) => typeof v === 'string' && v.toLowerCase() === 'bearer',
    expires_in: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0,
    scope: isText,
    jti: isText,
    authorization_details: Array.isArray,
    provider_credential: (v) => v === undefined || isProviderCredential(v),
  });
}

/** An AWS provider credential with every member a tool needs (docs/providers.md). */
function isProviderCredential(v: unknown): boolean {
  if (!isObject(v) || !isText(v['integration']) || !isText(v['expires_at']) || Number.isNaN(Date.parse(String(v['expires_at'])))) return false;
  if (v['provider'] === 'gcp_storage') {
    const google = v['google'];
    return isObject(google) && isText(google['access_token']);
  }
  if (v['provider'] === 'google_workspace') {
    const google = v['google'];
    return isObject(google) && isText(google['access_token']) && isText(google['subject']) && isTextList(google['scopes']);
  }
  if (v['provider'] !== 'aws') return false;
  const aws = v['aws'];
  return isObject(aws) && ['access_key_id', 'secret_access_key', 'session_token', 'expiration', 'region'].every((k) => isText(aws[k]));
}

export function checkIntrospection(value: unknown): IntrospectionResponseV1 {
  if (isObject(value) && value['active'] === false) return { active: false };
  return checked<IntrospectionResponseV1>('introspect', value, {
    active: (v) => v === true,
    jti: isText,
    scope: isText,
    exp: (v) => typeof v === 'number',
  });
}

export function checkTask(value: unknown, what: string): TaskV1 {
  return checked<TaskV1>(what, value, {
    id: isText,
    agent_id: isText,
    type: isText,
    status: (v) => v === 'active' || v === 'completed' || v === 'expired',
    context: isObject,
  });
}

export function checkMetadata(value: unknown): AuthorizationServerMetadataV1 {
  return checked<AuthorizationServerMetadataV1>('metadata', value, { issuer: isText, jwks_uri: isText });
}

/** `POST /v1/usage`: counts, and the refused reports by index (an index outside the batch is not the API). */
export function checkUsageAnswer(value: unknown, reports: number): UsageAnswerV1 {
  return checked<UsageAnswerV1>('report usage', value, {
    accepted: isCount,
    unknown: isCount,
    rejected: (v) => Array.isArray(v) && v.every((r) => isObject(r) && isCount(r['index']) && (r['index'] as number) < reports && isText(r['code'])),
  });
}
