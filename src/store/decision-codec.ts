/**
 * How a decision event's data is stored: without the members its own columns and other members already state.
 *
 * The hashed event is unchanged (docs/audit-events.md): `{input, policy_revision, result}` in canonical JSON, and that
 * is what every read, export and verification gets back. The stored text leaves out what can be rebuilt exactly from
 * the event's columns (time, decision_id, agent_id, caller_id, task_id) and the members kept: `input.time` (rebuilt
 * from the event's time), the ids the input and the result repeat, the result's `integration`, `policy_revision`,
 * `resource`, `allow` (= outcome is allow) and `granted_scopes` when they equal what they repeat, and
 * `redeemable_until` as milliseconds after the event's time; a requestable denial's `access_request` without its
 * `template` (the decision id and the offer's `max_duration_seconds`) and its `scopes` when they are the input's, its
 * `expires_at` as milliseconds after the event's time; an elevated decision's `input.elevation` without the
 * `access_request_id` and `approved_until` its `result.approval` states and the `resource` the input states; and a
 * few members go under one-letter names (RENAMES).
 * A member is left out only when its value is exactly the one rebuilt, and `~` says which members were left out or
 * renamed (one bit each, CODES), so expansion is exact for any data, and a
 * stored text without `~` is the canonical data itself (every row written before migration 11).
 *
 * Kept in place, for what reads the stored text in SQL or as text: `input.integration`, `input.scopes`,
 * `input.resource`, `input.task.type`, `result.denied_scopes` unless empty (the usage rollup, which counts a missing
 * one, SQL's null, as none), `result.outcome` and
 * each reason's `code` (the decision search's text match), `result.approval` (the elevated decisions of a chain view).
 */
import { canonicalJson, canonicalJsonAt, sortKeys } from '../audit/index.js';
import { evaluationTime, sharedEvaluationTime } from '../wire/evaluation-time.js';
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
 * members left out in capitals; the renames (RENAMES); `m` for the reasons' messages; `E` an empty denied_scopes;
 * the offer's (result.access_request) template `T`, expires_at `X` and scopes `S`; the elevation's (input.elevation)
 * access_request_id `V`, approved_until `W` and resource `Q`.
 */
const CODES = 'tack' + 'ADKIPRLGU' + 'pnugxym' + 'E' + 'TXS' + 'VWQ';
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
  if (time === (want as unknown as Json)) return true;
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
  return encodeDecisionData(envelope, input, result, policyRevision, approvers).stored;
}

/** A decision event's data encoded once: the canonical texts of its input and its result (what the hash covers), and its stored text. */
export interface EncodedDecisionData {
  input: string;
  result: string;
  /** The compact text to store, or `undefined`: store the canonical text. */
  stored: string | undefined;
}

/** An object's members in canonical order, each as [key, the canonical text of its value]; members valued undefined left out. */
type Members = Array<[string, string]>;

