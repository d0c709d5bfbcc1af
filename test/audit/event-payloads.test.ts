/**
 * docs/audit-events.md is the contract auditors parse events by. This file reads its "Event types" table (the ids
 * of each type) and its "Event payloads" tables (each type's `data` members and their types; one table per kind for
 * a type of several kinds, as token.used's `action`), and checks them against what the builders of
 * src/audit/event-payloads.ts produce and what a real SQLite store writes: no undocumented id or member, no
 * documented one missing, every value of a documented type, and every optional id or member, every alternative of
 * a type and every kind actually seen. Editing either side alone fails here.
 */
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUDIT_EVENT_TYPES,
  AUDIT_ID_FIELDS,
  AUTH_FAILED_IP_MAX,
  AUTH_FAILED_ROUTE_MAX,
  ACCESS_REFUSAL_CODES,
  AUTH_FAILURE_REASONS,
  POLICY_REFUSED_DETAILS_MAX,
  SUGGESTION_KINDS,
  SUGGESTION_NOTE_MAX,
  TASK_CLOSE_STATUSES,
  PROXY_CODE_MAX,
  PROXY_PATH_TEMPLATE_MAX,
  PROXY_RECORD_ID_MAX,
  REPORTED_RECORD_ID_MAX,
  REPORTED_ROUTE_MAX,
  TOKEN_PROXY_OUTCOMES,
  TOKEN_REVOKE_REASONS,
  TOKEN_USE_ACTIONS,
  assertNewAuditEvent,
  auditHeadSignedEvent,
  auditPrunedEvent,
  accessRefusedEvent,
  accessRequestApprovedEvent,
  accessRequestDeniedEvent,
  accessRequestExpiredEvent,
  accessRequestNotificationFailedEvent,
  accessRequestNotifiedEvent,
  accessRequestSubmittedEvent,
  authFailedEvent,
  DELIVERY_ERROR_MAX,
  elevationEndedEvent,
  callersReplacedEvent,
  canonicalJson,
  decisionEvent,
  evaluationEvent,
  isIsoTime,
  policyLoadedEvent,
  policyRefusedEvent,
  policySuggestionAppliedEvent,
  policySuggestionDismissedEvent,
  consoleSessionStartedEvent,
  consoleSessionEndedEvent,
  CONSOLE_SESSION_END_REASONS,
  signHead,
  taskCompletedEvent,
  taskRegisteredEvent,
  tokenIssuedEvent,
  providerCredentialDiscardedEvent,
  tokenRevokedEvent,
  tokenUsedEvent,
} from '../../src/audit/index.js';
import type { AuditEventType, AuditEventV1, AuthFailureReason, NewAuditEvent, TokenProxiedData, TokenReportedData, TokenUsedData } from '../../src/audit/index.js';
import { ELEVATION_END_REASONS } from '../../src/wire/access-request-v1.js';
import type { CreateAccessRequestInput } from '../../src/store/index.js';
import { at, decision, grant, task, tempStore } from '../store/store-fixtures.js';
import type { TempStore } from '../store/store-fixtures.js';

// ---- the doc, parsed ----------------------------------------------------------------------------------------

type DocType =
  | { kind: 'string' | 'time' | 'integer' | 'boolean' | 'object' | 'null' }
  | { kind: 'array'; of: DocType }
  | { kind: 'literal'; value: string };

interface DocMember {
  optional: boolean;
  types: DocType[];
}

/** One payload table: of the whole type, or of one kind of it (`#### \`action\`: "proxy"`: `when` that member has that value). */
interface DocPayload {
  when: { member: string; value: string } | null;
  data: Map<string, DocMember>;
}

interface DocEvent {
  /** id field → optional */
  ids: Map<string, boolean>;
  payloads: DocPayload[];
}

const DOC = readFileSync(new URL('../../docs/audit-events.md', import.meta.url), 'utf8');
const BASE_TYPES = new Set(['string', 'time', 'integer', 'boolean', 'object', 'null']);

/** The text of `## heading` up to the next `## `. */
function section(markdown: string, heading: string): string {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/audit-events.md has no "## ${heading}"`);
  const end = markdown.indexOf('\n## ', start + 1);
  return markdown.slice(start, end < 0 ? undefined : end);
}

/** Body rows of the first table in `text`, cells trimmed, `\|` unescaped. */
function tableRows(text: string): string[][] {
  const lines = text.split('\n').filter((l) => l.startsWith('|'));
  return lines.slice(2).map((l) => l.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|')));
}

/** `` `name` `` or `` `name`? `` */
function docName(cell: string): { name: string; optional: boolean } {
  const m = /^`([a-z0-9_.]+)`(\?)?$/.exec(cell);
  if (!m?.[1]) throw new Error(`not a backticked name: ${cell}`);
  return { name: m[1], optional: m[2] === '?' };
}

function parseType(text: string): DocType {
  const literal = /^"([^"]*)"$/.exec(text);
  if (literal) return { kind: 'literal', value: literal[1] ?? '' };
  if (text.startsWith('array of ')) return { kind: 'array', of: parseType(text.slice('array of '.length)) };
  if (BASE_TYPES.has(text)) return { kind: text as 'string' };
  throw new Error(`unknown type in docs/audit-events.md: ${text}`);
}

function parseDoc(markdown: string): Map<string, DocEvent> {
  const events = new Map<string, DocEvent>();
  for (const [typeCell = '', idsCell = ''] of tableRows(section(markdown, 'Event types'))) {
    const ids = new Map<string, boolean>();
    const listed = idsCell.replace(/\([^)]*\)/g, '');
    if (listed.trim() !== 'none') {
      for (const part of listed.split(',')) {
        const { name, optional } = docName(part.trim());
        ids.set(name, optional);
      }
    }
    events.set(docName(typeCell).name, { ids, payloads: [] });
  }
  const payloads = section(markdown, 'Event payloads').split(/\n### /).slice(1);
  for (const block of payloads) {
    const type = docName(block.slice(0, block.indexOf('\n')).trim()).name;
    const event = events.get(type);
    if (event === undefined) throw new Error(`payload of ${type}, which the "Event types" table does not list`);
    if (event.payloads.length > 0) throw new Error(`two payload sections for ${type}`);
    // A type of several kinds has one `#### \`member\`: "value"` block per kind, each with its own table.
    const [own = '', ...kinds] = block.split(/\n#### /);
    if (kinds.length === 0) event.payloads.push({ when: null, data: parseMembers(own) });
    for (const kind of kinds) {
      const heading = kind.slice(0, kind.indexOf('\n')).trim();
      const m = /^`([a-z_]+)`: "([^"]*)"$/.exec(heading);
      if (!m?.[1] || m[2] === undefined) throw new Error(`${type}: not a kind heading: ${heading}`);
      event.payloads.push({ when: { member: m[1], value: m[2] }, data: parseMembers(kind) });
    }
  }
  return events;
}

function parseMembers(block: string): Map<string, DocMember> {
  const data = new Map<string, DocMember>();
  for (const [memberCell = '', typeCell = ''] of tableRows(block)) {
    const { name, optional } = docName(memberCell);
    data.set(name, { optional, types: typeCell.split(' | ').map((t) => parseType(t.trim())) });
  }
  return data;
}

const SPEC = parseDoc(DOC);

