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
import type { EvaluationTimeV1 } from '../wire/evaluation-time.js';

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
 * members left out in capitals; the renames (RENAMES); `m` for the reasons' messages; `E` an empty denied_scopes.
 */
const CODES = 'tack' + 'ADKIPRLGU' + 'pnugxym' + 'E';
const BIT: Readonly<Record<string, number>> = Object.fromEntries([...CODES].map((c, i) => [c, 1 << i]));

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

/** The object a rename applies to: the data, its result, or its input's task. */
function renamed(top: Json, where: 'top' | 'result' | 'task'): Json | undefined {
  if (where === 'top') return top;
  const target = where === 'result' ? top['result'] : (top['input'] as Json)['task'];
  return isRecord(target) ? target : undefined;
}

/**
 * Equality of two JSON values as canonical JSON sees them (a member whose value is undefined does not exist). Members
 * are never removed with `delete` here: an object that loses a member becomes slow for V8; they are set to undefined,
 * which both JSON encoders leave out.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let k = 0; k < a.length; k++) if (!sameJson(a[k], b[k])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const x = a as Json;
  const y = b as Json;
  let n = 0;
  for (const key in x) {
    if (x[key] === undefined) continue;
    if (!Object.hasOwn(y, key) || !sameJson(x[key], y[key])) return false;
    n++;
  }
  let m = 0;
  for (const key in y) if (y[key] !== undefined) m++;
  return n === m;
}

/** The milliseconds from `from` to the RFC 3339 instant `to`, when `to` is exactly that instant's own text. */
function offsetMs(from: number, to: string): number | undefined {
  const b = Date.parse(to);
  if (!Number.isSafeInteger(b) || b < from) return undefined;
  return new Date(b).toISOString() === to ? b - from : undefined;
}

/** Whether `time` is exactly `want` (an evaluationTime), compared member by member. */
function isEvaluationTime(time: Json, want: EvaluationTimeV1): boolean {
  let n = 0;
  for (const key in time) if (time[key] !== undefined) n++;
  return (
    n === 5 &&
    time['rfc3339'] === want.rfc3339 &&
    time['now_ns'] === want.now_ns &&
    time['weekday'] === want.weekday &&
    sameJson(time['date'], want.date) &&
    sameJson(time['clock'], want.clock)
  );
}

/**
 * The stored text of a decision event's data (masked input and result, the revision, a requestable denial's
 * approvers: every member a decision event has), or `undefined` when nothing can be left out (store the canonical
 * text). A member not passed here would be lost: a caller holding other data stores its canonical text instead.
 */
export function compactDecisionData(
  envelope: DecisionEnvelope,
  input: unknown,
  result: unknown,
  policyRevision: string,
  approvers?: readonly string[],
): string | undefined {
  if (!isRecord(input) || !isRecord(result)) return undefined;
  const i: Json = { ...input };
  const r: Json = { ...result };
  let mask = 0;
  const drop = (o: Json, key: string, code: string): void => {
    o[key] = undefined;
    mask |= BIT[code] as number;
  };
  // The event's time as the instant it names, when it is that instant's own RFC 3339 text (what expansion writes).
  const at = new Date(envelope.time);
  const atMs = at.getTime();
  const want = Number.isNaN(atMs) ? undefined : evaluationTime(at);
  const canonicalTime = want !== undefined && want.rfc3339 === envelope.time;
  if (canonicalTime && isRecord(input['time']) && isEvaluationTime(input['time'], want)) drop(i, 'time', 't');
  if (envelope.agent_id !== null && i['agent_id'] === envelope.agent_id) drop(i, 'agent_id', 'a');
  if (envelope.caller_id !== null && i['caller_id'] === envelope.caller_id) drop(i, 'caller_id', 'c');
  if (isRecord(input['task'])) i['task'] = { ...input['task'] };
  if (envelope.task_id !== null && isRecord(i['task']) && i['task']['id'] === envelope.task_id) drop(i['task'], 'id', 'k');
  if (envelope.agent_id !== null && r['agent_id'] === envelope.agent_id) drop(r, 'agent_id', 'A');
  if (envelope.decision_id !== null && r['decision_id'] === envelope.decision_id) drop(r, 'decision_id', 'D');
  if (envelope.task_id !== null && r['task_id'] === envelope.task_id) drop(r, 'task_id', 'K');
  if (r['integration'] !== undefined && input['integration'] !== undefined && sameJson(r['integration'], input['integration'])) drop(r, 'integration', 'I');
  if (r['policy_revision'] === policyRevision) drop(r, 'policy_revision', 'P');
  if (r['resource'] !== undefined && sameJson(r['resource'], input['resource'] ?? null)) drop(r, 'resource', 'R');
  if (typeof r['allow'] === 'boolean' && r['allow'] === (r['outcome'] === 'allow')) drop(r, 'allow', 'L');
  if (r['granted_scopes'] !== undefined && input['scopes'] !== undefined && sameJson(r['granted_scopes'], input['scopes'])) drop(r, 'granted_scopes', 'G');
  // An empty denied_scopes (every allow): the rollup reads it as SQL's null, which it counts as no denial too.
  if (Array.isArray(r['denied_scopes']) && r['denied_scopes'].length === 0) drop(r, 'denied_scopes', 'E');
  if (canonicalTime && typeof r['redeemable_until'] === 'string') {
    const ms = offsetMs(atMs, r['redeemable_until']);
    if (ms !== undefined) {
      r['redeemable_until'] = ms;
      mask |= BIT['U'] as number;
    }
  }
  const top: Json = { input: i, policy_revision: policyRevision, result: r };
  if (approvers !== undefined) top['approvers'] = approvers;
  for (const { code, where, long, short } of RENAMES) {
    const o = renamed(top, where);
    if (o === undefined || o[long] === undefined || Object.hasOwn(o, short)) continue;
    o[short] = o[long];
    drop(o, long, code);
  }
  // Each reason's message as `m` (its code, which the search matches as text, keeps its name).
  const reasons = r['reasons'];
  if (Array.isArray(reasons) && reasons.length > 0 && reasons.every((x) => isRecord(x) && x['message'] !== undefined && !Object.hasOwn(x, 'm'))) {
    r['reasons'] = reasons.map((x: Json) => ({ ...x, message: undefined, m: x['message'] }));
    mask |= BIT['m'] as number;
  }
  if (mask === 0) return undefined;
  top['~'] = mask;
  // Any JSON will do for storage (the canonical text is what expansion rebuilds); JSON.stringify is the quicker.
  return JSON.stringify(top);
}