const isPlain = (value: unknown): value is Json => {
  if (!isRecord(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/**
 * The members of `o` (a plain object `depth` containers below the data's root), each value encoded at its own depth;
 * the members `later` names, when present, get an empty text for the caller to fill (it encodes those in parts).
 */
function membersOf(o: Json, depth: number, later?: string, later2?: string): Members {
  const keys = sortKeys(Object.keys(o));
  const out: Members = [];
  for (const key of keys) {
    const value = o[key];
    if (value !== undefined) out.push([key, key === later || key === later2 ? '' : canonicalJsonAt(value, depth + 1)]);
  }
  return out;
}

/** Sets the text of member `key` (a placeholder of membersOf). */
function fill(members: Members, key: string, text: string): void {
  for (const member of members) if (member[0] === key) member[1] = text;
}

/** A key canonical JSON writes as it is, between quotes (what nearly every key is). */
const PLAIN_KEY = /^[\w~-]*$/;

/** The object text of members (in the order given: canonical when they are sorted). */
function objectText(members: Members): string {
  let out = '{';
  for (let k = 0; k < members.length; k++) {
    const [key, text] = members[k] as [string, string];
    out += (k === 0 ? '' : ',') + (PLAIN_KEY.test(key) ? '"' + key + '"' : canonicalJsonAt(key, 0)) + ':' + text;
  }
  return out + '}';
}

/** Sorts members by key in place (an insertion sort: a few members, nothing allocated; see sortKeys). */
function sortMembers(members: Members): void {
  for (let i = 1; i < members.length; i++) {
    const member = members[i] as [string, string];
    let j = i - 1;
    while (j >= 0 && (members[j] as [string, string])[0] > member[0]) {
      members[j + 1] = members[j] as [string, string];
      j--;
    }
    members[j + 1] = member;
  }
}

/** The text of `members` without the keys dropped, with `renames` applied (long → short), in canonical order. */
function compactText(members: Members, dropped: ReadonlySet<string>, renames?: ReadonlyMap<string, string>, replaced?: ReadonlyMap<string, string>): string {
  const kept: Members = [];
  for (const [key, text] of members) {
    if (dropped.has(key)) continue;
    kept.push([renames?.get(key) ?? key, replaced?.get(key) ?? text]);
  }
  if (renames !== undefined && renames.size > 0) sortMembers(kept);
  return objectText(kept);
}

const textOf = (members: Members, key: string): string | undefined => {
  for (const [k, text] of members) if (k === key) return text;
  return undefined;
};

/**
 * Encodes a decision event's data once: each member of its input and result is encoded a single time, and both the
 * canonical texts (hashed) and the stored text (the members left out or renamed as described at the top) are put
 * together from those pieces. The stored text is the canonical encoding of the compact value, which is also what
 * `JSON.stringify` writes for it once parsed (unless an object has a key that is an array index: expansion accepts
 * either). Throws CanonicalJsonError for data with no canonical encoding, with the path from the data's root; the
 * nesting limit counts from that root, so data the whole event's encoding (verification's) would refuse is refused
 * here, before it is written.
 */
export function encodeDecisionData(
  envelope: DecisionEnvelope,
  input: unknown,
  result: unknown,
  policyRevision: string,
  approvers?: readonly string[],
): EncodedDecisionData {
  try {
    return encodeParts(envelope, input, result, policyRevision, approvers);
  } catch (error) {
    // Say where, from the data's root: the whole data's encoder names the path.
    canonicalJson({ input, result, policy_revision: policyRevision, approvers });
    throw error;
  }
}

function encodeParts(envelope: DecisionEnvelope, input: unknown, result: unknown, policyRevision: string, approvers?: readonly string[]): EncodedDecisionData {
  if (!isPlain(input) || !isPlain(result)) return { input: canonicalJsonAt(input, 1), result: canonicalJsonAt(result, 1), stored: undefined };
  let mask = 0;
  const set = (code: string): void => {
    mask |= BIT[code] as number;
  };
  /** Leaves member `key` out of an object's stored text (its set of dropped keys), flagged by `code`. */
  const leaveOut = (dropped: Set<string>, key: string, code: string): void => {
    dropped.add(key);
    set(code);
  };

  // The input: its members, the task's and the elevation's one level down (each encoded once: their texts are made
  // of them).
  const task = input['task'];
  const taskMembers = isPlain(task) ? membersOf(task, 2) : undefined;
  const elevation = input['elevation'];
  const elevationMembers = isPlain(elevation) ? membersOf(elevation, 2) : undefined;
  const inputMembers = membersOf(input, 1, taskMembers === undefined ? undefined : 'task', elevationMembers === undefined ? undefined : 'elevation');
  if (taskMembers !== undefined) fill(inputMembers, 'task', objectText(taskMembers));
  if (elevationMembers !== undefined) fill(inputMembers, 'elevation', objectText(elevationMembers));
  const inputText = objectText(inputMembers);

  // The result: its members, each reason's one level further down (for the messages' rename), and the offer's.
  const reasons = result['reasons'];
  const renameMessages =
    Array.isArray(reasons) && reasons.length > 0 && reasons.every((x) => isPlain(x) && x['message'] !== undefined && !Object.hasOwn(x, 'm'));
  const offer = result['access_request'];
  const offerMembers = isPlain(offer) ? membersOf(offer, 2) : undefined;
  const resultMembers = membersOf(result, 1, renameMessages ? 'reasons' : undefined, offerMembers === undefined ? undefined : 'access_request');
  if (offerMembers !== undefined) fill(resultMembers, 'access_request', objectText(offerMembers));
  const shortReasons: string[] = [];
  if (renameMessages) {
    const full: string[] = [];
    for (const x of reasons as Json[]) {
      const m = membersOf(x, 3);
      full.push(objectText(m));
      shortReasons.push(compactText(m, NONE, MESSAGE_AS_M));
    }
    fill(resultMembers, 'reasons', '[' + full.join(',') + ']');
  }
  const resultText = objectText(resultMembers);

  // What can be left out of the input.
  const at = new Date(envelope.time);
  const atMs = at.getTime();
  const want = Number.isNaN(atMs) ? undefined : sharedEvaluationTime(at);
  const canonicalTime = want !== undefined && want.rfc3339 === envelope.time;
  const inputDropped = new Set<string>();
  const time = input['time'];
  if (canonicalTime && isRecord(time) && isEvaluationTime(time, want)) leaveOut(inputDropped, 'time', 't');
  if (envelope.agent_id !== null && input['agent_id'] === envelope.agent_id) leaveOut(inputDropped, 'agent_id', 'a');
  if (envelope.caller_id !== null && input['caller_id'] === envelope.caller_id) leaveOut(inputDropped, 'caller_id', 'c');
  const inputReplaced = new Map<string, string>();
  if (taskMembers !== undefined) {
    const t = task as Json;
    const taskDropped = new Set<string>();
    if (envelope.task_id !== null && t['id'] === envelope.task_id) leaveOut(taskDropped, 'id', 'k');
    const taskRenames = new Map<string, string>();
    for (const { code, long, short } of TASK_RENAMES) {
      if (t[long] === undefined || Object.hasOwn(t, short)) continue;
      taskRenames.set(long, short);
      set(code);
    }
    inputReplaced.set('task', compactText(taskMembers, taskDropped, taskRenames));
  }
  if (elevationMembers !== undefined) {
    // What the result's approval and the input's record already say.
    const e = elevation as Json;
    const approval = result['approval'];
    const elevationDropped = new Set<string>();
    if (isRecord(approval)) {
      if (typeof e['access_request_id'] === 'string' && e['access_request_id'] === approval['id']) leaveOut(elevationDropped, 'access_request_id', 'V');
      if (typeof e['approved_until'] === 'string' && e['approved_until'] === approval['approved_until']) leaveOut(elevationDropped, 'approved_until', 'W');
    }
    const record = textOf(elevationMembers, 'resource');
    if (record !== undefined && record === textOf(inputMembers, 'resource')) leaveOut(elevationDropped, 'resource', 'Q');
    if (elevationDropped.size > 0) inputReplaced.set('elevation', compactText(elevationMembers, elevationDropped));
  }
  const compactInput = compactText(inputMembers, inputDropped, undefined, inputReplaced);

  // What can be left out of the result: what the envelope, the input or the revision already say.
  const r = result;
  const resultDropped = new Set<string>();
  const drop = (key: string, code: string): void => leaveOut(resultDropped, key, code);
  if (envelope.agent_id !== null && r['agent_id'] === envelope.agent_id) drop('agent_id', 'A');
  if (envelope.decision_id !== null && r['decision_id'] === envelope.decision_id) drop('decision_id', 'D');
  if (envelope.task_id !== null && r['task_id'] === envelope.task_id) drop('task_id', 'K');
  const integration = textOf(resultMembers, 'integration');
  if (integration !== undefined && integration === textOf(inputMembers, 'integration')) drop('integration', 'I');
  if (r['policy_revision'] === policyRevision) drop('policy_revision', 'P');
  const resource = textOf(resultMembers, 'resource');
  if (resource !== undefined && resource === (textOf(inputMembers, 'resource') ?? 'null')) drop('resource', 'R');
  if (typeof r['allow'] === 'boolean' && r['allow'] === (r['outcome'] === 'allow')) drop('allow', 'L');
  const granted = textOf(resultMembers, 'granted_scopes');
  if (granted !== undefined && granted === textOf(inputMembers, 'scopes')) drop('granted_scopes', 'G');
  if (Array.isArray(r['denied_scopes']) && r['denied_scopes'].length === 0) drop('denied_scopes', 'E');
  const replaced = new Map<string, string>();
  if (canonicalTime && typeof r['redeemable_until'] === 'string') {
    const ms = offsetMs(atMs, r['redeemable_until']);
    if (ms !== undefined) {
      replaced.set('redeemable_until', String(ms));
      set('U');
    }
  }
  if (renameMessages) {
    replaced.set('reasons', '[' + shortReasons.join(',') + ']');
    set('m');
  }
  if (offerMembers !== undefined) {
    // The offer's template (the decision id, the offer's longest duration), its scopes when they are the input's, its
    // expiry as an offset.
    const o = offer as Json;
    const offerDropped = new Set<string>();
    const offerReplaced = new Map<string, string>();
    const template = o['template'];
    if (envelope.decision_id !== null && isRecord(template) && textOf(offerMembers, 'template') === templateText(envelope.decision_id, o)) {
      leaveOut(offerDropped, 'template', 'T');
    }
    const scopes = textOf(offerMembers, 'scopes');
    if (scopes !== undefined && scopes === textOf(inputMembers, 'scopes')) leaveOut(offerDropped, 'scopes', 'S');
    if (canonicalTime && typeof o['expires_at'] === 'string') {
      const ms = offsetMs(atMs, o['expires_at']);
      if (ms !== undefined) {
        offerReplaced.set('expires_at', String(ms));
        set('X');
      }
    }
    if (offerDropped.size > 0 || offerReplaced.size > 0) replaced.set('access_request', compactText(offerMembers, offerDropped, undefined, offerReplaced));
  }
  const resultRenames = new Map<string, string>();
  for (const { code, long, short } of RESULT_RENAMES) {
    if (r[long] === undefined || resultDropped.has(long) || Object.hasOwn(r, short)) continue;
    resultRenames.set(long, short);
    set(code);
  }
  const compactResult = compactText(resultMembers, resultDropped, resultRenames, replaced);

  // The top: approvers, input, p (the revision, always renamed: the top has no other member p), result, ~.
  set('p');
  const revision = canonicalJsonAt(policyRevision, 1);
  const stored =
    '{' +
    (approvers === undefined ? '' : '"approvers":' + canonicalJsonAt(approvers, 1) + ',') +
    '"input":' +
    compactInput +
    ',"p":' +
    revision +
    ',"result":' +
    compactResult +
    ',"~":' +
    String(mask) +
    '}';
  return { input: flat(inputText), result: flat(resultText), stored: flat(stored) };
}

/**
 * `text` as one flat string. A text put together with `+` is a tree of V8 cons strings, one node per piece, and the
 * texts wait in the write queue until their transaction hashes and writes them: under load the trees outlived a
 * young-generation collection and were copied and promoted node by node (a third of what a recorded decision
 * allocated survived a scavenge). Flattened here (one copy of the text), the nodes die at once and one string lives
 * on. ToNumber flattens (V8's String::Flatten; `{` makes it NaN at the first character); its result is kept in a
 * module variable so that an optimising compiler cannot drop the call as unused.
 */
function flat(text: string): string {
  flattened = Number(text);
  return text;
}

let flattened = 0;

/** A requestable denial's template as the Decider writes it (decider.ts): its decision id and the offer's longest duration. */
function offerTemplate(decisionId: string, offer: Json): Json {
  return { decision_id: decisionId, duration_seconds: offer['max_duration_seconds'] };
}

/** The canonical text of that template where the offer has it (three containers below the root), if it has one. */
function templateText(decisionId: string, offer: Json): string | undefined {
  try {
    return canonicalJsonAt(offerTemplate(decisionId, offer), 3);
  } catch {
    return undefined;
  }
}

/** The members of the input and the result whose bits say they were left out (the input's task id is checked apart). */
const LEFT_OUT: ReadonlyArray<readonly [string, 'input' | 'result', string]> = [
  ['t', 'input', 'time'],
  ['a', 'input', 'agent_id'],
  ['c', 'input', 'caller_id'],
  ['A', 'result', 'agent_id'],
  ['D', 'result', 'decision_id'],
  ['K', 'result', 'task_id'],
  ['I', 'result', 'integration'],
  ['P', 'result', 'policy_revision'],
  ['R', 'result', 'resource'],
  ['L', 'result', 'allow'],
  ['G', 'result', 'granted_scopes'],
  ['E', 'result', 'denied_scopes'],
];

/** The instant `ms` milliseconds after the event's time (offsetMs's inverse), or undefined when `ms` is not such an offset. */
function instantAfter(time: string, ms: unknown): string | undefined {
  const from = Date.parse(time);
  if (typeof ms !== 'number' || !Number.isSafeInteger(ms) || Number.isNaN(from)) return undefined;
  return new Date(from + ms).toISOString();
}

const NONE: ReadonlySet<string> = new Set();
const MESSAGE_AS_M: ReadonlyMap<string, string> = new Map([['message', 'm']]);
const TASK_RENAMES = RENAMES.filter((x) => x.where === 'task');
const RESULT_RENAMES = RENAMES.filter((x) => x.where === 'result');

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

/** Whether `stored` is the canonical text of `data` (false for data canonical JSON refuses). */
function sameCanonical(data: unknown, stored: string): boolean {
  try {
    return canonicalJson(data) === stored;
  } catch {
    return false;
  }
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
  // Only the text compaction wrote: SQL and the search read the stored text, so a rewrite that parses the same
  // (escapes, spacing, a duplicate key SQLite reads first) must fail verification, not expand. Compaction writes the
  // canonical text of the compact value (rows from its first version: JSON.stringify's, in the order that version
  // built the value), which JSON.stringify writes back unless an object has a key that is an array index (a parse
  // puts those first): then it is compared as canonical text.
  if (JSON.stringify(data) !== stored && !sameCanonical(data, stored)) return undefined;
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
  // A member left out is absent from the stored text: one written back there (which SQL would read) is a change.
  for (const [code, where, key] of LEFT_OUT) if (has(code) && Object.hasOwn(where === 'input' ? i : r, key)) return undefined;
  if (has('t')) {
    const at = new Date(envelope.time);
    if (Number.isNaN(at.getTime())) return undefined;
    i['time'] = evaluationTime(at);
  }
  if (has('a')) i['agent_id'] = envelope.agent_id;
  if (has('c')) i['caller_id'] = envelope.caller_id;
  if (has('k')) {
    if (!isRecord(i['task']) || Object.hasOwn(i['task'], 'id')) return undefined;
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
    const at = instantAfter(envelope.time, r['redeemable_until']);
    if (at === undefined) return undefined;
    r['redeemable_until'] = at;
  }
  if (has('T') || has('S') || has('X')) {
    const o = r['access_request'];
    if (!isRecord(o)) return undefined;
    if (has('S')) {
      if (Object.hasOwn(o, 'scopes') || i['scopes'] === undefined) return undefined;
      o['scopes'] = structuredClone(i['scopes']);
    }
    if (has('X')) {
      const at = instantAfter(envelope.time, o['expires_at']);
      if (at === undefined) return undefined;
      o['expires_at'] = at;
    }
    if (has('T')) {
      if (Object.hasOwn(o, 'template') || envelope.decision_id === null) return undefined;
      o['template'] = structuredClone(offerTemplate(envelope.decision_id, o));
    }
  }
  if (has('V') || has('W') || has('Q')) {
    const e = i['elevation'];
    const approval = r['approval'];
    if (!isRecord(e)) return undefined;
    if (has('V') || has('W')) {
      if (!isRecord(approval)) return undefined;
      if (has('V')) {
        if (Object.hasOwn(e, 'access_request_id') || typeof approval['id'] !== 'string') return undefined;
        e['access_request_id'] = approval['id'];
      }
      if (has('W')) {
        if (Object.hasOwn(e, 'approved_until') || typeof approval['approved_until'] !== 'string') return undefined;
        e['approved_until'] = approval['approved_until'];
      }
    }
    if (has('Q')) {
      if (Object.hasOwn(e, 'resource') || i['resource'] === undefined) return undefined;
      e['resource'] = structuredClone(i['resource']);
    }
  }
  return data;
}