function specOf(type: string): DocEvent {
  const spec = SPEC.get(type);
  if (spec === undefined) throw new Error(`docs/audit-events.md does not document ${type}`);
  return spec;
}

/** Whether `data` is of the kind `payload` documents (always, for a type of one kind). */
function isKind(payload: DocPayload, data: unknown): boolean {
  if (payload.when === null) return true;
  return typeof data === 'object' && data !== null && (data as Record<string, unknown>)[payload.when.member] === payload.when.value;
}

/** `` (`action` "proxy")`` for a kind, '' for a type of one kind: where a problem was found. */
function kindLabel(payload: DocPayload): string {
  return payload.when === null ? '' : ` (${payload.when.member} ${JSON.stringify(payload.when.value)})`;
}

/** Every member documented for `member` over the kinds of `type` (the kinds' own values for their discriminator). */
function memberTypes(type: string, member: string): DocType[] {
  return specOf(type).payloads.flatMap((p) => p.data.get(member)?.types ?? []);
}

function label(t: DocType): string {
  if (t.kind === 'literal') return JSON.stringify(t.value);
  return t.kind === 'array' ? `array of ${label(t.of)}` : t.kind;
}

function matches(t: DocType, v: unknown): boolean {
  switch (t.kind) {
    case 'string':
      return typeof v === 'string';
    case 'time':
      return isIsoTime(v);
    case 'integer':
      return Number.isSafeInteger(v);
    case 'boolean':
      return typeof v === 'boolean';
    case 'null':
      return v === null;
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'array':
      return Array.isArray(v) && v.every((item) => matches(t.of, item));
    case 'literal':
      return v === t.value;
  }
}

const ENVELOPE = new Set(['time', 'type', 'data', ...AUDIT_ID_FIELDS]);
const SEALED = new Set([...ENVELOPE, 'v', 'seq', 'prev_hash', 'hash']);

/** Where `event` disagrees with the doc; [] when it does not. */
function problems(event: NewAuditEvent | AuditEventV1, envelope: Set<string>): string[] {
  const spec = specOf(event.type);
  const out: string[] = [];
  for (const key of Object.keys(event)) if (!envelope.has(key)) out.push(`unknown field ${key}`);
  const record = event as unknown as Record<string, unknown>;
  for (const id of AUDIT_ID_FIELDS) {
    const documented = spec.ids.get(id);
    if (record[id] !== undefined && documented === undefined) out.push(`undocumented id ${id}`);
    if (record[id] === undefined && documented === false) out.push(`missing id ${id}`);
  }
  const data = event.data as Record<string, unknown>;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return [...out, 'data is not an object'];
  const payload = spec.payloads.find((p) => isKind(p, data));
  if (payload === undefined) return [...out, `data is of no documented kind: ${JSON.stringify(data)}`];
  for (const key of Object.keys(data)) if (!payload.data.has(key)) out.push(`undocumented member ${key}${kindLabel(payload)}`);
  for (const [name, member] of payload.data) {
    if (!Object.hasOwn(data, name)) {
      if (!member.optional) out.push(`missing member ${name}`);
    } else if (!member.types.some((t) => matches(t, data[name]))) {
      out.push(`${name} = ${JSON.stringify(data[name])} is not ${member.types.map(label).join(' | ')}`);
    }
  }
  return out;
}

/**
 * What the doc allows that `events` never show: an optional id or member always (or never) there, a type never seen,
 * a kind (of a type of several) never seen.
 */
function unexercised(type: string, events: ReadonlyArray<NewAuditEvent | AuditEventV1>): string[] {
  const spec = specOf(type);
  const out: string[] = [];
  const seen = (among: ReadonlyArray<NewAuditEvent | AuditEventV1>, has: (e: Record<string, unknown>) => boolean, what: string): void => {
    const n = among.filter((e) => has(e as unknown as Record<string, unknown>)).length;
    if (n === 0) out.push(`${what} never present`);
    if (n === among.length) out.push(`${what} never absent`);
  };
  for (const [id, optional] of spec.ids) if (optional) seen(events, (e) => e[id] !== undefined, `id ${id}?`);
  for (const payload of spec.payloads) {
    const kind = events.filter((e) => isKind(payload, e.data));
    const where = kindLabel(payload);
    for (const [name, member] of payload.data) {
      if (member.optional) seen(kind, (e) => Object.hasOwn(e['data'] as object, name), `member ${name}?${where}`);
      const values = kind.map((e) => (e.data as Record<string, unknown>)[name]).filter((v) => v !== undefined);
      for (const t of member.types) if (!values.some((v) => matches(t, v))) out.push(`${name}${where}: never ${label(t)}`);
    }
    if (kind.length === 0) out.push(`no event${where}`);
  }
  return out;
}

// ---- the builders, case by case ----------------------------------------------------------------------------

