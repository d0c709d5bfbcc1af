import { formatPath } from './field-path.js';
import type { PathSegment } from './policy-types.js';
import { placeholderBoundaryProblem } from './provider-map-compiler.js';
import { TASK_CONTEXT_KEY_PATTERN } from '../wire/decision-v1.js';

/*
 * The provider maps of a compiled bundle (`agentpdp_compiled/data.json`, `provider_maps`), checked when the bundle
 * is read: they decide what a minted provider credential reaches, and come from a file that may be unsigned, edited
 * or built by an older agent-pdp. Every field is held to what `provider-map-compiler.ts` produces from a map the
 * schema accepted (kinds, members, patterns, template parts, the placeholder rule); anything else is refused with its
 * path, so nothing is minted from a map no compiler would have written.
 */

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SCOPE = /^[A-Za-z0-9_.:/*+@=-]{1,128}$/;
const TASK_KEY = new RegExp(TASK_CONTEXT_KEY_PATTERN);
const AWS_ACTION = /^[a-z0-9-]+:[A-Za-z0-9*]+$/;
const AWS_CONDITION_OPERATOR = /^((ForAllValues|ForAnyValue):)?[A-Za-z]+$/;
const AWS_CONDITION_KEY = /^[A-Za-z0-9]+:[A-Za-z0-9/_-]+$/;
const GOOGLE_SCOPE = /^https:\/\/www\.googleapis\.com\/auth\/[A-Za-z0-9._/-]{1,200}$/;
const GCS_BUCKET = /^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/;
const GCS_ROLE = /^roles\/storage\.[A-Za-z]+$/;

class Malformed extends Error {
  constructor(
    readonly path: readonly PathSegment[],
    message: string,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

function object(value: unknown, path: readonly PathSegment[], keys: readonly string[] | null): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Malformed(path, 'expected an object');
  if (keys !== null) {
    const unknown = Object.keys(value).find((k) => !keys.includes(k));
    if (unknown !== undefined) throw new Malformed([...path, unknown], 'is not a member of it');
    const missing = keys.find((k) => !Object.hasOwn(value, k));
    if (missing !== undefined) throw new Malformed([...path, missing], 'is missing');
  }
  return value as Json;
}

function list(value: unknown, path: readonly PathSegment[]): unknown[] {
  if (!Array.isArray(value) || value.length === 0) throw new Malformed(path, 'expected a non-empty list');
  return value;
}

function text(value: unknown, path: readonly PathSegment[], pattern: RegExp): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw new Malformed(path, `expected a string matching ${pattern.source}`);
  return value;
}

/** A compiled template: text without braces, `{record.id}`, `{record.type}`, `{task.<key>}`; `pattern`: the placeholder rule. */
function template(value: unknown, path: readonly PathSegment[], pattern: boolean): void {
  const parts = list(value, path);
  parts.forEach((part, i) => {
    const at = [...path, i];
    const p = object(part, at, null);
    if (Object.hasOwn(p, 'text')) {
      object(p, at, ['text']);
      if (typeof p['text'] !== 'string' || p['text'] === '' || /[{}]/.test(p['text'])) throw new Malformed([...at, 'text'], 'expected text without braces');
    } else if (p['from'] === 'record') {
      object(p, at, ['from', 'name']);
      if (p['name'] !== 'id' && p['name'] !== 'type') throw new Malformed([...at, 'name'], 'expected id or type');
    } else if (p['from'] === 'task') {
      object(p, at, ['from', 'name']);
      text(p['name'], [...at, 'name'], TASK_KEY);
    } else {
      throw new Malformed(at, 'expected {text}, {from: record, name} or {from: task, name}');
    }
  });
  if (pattern) {
    const problem = placeholderBoundaryProblem(parts as Parameters<typeof placeholderBoundaryProblem>[0]);
    if (problem !== null) throw new Malformed(path, problem);
  }
}

function scopes(value: unknown, path: readonly PathSegment[], each: (entry: unknown, at: PathSegment[]) => void): void {
  const record = object(value, path, null);
  if (Object.keys(record).length === 0) throw new Malformed(path, 'maps no scope');
  for (const [scope, entries] of Object.entries(record)) {
    if (!SCOPE.test(scope)) throw new Malformed([...path, scope], 'is not a scope');
    list(entries, [...path, scope]).forEach((entry, i) => each(entry, [...path, scope, i]));
  }
}

function providerMap(name: string, value: unknown, path: PathSegment[]): void {
  const kind = object(value, path, null)['kind'];
  if (kind === 'aws') {
    const map = object(value, path, ['integration', 'kind', 'scopes']);
    if (map['integration'] !== name) throw new Malformed([...path, 'integration'], `expected ${name}`);
    scopes(map['scopes'], [...path, 'scopes'], (entry, at) => {
      const s = object(entry, at, ['actions', 'resources', 'conditions']);
      list(s['actions'], [...at, 'actions']).forEach((a, i) => text(a, [...at, 'actions', i], AWS_ACTION));
      list(s['resources'], [...at, 'resources']).forEach((r, i) => {
        template(r, [...at, 'resources', i], true);
        const first = (r as Array<{ text?: unknown }>)[0]?.text;
        if (typeof first !== 'string' || !first.startsWith('arn:')) throw new Malformed([...at, 'resources', i], 'expected an ARN');
      });
      for (const [op, keys] of Object.entries(object(s['conditions'], [...at, 'conditions'], null))) {
        if (!AWS_CONDITION_OPERATOR.test(op)) throw new Malformed([...at, 'conditions', op], 'is not a condition operator');
        const byKey = object(keys, [...at, 'conditions', op], null);
        if (Object.keys(byKey).length === 0) throw new Malformed([...at, 'conditions', op], 'names no condition key');
        for (const [key, values] of Object.entries(byKey)) {
          if (!AWS_CONDITION_KEY.test(key)) throw new Malformed([...at, 'conditions', op, key], 'is not a condition key');
          list(values, [...at, 'conditions', op, key]).forEach((v, i) => template(v, [...at, 'conditions', op, key, i], true));
        }
      }
    });
  } else if (kind === 'google_workspace') {
    const map = object(value, path, ['integration', 'kind', 'subject', 'scopes']);
    if (map['integration'] !== name) throw new Malformed([...path, 'integration'], `expected ${name}`);
    template(map['subject'], [...path, 'subject'], false);
    scopes(map['scopes'], [...path, 'scopes'], (url, at) => text(url, at, GOOGLE_SCOPE));
  } else if (kind === 'gcp_storage') {
    const map = object(value, path, ['integration', 'kind', 'scopes']);
    if (map['integration'] !== name) throw new Malformed([...path, 'integration'], `expected ${name}`);
    scopes(map['scopes'], [...path, 'scopes'], (entry, at) => {
      const r = object(entry, at, ['bucket', 'role', 'object_prefix']);
      text(r['bucket'], [...at, 'bucket'], GCS_BUCKET);
      text(r['role'], [...at, 'role'], GCS_ROLE);
      if (r['object_prefix'] === null) return;
      template(r['object_prefix'], [...at, 'object_prefix'], true);
      const last = (r['object_prefix'] as Array<{ text?: unknown }>).at(-1)?.text;
      if (typeof last !== 'string' || !last.endsWith('/')) throw new Malformed([...at, 'object_prefix'], 'expected a prefix ending with /');
    });
  } else {
    throw new Malformed([...path, 'kind'], 'expected aws, google_workspace or gcp_storage');
  }
}

/** Why a compiled bundle's `provider_maps` is not what the compiler writes (`provider_maps.<path>: …`), or null. */
export function providerMapsProblem(value: unknown): string | null {
  try {
    const maps = object(value, ['provider_maps'], null);
    for (const [name, map] of Object.entries(maps)) {
      if (!ID.test(name)) throw new Malformed(['provider_maps', name], 'is not an integration id');
      providerMap(name, map, ['provider_maps', name]);
    }
    return null;
  } catch (err) {
    if (err instanceof Malformed) return `${formatPath(err.path)}: ${err.message}`;
    throw err;
  }
}
