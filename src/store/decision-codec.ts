/**
 * How a decision event's data is stored: without the members its own columns and other members already state.
 *
 * The hashed event is unchanged (docs/audit-events.md): `{input, policy_revision, result}` in canonical JSON, and that
 * is what every read, export and verification gets back. The stored text leaves out what can be rebuilt exactly from
 * the event's columns (time, decision_id, agent_id, caller_id, task_id) and the members kept: `input.time` (rebuilt
 * from the event's time), the ids the input and the result repeat, the result's `integration`, `policy_revision`,
 * `resource`, `allow` (= outcome is allow) and `granted_scopes` when they equal what they repeat, and
 * `redeemable_until` as milliseconds after the event's time; and a few members go under one-letter names (RENAMES).
 * A member is left out only when its value is exactly the one rebuilt, and `~` says which members were left out or
 * renamed (one bit each, CODES), so expansion is exact for any data, and a
 * stored text without `~` is the canonical data itself (every row written before migration 11).
 *
 * Kept in place, for what reads the stored text in SQL or as text: `input.integration`, `input.scopes`,
 * `input.resource`, `input.task.type`, `result.denied_scopes` unless empty (the usage rollup, which counts a missing
 * one, SQL's null, as none), `result.outcome` and
 * each reason's `code` (the decision search's text match), `result.approval` (the elevated decisions of a chain view).
 */
import { canonicalJson } from '../audit/index.js';
import { evaluationTime } from '../wire/evaluation-time.js';

/** The event's columns the stored data leans on. */
export interface DecisionEnvelope {
  time: string;
  decision_id: string | null;
  agent_id: string | null;
  caller_id: string | null;
  task_id: string | null;
}

type Json = Record<string, unknown>;

const isRecord = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Member codes, bit i of `~` for CODES[i]: input.time, input.agent_id, input.caller_id, input.task.id; the result's
 * members left out in capitals; the renames (RENAMES); `m` for the reasons' messages.
 */
const CODES = 'tack' + 'ADKIPRLGU' + 'pnugxym' + 'E';

/**
 * Members stored under a one-letter name (when that name is free in their object): the revision, the result's
 * window, TTL and granted scopes (where kept), the task's context and `registered`. Never a member read in SQL or as
 * text (the list at the top).
 */
const RENAMES: ReadonlyArray<{ code: string; where: 'top' | 'result' | 'task'; long: string; short: string }> = [
  { code: 'p', where: 'top', long: 'policy_revision', short: 'p' },
  { code: 'n', where: 'result', long: 'token_ttl_seconds', short: 'n' },
  { code: 'u', where: 'result', long: 'redeemable_until', short: 'u' },
  { code: 'g', where: 'result', long: 'granted_scopes', short: 'g' },
  { code: 'x', where: 'task', long: 'context', short: 'x' },
  { code: 'y', where: 'task', long: 'registered', short: 'y' },
];

function renamed(top: Json, where: 'top' | 'result' | 'task'): Json | undefined {
  if (where === 'top') return top;
  const input = top['input'] as Json;
  const target = where === 'result' ? top['result'] : input['task'];
  return isRecord(target) ? target : undefined;
}

/** Canonical equality of two JSON values (false when either has no encoding). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  try {
    return canonicalJson(a) === canonicalJson(b);
  } catch {
    return false;
  }
}

/** The milliseconds between two RFC 3339 instants, when the later one is exactly the earlier plus them. */
function offsetMs(from: string, to: string): number | undefined {
  const a = Date.parse(from);
  const b = Date.parse(to);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a) return undefined;
  return new Date(b).toISOString() === to && new Date(a).toISOString() === from ? b - a : undefined;
}

/**
 * The stored text of a decision event's data (masked input and result, the revision), or `undefined` when nothing
 * can be left out (store the canonical text).
 */