const T = '2026-01-31T12:00:00.000Z';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const input = { agent_id: 'support-resolver', caller_id: 'pep-1', integration: 'crm', scopes: ['tickets:write'] };
const result = { outcome: 'allow', granted_scopes: ['tickets:write'], denied_scopes: [], reasons: [], token_ttl_seconds: 300 };
const decided = { input, result, policy_revision: 'b1.p1' };
const issued = { scopes: ['tickets:write'], issued_at: T, expires_at: '2026-01-31T12:05:00.000Z', integration: 'crm', kid: 'k1' };
const providerRecord = {
  provider: 'aws' as const,
  request_id: 'c6104cbe-af31-11e0-8154-cbc7ccf896c7',
  expires_at: '2026-01-31T12:15:00.000Z',
  role_arn: 'arn:aws:iam::123456789012:role/reports',
  session_name: 'agentpdp-d-1',
  source_identity: 'reporting-agent',
  session_tags: { agent_id: 'reporting-agent', decision_id: 'd-1' },
  session_policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject'], Resource: ['arn:aws:s3:::r/customers/1234/*'] }] },
};
const detail = { path: 'agents.a.max_scope', message: 'unknown scope', file: 'a.yaml', line: 3, column: 7 };
const refusal = { code: 'policy_invalid', message: 'agents/a.yaml: bad scope', details: [detail] };
const loaded = { revision: 'b1.p2', bundle_revision: 'b1', policies_revision: 'p2', agents: 3, files: [{ path: 'agents/a.yaml', sha256: 'c'.repeat(64) }] };
// Ids: of a decision, of its token, of a task.
const D = { decision_id: 'd-1', agent_id: 'a', caller_id: 'pep-1' };
const J = { decision_id: 'd-1', jti: 'j-1', agent_id: 'a' };
const K = { task_id: 't-1', agent_id: 'a' };

// Ids of an access request's events: its denial, agent and task.
const R = { decision_id: 'd-deny', agent_id: 'a', task_id: 't-1' };
const submitted = {
  access_request_id: 'ar-1',
  integration: 'crm',
  scopes: ['tickets:delete'],
  duration_seconds: 900,
  max_duration_seconds: 3600,
  approver_groups: ['platform-oncall'],
  expires_at: T,
  policy_revision: 'b1.p1',
};
const delivered = { access_request_id: 'ar-1', delivery_id: 'dl-1', destination: 'slack-ops', approver_group: 'platform-oncall', attempts: 1 };
// A call through the enforcement proxy: forwarded, and refused before any entry matched.
const proxied: TokenProxiedData = {
  action: 'proxy',
  integration: 'github',
  method: 'GET',
  path_template: '/repos/{owner}/{repo}/pulls/{pull_number}',
  scope: 'pr:read',
  record: { type: 'repo', id: 'acme/app' },
  outcome: 'forwarded',
  code: null,
  upstream_status: 200,
  bytes_in: 0,
  bytes_out: 5120,
  latency_ms: 12,
};
const unmapped: TokenProxiedData = {
  ...proxied,
  method: 'POST',
  path_template: '',
  scope: null,
  record: null,
  outcome: 'refused',
  code: 'endpoint_not_mapped',
  upstream_status: null,
  bytes_out: 96,
  latency_ms: 0,
};

// A request a resource server reported (POST /v1/usage): on a record through a named route, and with neither.
const reported: TokenReportedData = {
  action: 'resource_server',
  integration: 'crm',
  scope: 'tickets:read',
  record: { type: 'customer', id: '1234' },
  route: '/customers/:id/tickets',
  used_at: '2026-01-01T00:00:00.250Z',
};

// A policy suggestion (src/suggest/): applied or dismissed by an operator.
const suggested = { suggestion_id: 'sg-1', integration: 'github', kind: 'remove_scope' as const, target: 'repo:write' };

const AUDIT_KEY = { kid: 'k'.repeat(43), privateKey: generateKeyPairSync('ed25519').privateKey };

const CASES: Array<{ note: string; event: NewAuditEvent }> = [
  { note: 'with task and trace', event: decisionEvent(T, { ...D, task_id: 't-1', trace_id: TRACE }, decided) },
  { note: 'without task or trace', event: decisionEvent(T, { ...D, task_id: null }, decided) },
  { note: 'a requestable denial, with its approver groups', event: decisionEvent(T, { ...D, task_id: 't-1' }, { ...decided, approvers: ['platform-oncall'] }) },
  {
    note: 'OPA data API, defined, with trace',
    event: evaluationEvent(T, { decision_id: 'ev-1', caller_id: 'opa-client', trace_id: TRACE }, { api: 'opa', path: 'authzen/certification/decision', input: { subject: { id: 'alice' } }, result: true, policy_revision: 'rev-1' }),
  },
  ...[['a', 'b'], 'text', 3, false, null].map((input) => ({
    note: `an input that is ${JSON.stringify(input)}`,
    event: evaluationEvent(T, { decision_id: 'ev-4', caller_id: 'opa-client' }, { api: 'opa' as const, path: 'app/rbac/value', input, result: true, policy_revision: 'rev-1' }),
  })),
  {
    note: 'OPA data API without an input',
    event: evaluationEvent(T, { decision_id: 'ev-5', caller_id: 'opa-client' }, { api: 'opa', path: 'app/rbac/value', result: 'x', policy_revision: 'rev-1' }),
  },
  ...[{ reasons: ['a', 'b'] }, ['a', 'b'], 'text', 3, false, null].map((result) => ({
    note: `a rule whose value is ${JSON.stringify(result)}`,
    event: evaluationEvent(T, { decision_id: 'ev-3', caller_id: 'opa-client' }, { api: 'opa' as const, path: 'app/rbac/value', input: { user: 'u' }, result, policy_revision: 'rev-1' }),
  })),
  {
    note: 'AuthZEN, undefined for its input, without trace',
    event: evaluationEvent(T, { decision_id: 'ev-2', caller_id: 'gateway' }, { api: 'authzen', path: 'authzen/certification/decision', input: {}, policy_revision: 'rev-1' }),
  },
  {
    note: 'bound to a record, with audience',
    event: tokenIssuedEvent(T, { ...J, caller_id: 'pep-1', task_id: 't-1', trace_id: TRACE }, { ...issued, audience: 'crm', resource: { type: 'customer', id: '1234' } }),
  },
  {
    note: 'unbound, no audience, no task',
    event: tokenIssuedEvent(T, { ...J, caller_id: 'pep-1', task_id: null, trace_id: null }, { ...issued, audience: null, resource: null }),
  },
  {
    note: 'with the provider credential minted for it (docs/providers.md)',
    event: tokenIssuedEvent(T, { ...J, caller_id: 'pep-1', task_id: 't-1', trace_id: TRACE }, { ...issued, audience: 's3-reports', resource: { type: 'customer', id: '1234' }, provider_credential: providerRecord }),
  },
  {
    note: 'a discarded provider credential, with task and trace',
    event: providerCredentialDiscardedEvent(T, { decision_id: 'd-1', agent_id: 'reporting-agent', caller_id: 'pep-1', task_id: 't-1', trace_id: TRACE }, { integration: 's3-reports', reason: 'task_not_active', provider_credential: providerRecord }),
  },
  {
    note: 'a discarded provider credential, no task',
    event: providerCredentialDiscardedEvent(T, { decision_id: 'd-1', agent_id: 'reporting-agent', caller_id: 'pep-1', task_id: null, trace_id: null }, { integration: 's3-reports', reason: 'provider_failed', provider_credential: providerRecord }),
  },
  { note: 'a token of ours', event: tokenUsedEvent(T, { ...J, caller_id: 'crm-api', task_id: 't-1', trace_id: TRACE }, { action: 'introspect', active: true }) },
  { note: 'an unknown token', event: tokenUsedEvent(T, { jti: 'j-x', caller_id: 'crm-api' }, { action: 'introspect', active: false }) },
  { note: 'a proxied call, forwarded', event: tokenUsedEvent(T, { ...J, caller_id: 'proxy', task_id: 't-1', trace_id: TRACE }, proxied) },
  { note: 'a proxied call to an entry without a record', event: tokenUsedEvent(T, { ...J, caller_id: 'proxy' }, { ...proxied, path_template: '/user', record: null }) },
  { note: 'a proxied call refused for its scope', event: tokenUsedEvent(T, { ...J, caller_id: 'proxy' }, { ...proxied, method: 'PUT', scope: 'repo:write', outcome: 'refused', code: 'token_scope_insufficient', upstream_status: null, bytes_out: 120 }) },
  { note: 'a proxied call refused as unmapped', event: tokenUsedEvent(T, { ...J, caller_id: 'proxy' }, unmapped) },
  { note: 'a proxied call that timed out', event: tokenUsedEvent(T, { ...J, caller_id: 'proxy' }, { ...proxied, outcome: 'failed', code: 'upstream_timeout', upstream_status: null, bytes_out: 0 }) },
  { note: 'a reported request on a record', event: tokenUsedEvent(T, { ...J, caller_id: 'crm-api', task_id: 't-1', trace_id: TRACE }, reported) },
  { note: 'a reported request without record or route', event: tokenUsedEvent(T, { ...J, caller_id: 'crm-api' }, { ...reported, record: null, route: null }) },
  { note: 'by its caller, no task', event: tokenRevokedEvent(T, { ...J, caller_id: 'pep-1', trace_id: TRACE }, { reason: 'revoked_by_caller', issued_to: 'pep-1' }) },
  { note: 'its task completed', event: tokenRevokedEvent(T, { ...J, task_id: 't-1', caller_id: 'orch' }, { reason: 'task_completed', issued_to: 'pep-1' }) },
  { note: 'its task expired', event: tokenRevokedEvent(T, { ...J, task_id: 't-1', caller_id: null }, { reason: 'task_expired', issued_to: 'pep-1' }) },
  { note: 'with trace', event: taskRegisteredEvent(T, { ...K, caller_id: 'orch', trace_id: TRACE }, { type: 'triage', context: { customer_id: '1234', vip: true }, expires_at: T }) },
  { note: 'without trace', event: taskRegisteredEvent(T, { ...K, caller_id: 'orch' }, { type: 'triage', context: {}, expires_at: T }) },
  { note: 'completed by its caller', event: taskCompletedEvent(T, { ...K, caller_id: 'orch', trace_id: TRACE }, { status: 'completed', expires_at: T, revoked_jtis: ['j-1'] }) },
  { note: 'expired', event: taskCompletedEvent(T, { ...K, caller_id: null, trace_id: null }, { status: 'expired', expires_at: T, revoked_jtis: [] }) },
  { note: 'first load', event: policyLoadedEvent(T, { ...loaded, previous_revision: null }) },
  { note: 'reload', event: policyLoadedEvent(T, { ...loaded, previous_revision: 'b1.p1', agents: 0 }) },
  { note: 'a reload refused', event: policyRefusedEvent(T, refusal, 'b1.p1') },
  { note: 'the first load refused', event: policyRefusedEvent(T, { code: 'bundle_missing', message: 'no bundle', details: [] }, null) },
  ...AUTH_FAILURE_REASONS.map((reason) => ({ note: `reason ${reason}`, event: authFailedEvent(T, { reason, route: '/v1/tasks', ip: '203.0.113.7' }) })),
  { note: 'peer address unknown', event: authFailedEvent(T, { reason: 'missing', route: '/v1/decide', ip: undefined }) },
  { note: 'a count of identical failures', event: authFailedEvent(T, { reason: 'unknown_key', route: '/v1/decide', ip: '203.0.113.7' }, { count: 4000, first: T, last: T }) },
  { note: 'a count over many routes and peers', event: authFailedEvent(T, { reason: 'malformed', route: '*', ip: null }, { count: 12, first: T, last: T }) },
  ...ACCESS_REFUSAL_CODES.map((code) => ({ note: `code ${code}`, event: accessRefusedEvent(T, { caller_id: 'pep-2', trace_id: TRACE }, { code, route: '/v1/decide' }) })),
  { note: 'naming the agent', event: accessRefusedEvent(T, { caller_id: 'pep-2', agent_id: 'support-resolver' }, { code: 'forbidden_agent', route: '/v1/decide' }) },
  { note: 'two callers', event: callersReplacedEvent(T, [{ id: 'pep-2', role: 'pep', key_sha256: 'A'.repeat(64), agents: ['support-*'], may_assert_context: false }, { id: 'ops', role: 'admin', key_sha256: 'b'.repeat(64), agents: [], may_assert_context: false }]) },
  { note: "naming another caller's decision, counted", event: accessRefusedEvent(T, { caller_id: 'pep-2', decision_id: 'd-1' }, { code: 'decision_wrong_caller', route: '/v1/tokens' }, { count: 3, first: T, last: T }) },
  {
    note: 'bound to a record, with a reason and trace',
    event: accessRequestSubmittedEvent(T, { ...R, caller_id: 'pep-1', trace_id: TRACE }, { ...submitted, resource: { type: 'customer', id: '1234' }, reason: 'customer escalation' }),
  },
  { note: 'unbound, no reason, no trace', event: accessRequestSubmittedEvent(T, { ...R, caller_id: 'pep-1', trace_id: null }, { ...submitted, resource: null, reason: null }) },
  { note: 'with the status', event: accessRequestNotifiedEvent(T, R, { ...delivered, status_code: 200 }) },
  { note: 'no status recorded', event: accessRequestNotifiedEvent(T, R, { ...delivered, attempts: 3, status_code: null }) },
  { note: 'with the last error', event: accessRequestNotificationFailedEvent(T, R, { ...delivered, attempts: 10, last_error: 'HTTP 500' }) },
  { note: 'no error recorded', event: accessRequestNotificationFailedEvent(T, R, { ...delivered, attempts: 10, last_error: null }) },
  { note: 'with a note and trace', event: accessRequestApprovedEvent(T, { ...R, caller_id: 'oncall-1', trace_id: TRACE }, { access_request_id: 'ar-1', duration_seconds: 900, approved_until: T, note: 'ok for this ticket' }) },
  { note: 'no note', event: accessRequestApprovedEvent(T, { ...R, caller_id: 'oncall-1' }, { access_request_id: 'ar-1', duration_seconds: 900, approved_until: T, note: null }) },
  { note: 'with a note and trace', event: accessRequestDeniedEvent(T, { ...R, caller_id: 'oncall-1', trace_id: TRACE }, { access_request_id: 'ar-1', note: 'not now' }) },
  { note: 'no note', event: accessRequestDeniedEvent(T, { ...R, caller_id: 'oncall-1' }, { access_request_id: 'ar-1', note: null }) },
  { note: 'by the sweeper', event: accessRequestExpiredEvent(T, R, { access_request_id: 'ar-1', expires_at: T }) },
  { note: 'its window passed', event: elevationEndedEvent(T, { ...R, caller_id: null }, { access_request_id: 'ar-1', reason: 'window', ended_at: T }) },
  { note: 'its task completed', event: elevationEndedEvent(T, { ...R, caller_id: 'orch', trace_id: TRACE }, { access_request_id: 'ar-1', reason: 'task_completed', ended_at: T }) },
  { note: 'its task expired', event: elevationEndedEvent(T, R, { access_request_id: 'ar-1', reason: 'task_expired', ended_at: T }) },
  { note: 'by an operator, with a note and trace', event: policySuggestionAppliedEvent(T, { agent_id: 'a', caller_id: 'ops', trace_id: TRACE }, { ...suggested, file: 'agents/a.yaml', file_sha256_before: 'c'.repeat(64), file_sha256_after: 'd'.repeat(64), note: 'unused for 90 days' }) },
  { note: 'no caller known, no note', event: policySuggestionAppliedEvent(T, { agent_id: 'a' }, { ...suggested, kind: 'shorten_ttl', target: 'token_ttl', file: 'agents/a.yaml', file_sha256_before: 'c'.repeat(64), file_sha256_after: 'd'.repeat(64), note: null }) },
  ...SUGGESTION_KINDS.map((kind) => ({ note: `kind ${kind}`, event: policySuggestionAppliedEvent(T, { agent_id: 'a', caller_id: 'ops' }, { ...suggested, kind, file: 'agents/a.yaml', file_sha256_before: 'c'.repeat(64), file_sha256_after: 'd'.repeat(64), note: null }) })),
  ...SUGGESTION_KINDS.map((kind) => ({ note: `kind ${kind}`, event: policySuggestionDismissedEvent(T, { agent_id: 'a', caller_id: 'ops' }, { ...suggested, kind, note: null }) })),
  { note: 'by an operator, with a note and trace', event: policySuggestionDismissedEvent(T, { agent_id: 'a', caller_id: 'ops', trace_id: TRACE }, { ...suggested, kind: 'move_to_task_type', note: 'seasonal' }) },
  { note: 'no caller known, no note', event: policySuggestionDismissedEvent(T, { agent_id: 'a' }, { ...suggested, note: null }) },
  { note: 'a sign-in, its address known, with a trace', event: consoleSessionStartedEvent(T, { caller_id: 'compliance', trace_id: TRACE }, { session: '0123456789abcdef', roles: ['auditor', 'admin'], ip: '127.0.0.1', expires_at: T }) },
  { note: 'a sign-in, its address unknown', event: consoleSessionStartedEvent(T, { caller_id: 'oncall-1' }, { session: 'fedcba9876543210', roles: ['approver'], ip: null, expires_at: T }) },
  ...CONSOLE_SESSION_END_REASONS.map((reason) => ({ note: `ended: ${reason}`, event: consoleSessionEndedEvent(T, { caller_id: 'compliance' }, { session: '0123456789abcdef', reason }) })),
  { note: 'ended, with a trace', event: consoleSessionEndedEvent(T, { caller_id: 'compliance', trace_id: TRACE }, { session: '0123456789abcdef', reason: 'signed_out' }) },
  { note: 'a prune', event: auditPrunedEvent(T, { from_seq: 1, to_seq: 20, last_hash: 'a'.repeat(64), before: '2026-01-01T00:00:00.000Z' }) },
  { note: 'a signed head', event: auditHeadSignedEvent(signHead({ seq: 20, hash: 'b'.repeat(64) }, T, AUDIT_KEY)) },
];

describe('docs/audit-events.md', () => {
  it('documents every event type, ids and payload, and nothing else', () => {
    expect([...SPEC.keys()].sort()).toEqual(Object.keys(AUDIT_EVENT_TYPES).sort());
    for (const [type, spec] of SPEC) {
      expect(spec.payloads.length, `${type} has a payload table`).toBeGreaterThan(0);
      for (const payload of spec.payloads) {
        expect(payload.data.size, `${type}${kindLabel(payload)} has members`).toBeGreaterThan(0);
        // A kind's table lists its own member with exactly its own value.
        if (payload.when !== null) expect(payload.data.get(payload.when.member)?.types).toEqual([{ kind: 'literal', value: payload.when.value }]);
      }
    }
  });

  it.each([
    { note: 'token.used action', type: 'token.used', member: 'action', list: TOKEN_USE_ACTIONS },
    { note: 'token.used (proxy) outcome', type: 'token.used', member: 'outcome', list: TOKEN_PROXY_OUTCOMES },
    { note: 'token.revoked reason', type: 'token.revoked', member: 'reason', list: TOKEN_REVOKE_REASONS },
    { note: 'task.completed status', type: 'task.completed', member: 'status', list: TASK_CLOSE_STATUSES },
    { note: 'auth.failed reason', type: 'auth.failed', member: 'reason', list: AUTH_FAILURE_REASONS },
    { note: 'access.refused code', type: 'access.refused', member: 'code', list: ACCESS_REFUSAL_CODES },
    { note: 'elevation.ended reason', type: 'elevation.ended', member: 'reason', list: ELEVATION_END_REASONS },
    { note: 'policy.suggestion.applied kind', type: 'policy.suggestion.applied', member: 'kind', list: SUGGESTION_KINDS },
    { note: 'policy.suggestion.dismissed kind', type: 'policy.suggestion.dismissed', member: 'kind', list: SUGGESTION_KINDS },
    { note: 'console.session_ended reason', type: 'console.session_ended', member: 'reason', list: CONSOLE_SESSION_END_REASONS },
  ])('lists exactly the closed list of the $note', ({ type, member, list }) => {
    const types = memberTypes(type, member);
    expect(types.map((t) => (t.kind === 'literal' ? t.value : label(t))).sort()).toEqual([...list].sort());
  });
});

describe('the event builders', () => {
  it.each(CASES)('$event.type, $note: is a valid event and matches the doc', ({ event }) => {
    expect(() => assertNewAuditEvent(event)).not.toThrow();
    expect(() => canonicalJson(event)).not.toThrow();
    expect(problems(event, ENVELOPE)).toEqual([]);
  });

  it.each(Object.keys(AUDIT_EVENT_TYPES))('%s: the cases show every optional id or member and every documented type', (type) => {
    expect(unexercised(type, CASES.map((c) => c.event).filter((e) => e.type === type))).toEqual([]);
  });

  const long = '/v1/' + 'a'.repeat(15_000);
  const splitPair = '/' + 'a'.repeat(AUTH_FAILED_ROUTE_MAX - 3) + '\u{1F600}' + 'b';
  it.each([
    { note: 'a 15 KB path is cut', route: long, ip: '203.0.113.7', want: { route: long.slice(0, AUTH_FAILED_ROUTE_MAX - 1) + '…' } },
    { note: 'a cut never splits a surrogate pair', route: splitPair, ip: null, want: { route: splitPair.slice(0, AUTH_FAILED_ROUTE_MAX - 2) + '…' } },
    { note: 'a path of exactly the limit is kept', route: '/' + 'r'.repeat(AUTH_FAILED_ROUTE_MAX - 1), ip: null, want: { route: '/' + 'r'.repeat(AUTH_FAILED_ROUTE_MAX - 1) } },
    { note: 'a lone surrogate becomes U+FFFD', route: '/v1/\ud800x', ip: null, want: { route: '/v1/\ufffdx' } },
    { note: 'a long ip is cut', route: '/v1/tasks', ip: '1'.repeat(500), want: { ip: '1'.repeat(AUTH_FAILED_IP_MAX - 1) + '…' } },
  ])('auth.failed: $note', ({ route, ip, want }) => {
    const event = authFailedEvent(T, { reason: 'unknown_key', route, ip });
    expect(event.data).toMatchObject(want);
    expect(event.data.route.length).toBeLessThanOrEqual(AUTH_FAILED_ROUTE_MAX);
    expect(() => canonicalJson(event)).not.toThrow();
  });

  it.each([
    { note: 'an unknown auth.failed reason', build: () => authFailedEvent(T, { reason: 'bad_key' as AuthFailureReason, route: '/', ip: null }) },
    { note: 'an unknown access.refused code', build: () => accessRefusedEvent(T, { caller_id: 'c' }, { code: 'forbidden' as 'forbidden_role', route: '/' }) },
    { note: 'a count of zero', build: () => authFailedEvent(T, { reason: 'missing', route: '/', ip: null }, { count: 0, first: T, last: T }) },
    { note: 'a file digest that is not SHA-256', build: () => policyLoadedEvent(T, { ...loaded, previous_revision: null, files: [{ path: 'a.yaml', sha256: 'xyz' }] }) },
    { note: 'an unknown token.revoked reason', build: () => tokenRevokedEvent(T, { jti: 'j', decision_id: 'd', agent_id: 'a' }, { reason: 'oops' as 'task_expired', issued_to: 'c' }) },
    { note: 'a negative agent count', build: () => policyLoadedEvent(T, { revision: 'r', bundle_revision: 'b', policies_revision: 'p', previous_revision: null, agents: -1, files: [] }) },
    { note: 'a prune of no events', build: () => auditPrunedEvent(T, { from_seq: 5, to_seq: 4, last_hash: 'a'.repeat(64), before: T }) },
    { note: 'an unknown elevation.ended reason', build: () => elevationEndedEvent(T, R, { access_request_id: 'ar-1', reason: 'revoked' as 'window', ended_at: T }) },
    { note: 'a fractional duration', build: () => accessRequestSubmittedEvent(T, { ...R, caller_id: 'pep-1' }, { ...submitted, resource: null, reason: null, duration_seconds: 1.5 }) },
    { note: 'a negative attempt count', build: () => accessRequestNotifiedEvent(T, R, { ...delivered, attempts: -1, status_code: 200 }) },
    { note: 'an unknown suggestion kind', build: () => policySuggestionDismissedEvent(T, { agent_id: 'a' }, { ...suggested, kind: 'widen' as 'remove_scope', note: null }) },
    { note: 'a suggestion without its id', build: () => policySuggestionDismissedEvent(T, { agent_id: 'a' }, { ...suggested, suggestion_id: '', note: null }) },
    { note: 'an applied file digest that is not SHA-256', build: () => policySuggestionAppliedEvent(T, { agent_id: 'a' }, { ...suggested, file: 'a.yaml', file_sha256_before: 'c'.repeat(64), file_sha256_after: 'XYZ', note: null }) },
    { note: 'an applied suggestion without its file', build: () => policySuggestionAppliedEvent(T, { agent_id: 'a' }, { ...suggested, file: '', file_sha256_before: 'c'.repeat(64), file_sha256_after: 'd'.repeat(64), note: null }) },
    { note: 'a signed head without a signature', build: () => auditHeadSignedEvent({ seq: 1, hash: 'a'.repeat(64), time: T, kid: 'k'.repeat(43), sig: '' }) },
  ])('refuses $note with a TypeError', ({ build }) => {
    expect(build).toThrow(TypeError);
  });

  const proxy = (data: Partial<Record<keyof TokenProxiedData, unknown>>): (() => unknown) => () =>
    tokenUsedEvent(T, { jti: 'j', caller_id: 'proxy' }, { ...proxied, ...data } as TokenUsedData);
  const report = (data: Partial<Record<keyof TokenReportedData, unknown>>): (() => unknown) => () =>
    tokenUsedEvent(T, { jti: 'j', caller_id: 'crm-api' }, { ...reported, ...data } as TokenUsedData);
  it.each([
    { note: 'an unknown action', build: () => tokenUsedEvent(T, { jti: 'j', caller_id: 'c' }, { action: 'verify', active: true } as unknown as TokenUsedData) },
    { note: 'data that is not an object', build: () => tokenUsedEvent(T, { jti: 'j', caller_id: 'c' }, null as unknown as TokenUsedData) },
    { note: 'an introspection without its verdict', build: () => tokenUsedEvent(T, { jti: 'j', caller_id: 'c' }, { action: 'introspect' } as TokenUsedData) },
    { note: 'an unknown outcome', build: proxy({ outcome: 'allowed' }) },
    { note: 'an integration that is no id', build: proxy({ integration: '../github' }) },
    { note: 'a lower-case method', build: proxy({ method: 'get' }) },
    { note: 'a method with a space', build: proxy({ method: 'GET /' }) },
    { note: 'a template too long', build: proxy({ path_template: '/' + 'a'.repeat(PROXY_PATH_TEMPLATE_MAX) }) },
    { note: 'a template that is no path', build: proxy({ path_template: 'repos/{owner}' }) },
    { note: 'a template with a line break', build: proxy({ path_template: '/repos\n/x' }) },
    { note: 'a scope outside the grammar', build: proxy({ scope: 'pr read' }) },
    { note: 'a record that is a string', build: proxy({ record: 'repo:acme/app' }) },
    { note: 'a record without an id', build: proxy({ record: { type: 'repo' } }) },
    { note: 'a record type that is no id', build: proxy({ record: { type: 'a repo', id: 'x' } }) },
    { note: 'a code too long', build: proxy({ outcome: 'refused', code: 'x'.repeat(PROXY_CODE_MAX + 1), upstream_status: null }) },
    { note: 'a code that is no code', build: proxy({ outcome: 'refused', code: 'Not Mapped', upstream_status: null }) },
    { note: 'a status that is no HTTP status', build: proxy({ upstream_status: 42 }) },
    { note: 'a status as text', build: proxy({ upstream_status: '200' }) },
    { note: 'negative bytes', build: proxy({ bytes_out: -1 }) },
    { note: 'fractional latency', build: proxy({ latency_ms: 1.5 }) },
    { note: 'bytes as text', build: proxy({ bytes_in: '0' }) },
    { note: 'a forwarded call with a code', build: proxy({ code: 'upstream_timeout' }) },
    { note: 'a forwarded call without a status', build: proxy({ upstream_status: null }) },
    { note: 'a refused call without a code', build: proxy({ outcome: 'refused', upstream_status: null }) },
    { note: 'a refused call the upstream answered', build: proxy({ outcome: 'refused', code: 'token_scope_insufficient' }) },
    { note: 'a refused call that forwarded bytes', build: proxy({ outcome: 'refused', code: 'token_scope_insufficient', upstream_status: null, bytes_in: 10 }) },
    { note: 'a failed call without a code', build: proxy({ outcome: 'failed', upstream_status: null }) },
    { note: 'an unmapped call with a scope', build: () => tokenUsedEvent(T, { jti: 'j', caller_id: 'proxy' }, { ...unmapped, scope: 'pr:read' }) },
    { note: 'an unmapped call with a record', build: () => tokenUsedEvent(T, { jti: 'j', caller_id: 'proxy' }, { ...unmapped, record: { type: 'repo', id: 'x' } }) },
    { note: 'a mapped call without a scope', build: proxy({ scope: null }) },
    { note: 'a reported use without a scope', build: report({ scope: null }) },
    { note: 'a reported scope outside the grammar', build: report({ scope: 'tickets read' }) },
    { note: 'a reported integration that is no id', build: report({ integration: '../crm' }) },
    { note: 'a reported record without an id', build: report({ record: { type: 'customer' } }) },
    { note: 'a reported record with an empty id', build: report({ record: { type: 'customer', id: '' } }) },
    { note: 'a reported record type that is no id', build: report({ record: { type: 'a customer', id: '1' } }) },
    { note: 'a reported route that is a concrete-looking relative path', build: report({ route: 'customers/1234' }) },
    { note: 'a reported route too long', build: report({ route: '/' + 'a'.repeat(REPORTED_ROUTE_MAX) }) },
    { note: 'a reported route with a line break', build: report({ route: '/customers\n/x' }) },
    { note: 'a reported route with a lone surrogate', build: report({ route: '/customers/\ud800' }) },
    { note: 'a reported route that is a number', build: report({ route: 7 }) },
    { note: 'a reported use without used_at', build: report({ used_at: undefined }) },
    { note: 'a reported used_at without milliseconds', build: report({ used_at: '2026-01-01T00:00:00Z' }) },
  ])('token.used refuses $note with a TypeError', ({ build }) => {
    expect(build).toThrow(TypeError);
  });

  it('token.used (proxy) keeps only its documented members, and cuts a long record id', () => {
    const extra = { ...proxied, active: true, body: 'secret', query: 'token=x', record: { type: 'repo', id: 'a'.repeat(5000) + '\ud800', extra: 1 } };
    const event = tokenUsedEvent(T, { jti: 'j', caller_id: 'proxy' }, extra);
    expect(Object.keys(event.data).sort()).toEqual(Object.keys(proxied).sort());
    const record = (event.data as TokenProxiedData).record;
    expect(record).toEqual({ type: 'repo', id: 'a'.repeat(PROXY_RECORD_ID_MAX - 1) + '…' });
    const odd = tokenUsedEvent(T, { jti: 'j', caller_id: 'proxy' }, { ...proxied, record: { type: 'channel', id: 'C1\ud800\u001b[2J' } });
    expect((odd.data as TokenProxiedData).record).toEqual({ type: 'channel', id: 'C1\ufffd\u001b[2J' });
    expect(() => canonicalJson(odd)).not.toThrow();
  });

  it('token.used (resource_server) keeps only its documented members, and cuts a long record id', () => {
    const extra = { ...reported, active: true, path: '/customers/1234/tickets', headers: { authorization: 'Bearer x' }, record: { type: 'customer', id: 'c'.repeat(5000), extra: 1 } };
    const event = tokenUsedEvent(T, { jti: 'j', caller_id: 'crm-api' }, extra);
    expect(Object.keys(event.data).sort()).toEqual(Object.keys(reported).sort());
    expect((event.data as TokenReportedData).record).toEqual({ type: 'customer', id: 'c'.repeat(REPORTED_RECORD_ID_MAX - 1) + '…' });
    expect(canonicalJson(tokenUsedEvent(T, { jti: 'j', caller_id: 'crm-api' }, reported).data)).toBe(
      '{"action":"resource_server","integration":"crm","record":{"id":"1234","type":"customer"},"route":"/customers/:id/tickets","scope":"tickets:read","used_at":"2026-01-01T00:00:00.250Z"}',
    );
  });

  it('token.used (proxy) is what it always was: the same bytes, so stored chains still verify', () => {
    expect(canonicalJson(tokenUsedEvent(T, { jti: 'j', caller_id: 'proxy' }, { ...proxied, extra: 1 } as TokenUsedData).data)).toBe(
      '{"action":"proxy","bytes_in":0,"bytes_out":5120,"code":null,"integration":"github","latency_ms":12,"method":"GET","outcome":"forwarded","path_template":"/repos/{owner}/{repo}/pulls/{pull_number}","record":{"id":"acme/app","type":"repo"},"scope":"pr:read","upstream_status":200}',
    );
  });

  it('token.used (introspect) is what it always was: the same bytes, so stored chains still verify', () => {
    const event = tokenUsedEvent(T, { jti: 'j', caller_id: 'c' }, { action: 'introspect', active: true, extra: 1 } as TokenUsedData);
    expect(canonicalJson(event.data)).toBe('{"action":"introspect","active":true}');
  });

  it('cuts a long suggestion note', () => {
    const event = policySuggestionDismissedEvent(T, { agent_id: 'a' }, { ...suggested, note: 'n'.repeat(5000) });
    expect(event.data.note).toBe('n'.repeat(SUGGESTION_NOTE_MAX - 1) + '…');
  });

  it('cuts a long delivery error', () => {
    const event = accessRequestNotificationFailedEvent(T, R, { ...delivered, last_error: 'x'.repeat(5000) });
    expect(event.data.last_error).toBe('x'.repeat(DELIVERY_ERROR_MAX - 1) + '…');
  });

  it('keeps at most the first details of a refusal, and only their documented members', () => {
    const details = Array.from({ length: 80 }, (_, i) => ({ path: `p${i}`, message: 'm', secret: 'x' }));
    const event = policyRefusedEvent(T, { code: 'policy_invalid', message: 'bad', details }, null);
    expect(event.data.details).toHaveLength(POLICY_REFUSED_DETAILS_MAX);
    expect(event.data.details[0]).toEqual({ path: 'p0', message: 'm' });
  });
});

// ---- what a real store writes ------------------------------------------------------------------------------

describe('events a real SQLite store writes', () => {
  let temp: TempStore;
  let written: AuditEventV1[] = [];

  beforeAll(async () => {
    temp = await tempStore();
    const s = temp.store;
    const caller = 'support-middleware';
    await s.registerTask(task('t-1', { trace_id: TRACE }));
    await s.registerTask(task('t-2', { expires_at: at(100) }));
    await s.recordDecision(decision('d-1', { task_id: 't-1', trace_id: TRACE }));
    await s.recordDecision(decision('d-2'));
    await s.recordDecision(decision('d-3', { task_id: 't-2' }));
    await s.recordDecision(decision('d-4', { outcome: 'deny' }));
    // A requestable denial: its offer's approver groups are kept in its event.
    await s.recordDecision(
      decision('d-4r', {
        outcome: 'deny',
        task_id: 't-1',
        token_grant: { access_request: { scopes: ['tickets:admin'], approvers: ['platform-oncall'], max_duration: 3600, require_reason: false, expires_at: at(600), resource: null, task_id: 't-1' } },
      }),
    );
    const bound = { integration: 'crm', resource: { type: 'customer', id: '1234' }, kid: 'k1' };
    await s.redeemDecision({ decision_id: 'd-1', caller_id: caller, now: at(10), trace_id: TRACE, makeToken: () => grant({ jti: 'j-1', event_data: bound }) });
    await s.redeemDecision({ decision_id: 'd-2', caller_id: caller, now: at(10), makeToken: () => grant({ jti: 'j-2', audience: null }) });
    await s.redeemDecision({ decision_id: 'd-3', caller_id: caller, now: at(10), makeToken: () => grant({ jti: 'j-3', event_data: { ...bound, provider_credential: providerRecord } }) });
    // Provider credentials minted and discarded (a redemption refused after its mint): with a task and trace, and without.
    await s.recordDecision(decision('d-5', { task_id: 't-1' }));
    await s.recordDecision(decision('d-6'));
    for (const [id, taskId, traceId] of [['d-5', 't-1', TRACE], ['d-6', null, null]] as const) {
      await s.claimProviderMint({ decision_id: id, caller_id: caller, claim: `c-${id}`, now: at(10), until: at(40) });
      await s.endProviderMint({ decision_id: id, claim: `c-${id}`, now: at(10), discarded: { agent_id: 'support-resolver', caller_id: caller, task_id: taskId, trace_id: traceId, integration: 'crm', reason: 'task_not_active', provider_credential: providerRecord } });
    }
    await s.recordTokenUse({ jti: 'j-1', caller_id: 'crm-api', at: at(11), trace_id: TRACE, data: { action: 'introspect', active: true } });
    await s.recordTokenUse({ jti: 'j-unknown', caller_id: 'crm-api', at: at(11), data: { action: 'introspect', active: false } });
    // Calls through the proxy with j-1: forwarded (with and without a record), refused (scope, unmapped), failed.
    const uses: TokenProxiedData[] = [
      proxied,
      { ...proxied, path_template: '/user', record: null },
      { ...proxied, method: 'PUT', scope: 'repo:write', outcome: 'refused', code: 'token_scope_insufficient', upstream_status: null },
      unmapped,
      { ...proxied, outcome: 'failed', code: 'upstream_timeout', upstream_status: null, bytes_out: 0 },
    ];
    for (const data of uses) await s.recordTokenUse({ jti: 'j-1', caller_id: 'proxy', at: at(11), trace_id: TRACE, data });
    // Requests a resource server reported, written as one batch: on a record through a named route, and with neither.
    await s.recordTokenUses([
      { jti: 'j-1', caller_id: 'crm-api', at: at(11), trace_id: TRACE, data: { ...reported, used_at: at(11) } },
      { jti: 'j-1', caller_id: 'crm-api', at: at(11), data: { ...reported, record: null, route: null, used_at: at(11) } },
    ]);
    await s.revokeToken({ jti: 'j-2', caller_id: caller, at: at(12), trace_id: TRACE });
    // Access requests: one per denial. t-1 (completed below) ends an elevation, t-2 (expired below) another, t-3's
    // window passes; one is denied, one expires pending. Deliveries: delivered with and without a status, dead.
    await s.registerTask(task('t-3', { expires_at: at(1000) }));
    const denials: Array<[string, string]> = [['dn-1', 't-1'], ['dn-2', 't-2'], ['dn-3', 't-3'], ['dn-4', 't-3'], ['dn-5', 't-3'], ['dn-6', 't-3']];
    for (const [id, taskId] of denials) await s.recordDecision(decision(id, { outcome: 'deny', task_id: taskId }));
    const ask = (id: string, denial: string, taskId: string, more: Partial<CreateAccessRequestInput> = {}): CreateAccessRequestInput => ({
      id, decision_id: denial, requested_by: caller, agent_id: 'support-resolver', task_id: taskId, integration: 'crm', resource: null,
      scopes: ['tickets:delete'], reason: null, duration_seconds: 60, max_duration_seconds: 3600, approver_groups: ['oncall'],
      policy_revision: 'rev-1', expires_at: at(50), deliveries: [], now: at(5), ...more,
    });
    await s.createAccessRequest(ask('ar-1', 'dn-1', 't-1', { resource: { type: 'customer', id: '1234' }, reason: 'escalation', trace_id: TRACE,
      deliveries: [{ id: 'dl-1', destination: 'generic', approver_group: 'oncall' }, { id: 'dl-2', destination: 'slack', approver_group: 'oncall' }, { id: 'dl-3', destination: 'pagerduty', approver_group: 'oncall' }] }));
    await s.createAccessRequest(ask('ar-2', 'dn-2', 't-2', { deliveries: [{ id: 'dl-4', destination: 'generic', approver_group: 'oncall' }] }));
    await s.createAccessRequest(ask('ar-3', 'dn-3', 't-3'));
    await s.createAccessRequest(ask('ar-4', 'dn-4', 't-3'));
    await s.createAccessRequest(ask('ar-5', 'dn-5', 't-3'));
    await s.createAccessRequest(ask('ar-6', 'dn-6', 't-3'));
    await s.claimDeliveries({ now: at(5), lease_until: at(6), limit: 10 });
    await s.completeDelivery({ id: 'dl-1', at: at(6), outcome: 'delivered', status_code: 204 });
    await s.completeDelivery({ id: 'dl-2', at: at(6), outcome: 'delivered' });
    await s.completeDelivery({ id: 'dl-3', at: at(6), outcome: 'dead', error: 'HTTP 500', status_code: 500 });
    await s.completeDelivery({ id: 'dl-4', at: at(6), outcome: 'dead' });
    await s.decideAccessRequest({ id: 'ar-1', verdict: 'approved', by: 'oncall-1', at: at(7), approved_until: at(607), note: 'ok', trace_id: TRACE });
    await s.decideAccessRequest({ id: 'ar-2', verdict: 'approved', by: 'oncall-1', at: at(7), approved_until: at(607) });
    await s.decideAccessRequest({ id: 'ar-3', verdict: 'approved', by: 'oncall-1', at: at(7), approved_until: at(8) });
    await s.decideAccessRequest({ id: 'ar-4', verdict: 'denied', by: 'oncall-1', at: at(7), note: 'no', trace_id: TRACE });
    await s.decideAccessRequest({ id: 'ar-6', verdict: 'denied', by: 'oncall-1', at: at(7) });
    await s.sweepAccessRequests({ now: at(60) });
    await s.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(13), trace_id: TRACE });
    await s.expireTasks({ now: at(200) });
    // Console sessions: two sign-ins (an address known or not, a trace or not), a sign-out and a replaced one.
    const fp = (n: number): string => String(n).repeat(16);
    const session = (n: number, ip: string | null, traceId?: string) =>
      s.createConsoleSession({
        id_sha256: fp(n).repeat(4), caller_id: 'compliance', key_sha256: 'k'.repeat(64), created_at: at(14), expires_at: at(900), idle_cut: at(0), max_live_per_caller: 20,
        event: consoleSessionStartedEvent(at(14), { caller_id: 'compliance', ...(traceId === undefined ? {} : { trace_id: traceId }) }, { session: fp(n), roles: ['auditor'], ip, expires_at: at(900) }),
      });
    await session(1, '127.0.0.1', TRACE);
    await session(2, null);
    await s.endConsoleSession(fp(1).repeat(4), at(15), consoleSessionEndedEvent(at(15), { caller_id: 'compliance', trace_id: TRACE }, { session: fp(1), reason: 'signed_out' }));
    await s.endConsoleSession(fp(2).repeat(4), at(15), consoleSessionEndedEvent(at(15), { caller_id: 'compliance' }, { session: fp(2), reason: 'replaced' }));
    // A sign-in beyond the caller's cap ends its oldest session (reason evicted).
    for (const n of [3, 4]) {
      await s.createConsoleSession({
        id_sha256: fp(n).repeat(4), caller_id: 'ops', key_sha256: 'k'.repeat(64), created_at: at(15 + n), expires_at: at(900), idle_cut: at(0), max_live_per_caller: 1,
        event: consoleSessionStartedEvent(at(15 + n), { caller_id: 'ops' }, { session: fp(n), roles: ['admin'], ip: null, expires_at: at(900) }),
      });
    }
    const edge = CASES.map((c) => c.event).filter((e) => e.type.startsWith('policy.') || e.type === 'evaluation' || e.type === 'auth.failed' || e.type === 'access.refused' || e.type === 'callers.replaced');
    await s.appendEvents(edge);
    for await (const event of s.iterateEvents()) written.push(event);
    // The trail's own events: a prune (of the two tasks registered at at(0), already collected above).
    const { event: pruned } = await s.pruneEvents({ before: at(1), at: at(300) });
    expect(pruned).toMatchObject({ type: 'audit.pruned', data: { from_seq: 1, to_seq: 2 } });
    written.push(pruned as AuditEventV1);
    const signed = await s.signHead((head) => signHead(head, at(301), AUDIT_KEY));
    written.push(signed as AuditEventV1);
  });
  afterAll(async () => {
    written = [];
    await temp.cleanup();
  });

  it.each(Object.keys(AUDIT_EVENT_TYPES) as AuditEventType[])('%s: every event matches the doc, and shows all it allows', (type) => {
    const events = written.filter((e) => e.type === type);
    expect(events.flatMap((e) => problems(e, SEALED).map((p) => `seq ${e.seq}: ${p}`))).toEqual([]);
    expect(unexercised(type, events)).toEqual([]);
  });
});