/**
 * The canonical text of a stored decision event's data: the stored text itself unless it says members were left out; `undefined` when it says so but cannot be expanded (not JSON, or
 * changed since it was written): the caller treats the stored text as the data, so verification reports the event
 * as changed.
 */
export function expandDecisionData(envelope: DecisionEnvelope, stored: string): string | undefined {
  const value = expandDecisionValue(envelope, stored);
  if (value === undefined) return undefined;
  if (value === stored) return stored;
  try {
    return canonicalJson(value);
  } catch {
    return undefined;
  }
}

/**
 * The data a stored decision event's text holds, as a value (its left-out members undefined), without the canonical
 * text `expandDecisionData` makes for the hash: what a read of the decision (its terms, its input and result) needs.
 * A text that cannot be expanded is parsed as it is (and fails verification).
 */
export function decisionDataValue(envelope: DecisionEnvelope, stored: string): unknown {
  const value = expandDecisionValue(envelope, stored);
  if (value === undefined || value === stored) return JSON.parse(stored);
  // Expansion shares the input's record and scopes with the result (the text is the same): a value handed out gets
  // its own, so changing one never changes the other.
  const data = value as { input: Json; result: Json };
  for (const [from, to] of [['resource', 'resource'], ['scopes', 'granted_scopes']] as const) {
    const shared = data.result[to];
    if (typeof shared === 'object' && shared !== null && shared === data.input[from]) data.result[to] = structuredClone(shared);
  }
  return data;
}

/**
 * The data a stored decision event's text holds, as a value whose left-out members are set to undefined (canonical
 * JSON skips them): `stored` itself (the string) when nothing was left out, `undefined` when it cannot be expanded.
 */
function expandDecisionValue(envelope: DecisionEnvelope, stored: string): unknown {
  if (!stored.includes('"~":')) return stored;
  let data: unknown;
  try {
    data = JSON.parse(stored);
  } catch {
    return undefined;
  }
  // `"~":` inside a string of canonical data written as it is: no member `~` at the top.
  if (isRecord(data) && !Object.hasOwn(data, '~')) return stored;
  // Only the text compaction wrote (JSON.stringify's): SQL and the search read the stored text, so a rewrite that
  // parses the same (escapes, spacing, a duplicate key SQLite reads first) must fail verification, not expand.
  if (JSON.stringify(data) !== stored) return undefined;
  if (!isRecord(data) || !isRecord(data['input']) || !isRecord(data['result'])) return undefined;
  const mask = data['~'];
  if (typeof mask !== 'number' || !Number.isInteger(mask) || mask <= 0 || mask >= 2 ** CODES.length) return undefined;
  const has = (code: string): boolean => (mask & (BIT[code] as number)) !== 0;
  const i: Json = data['input'];
  const r: Json = data['result'];
  data['~'] = undefined;
  for (const { code, where, long, short } of RENAMES) {
    if (!has(code)) continue;
    const o = renamed(data, where);
    if (o === undefined || o[short] === undefined || Object.hasOwn(o, long)) return undefined;
    o[long] = o[short];
    o[short] = undefined;
  }
  if (has('t')) {
    const at = new Date(envelope.time);
    if (Number.isNaN(at.getTime())) return undefined;
    i['time'] = evaluationTime(at);
  }
  if (has('a')) i['agent_id'] = envelope.agent_id;
  if (has('c')) i['caller_id'] = envelope.caller_id;
  if (has('k')) {
    if (!isRecord(i['task'])) return undefined;
    i['task']['id'] = envelope.task_id;
  }
  if (has('m')) {
    const reasons = r['reasons'];
    if (!Array.isArray(reasons) || !reasons.every((x) => isRecord(x) && x['m'] !== undefined && !Object.hasOwn(x, 'message'))) return undefined;
    for (const x of reasons as Json[]) {
      x['message'] = x['m'];
      x['m'] = undefined;
    }
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
  return data;
}