export function compactDecisionData(envelope: DecisionEnvelope, input: unknown, result: unknown, policyRevision: string): string | undefined {
  if (!isRecord(input) || !isRecord(result)) return undefined;
  const i: Json = { ...input };
  const r: Json = { ...result };
  let left = '';
  if (isRecord(input['time'])) {
    const at = new Date(envelope.time);
    if (!Number.isNaN(at.getTime()) && at.toISOString() === envelope.time && same(input['time'], evaluationTime(at))) {
      delete i['time'];
      left += 't';
    }
  }
  if (envelope.agent_id !== null && i['agent_id'] === envelope.agent_id) (delete i['agent_id'], (left += 'a'));
  if (envelope.caller_id !== null && i['caller_id'] === envelope.caller_id) (delete i['caller_id'], (left += 'c'));
  if (envelope.task_id !== null && isRecord(input['task']) && input['task']['id'] === envelope.task_id) {
    const task = { ...input['task'] };
    delete task['id'];
    i['task'] = task;
    left += 'k';
  }
  if (envelope.agent_id !== null && r['agent_id'] === envelope.agent_id) (delete r['agent_id'], (left += 'A'));
  if (envelope.decision_id !== null && r['decision_id'] === envelope.decision_id) (delete r['decision_id'], (left += 'D'));
  if (envelope.task_id !== null && r['task_id'] === envelope.task_id) (delete r['task_id'], (left += 'K'));
  if (Object.hasOwn(r, 'integration') && Object.hasOwn(input, 'integration') && same(r['integration'], input['integration'])) {
    delete r['integration'];
    left += 'I';
  }
  if (r['policy_revision'] === policyRevision) (delete r['policy_revision'], (left += 'P'));
  if (Object.hasOwn(r, 'resource') && same(r['resource'], input['resource'] ?? null)) (delete r['resource'], (left += 'R'));
  if (typeof r['allow'] === 'boolean' && r['allow'] === (r['outcome'] === 'allow')) (delete r['allow'], (left += 'L'));
  if (Object.hasOwn(r, 'granted_scopes') && Object.hasOwn(input, 'scopes') && same(r['granted_scopes'], input['scopes'])) {
    delete r['granted_scopes'];
    left += 'G';
  }
  // An empty denied_scopes (every allow): the rollup reads it as SQL's null, which it counts as no denial too.
  if (Array.isArray(r['denied_scopes']) && r['denied_scopes'].length === 0) (delete r['denied_scopes'], (left += 'E'));
  if (typeof r['redeemable_until'] === 'string') {
    const ms = offsetMs(envelope.time, r['redeemable_until']);
    if (ms !== undefined) (r['redeemable_until'] = ms, (left += 'U'));
  }
  if (isRecord(i['task'])) i['task'] = { ...i['task'] };
  const top: Json = { input: i, policy_revision: policyRevision, result: r };
  for (const { code, where, long, short } of RENAMES) {
    const o = renamed(top, where);
    if (o === undefined || !Object.hasOwn(o, long) || Object.hasOwn(o, short)) continue;
    o[short] = o[long];
    delete o[long];
    left += code;
  }
  // Each reason's message as `m` (its code, which the search matches as text, keeps its name).
  const reasons = r['reasons'];
  if (Array.isArray(reasons) && reasons.length > 0 && reasons.every((x) => isRecord(x) && Object.hasOwn(x, 'message') && !Object.hasOwn(x, 'm'))) {
    r['reasons'] = reasons.map((x: Json) => {
      const { message, ...rest } = x;
      return { ...rest, m: message };
    });
    left += 'm';
  }
  if (left === '') return undefined;
  let mask = 0;
  for (const code of left) mask |= 1 << CODES.indexOf(code);
  top['~'] = mask;
  return canonicalJson(top);
}

/**
 * The canonical text of a stored decision event's data: the stored text itself unless it lists members left out;
 * `undefined` when it lists them but cannot be expanded (not JSON, or changed since it was written): the caller
 * treats the stored text as the data, so verification reports the event as changed.
 */
export function expandDecisionData(envelope: DecisionEnvelope, stored: string): string | undefined {
  if (!stored.includes('"~":')) return stored;
  let data: unknown;
  try {
    data = JSON.parse(stored);
  } catch {
    return undefined;
  }
  // `"~":` inside a string of canonical data written as it is: no member `~` at the top.
  if (isRecord(data) && !Object.hasOwn(data, '~')) return stored;
  if (!isRecord(data) || !isRecord(data['input']) || !isRecord(data['result'])) return undefined;
  const mask = data['~'];
  if (typeof mask !== 'number' || !Number.isInteger(mask) || mask <= 0 || mask >= 2 ** CODES.length) return undefined;
  const left = [...CODES].filter((_, bit) => (mask & (1 << bit)) !== 0).join('');
  const i: Json = { ...data['input'] };
  const r: Json = { ...data['result'] };
  if (isRecord(i['task'])) i['task'] = { ...i['task'] };
  data = { ...data, input: i, result: r };
  for (const { code, where, long, short } of RENAMES) {
    if (!left.includes(code)) continue;
    const o = renamed(data as Json, where);
    if (o === undefined || !Object.hasOwn(o, short) || Object.hasOwn(o, long)) return undefined;
    o[long] = o[short];
    delete o[short];
  }
  if (!isRecord(data)) return undefined;
  const has = (code: string) => left.includes(code);
  if (has('t')) {
    const at = new Date(envelope.time);
    if (Number.isNaN(at.getTime())) return undefined;
    i['time'] = evaluationTime(at);
  }
  if (has('a')) i['agent_id'] = envelope.agent_id;
  if (has('c')) i['caller_id'] = envelope.caller_id;
  if (has('k')) {
    if (!isRecord(i['task'])) return undefined;
    i['task'] = { ...i['task'], id: envelope.task_id };
  }
  if (has('m')) {
    const reasons = r['reasons'];
    if (!Array.isArray(reasons) || !reasons.every((x) => isRecord(x) && Object.hasOwn(x, 'm') && !Object.hasOwn(x, 'message'))) return undefined;
    r['reasons'] = reasons.map((x: Json) => {
      const { m, ...rest } = x;
      return { ...rest, message: m };
    });
  }
  if (has('A')) r['agent_id'] = envelope.agent_id;
  if (has('D')) r['decision_id'] = envelope.decision_id;
  if (has('K')) r['task_id'] = envelope.task_id;
  if (has('I')) r['integration'] = i['integration'];
  if (has('P')) r['policy_revision'] = data['policy_revision'];
  if (has('R')) r['resource'] = i['resource'] ?? null;
  if (has('L')) r['allow'] = r['outcome'] === 'allow';
  if (has('G')) r['granted_scopes'] = i['scopes'];
  if (has('E')) r['denied_scopes'] = [];
  if (has('U')) {
    const ms = r['redeemable_until'];
    const from = Date.parse(envelope.time);
    if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || Number.isNaN(from)) return undefined;
    r['redeemable_until'] = new Date(from + ms).toISOString();
  }
  const full: Json = { input: i, result: r };
  if (Object.hasOwn(data, 'policy_revision')) full['policy_revision'] = data['policy_revision'];
  try {
    return canonicalJson(full);
  } catch {
    return undefined;
  }
}
