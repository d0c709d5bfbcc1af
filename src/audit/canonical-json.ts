/**
 * Canonical JSON: the one byte encoding that audit hashes are computed over.
 *
 * Follows RFC 8785 (JSON Canonicalization Scheme) for the values agent-pdp produces: object keys sorted by UTF-16
 * code units, no whitespace, numbers in ECMAScript shortest round-trip form (`-0` is `0`), strings escaped as
 * `JSON.stringify` does. An auditor can reproduce it with any JCS library.
 *
 * Stricter than `JSON.stringify`, because a hash over silently altered data is worse than an error:
 * - non-finite numbers, `bigint`, functions, symbols and `undefined` inside arrays are refused;
 * - strings with lone UTF-16 surrogates are refused (JCS requires I-JSON, and other languages disagree on them);
 * - only plain objects and arrays are accepted as containers (no `Date`, `Map`, class instances, no `toJSON`);
 * - nesting deeper than {@link MAX_DEPTH} is refused (it also stops cycles).
 * Object properties whose value is `undefined` are omitted, as `JSON.stringify` does.
 */

/** Containers nested deeper than this are refused. */
export const MAX_DEPTH = 128;

/** Thrown for a value that has no canonical encoding; `path` says where (`$.input.scopes[2]`). */
export class CanonicalJsonError extends TypeError {
  override readonly name = 'CanonicalJsonError';
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(`${message} at ${path}`);
  }
}

/**
 * Already-canonical JSON text, emitted verbatim by {@link canonicalJson}. Trusted input: the caller vouches that
 * `json` is the canonical encoding of some value (the store uses it for data it encoded itself).
 */
export class RawJson {
  constructor(readonly json: string) {}
}

/** The canonical encoding of `value`. Throws {@link CanonicalJsonError} when there is none. */
export function canonicalJson(value: unknown): string {
  return canonicalJsonAt(value, 0);
}

/**
 * The canonical encoding of `value` as a part of a larger value, `depth` containers below its root: the same text,
 * with the nesting limit counted from that root (so the parts of a value, encoded one by one, are refused exactly
 * when the whole would be). An error's path is relative to `value`.
 */
export function canonicalJsonAt(value: unknown, depth: number): string {
  try {
    return encode(value, null, depth);
  } catch (error) {
    if (!(error instanceof Unencodable)) throw error;
    // Fast path failed: encode again, tracking the path, to say where.
    encode(value, [], depth);
    throw error;
  }
}

/** Internal: raised on the fast path, which does not track where it is. */
class Unencodable extends Error {}

interface MaybeWellFormed {
  isWellFormed(): boolean;
}

const NEEDS_ESCAPE = /["\\\u0000-\u001f]/;

function encodeString(value: string, path: Array<string | number> | null): string {
  if (!(value as unknown as MaybeWellFormed).isWellFormed()) fail('string with a lone surrogate', path);
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : '"' + value + '"';
}

function encode(value: unknown, path: Array<string | number> | null, depth: number): string {
  switch (typeof value) {
    case 'string':
      return encodeString(value, path);
    case 'number':
      if (!Number.isFinite(value)) fail(`non-finite number ${String(value)}`, path);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return fail(`unsupported ${typeof value}`, path);
  }
  if (value === null) return 'null';
  if (value instanceof RawJson) return value.json;
  if (!Object.isFrozen(value)) return encodeContainer(value, path, depth);
  const kept = frozenTexts.get(value);
  if (kept !== undefined && kept.height > 0 && depth + kept.height <= MAX_DEPTH) return kept.text;
  const text = encodeContainer(value, path, depth);
  if (kept === undefined) remember(value, text);
  return text;
}

function encodeContainer(value: object, path: Array<string | number> | null, depth: number): string {
  if (depth >= MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`, path);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      path?.push(i);
      if (item === undefined) fail('undefined array element', path);
      out += (i === 0 ? '' : ',') + encode(item, path, depth + 1);
      path?.pop();
    }
    return out + ']';
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    fail(`unsupported object (${(value as object).constructor?.name ?? 'unknown'}); use plain objects`, path);
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  sortKeys(keys);
  let out = '{';
  let first = true;
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    path?.push(key);
    out += (first ? '' : ',') + encodeString(key, path) + ':' + encode(item, path, depth + 1);
    path?.pop();
    first = false;
  }
  return out + '}';
}

/**
 * The canonical texts of deeply frozen values already encoded, with their height (containers nested in them, the
 * value itself counted): a value nobody can change has one text, so the values a decide shares with many others (a
 * task's context and its elevations, as the store hands them out, rows.ts) are encoded once. A text is reused only
 * where the nesting limit still holds for it.
 */
const frozenTexts = new WeakMap<object, { readonly text: string; readonly height: number }>();

/**
 * Keeps `text` for `value` when every container in it is a frozen plain object or array; else keeps that it could
 * change (height -1), so the walk is not made again.
 */
function remember(value: object, text: string): void {
  const height = frozenHeight(value, 0);
  frozenTexts.set(value, height > 0 ? { text, height } : NOT_KEPT);
}

const NOT_KEPT = Object.freeze({ text: '', height: -1 });

/** The height of `value` when it is a deeply frozen plain container (a leaf: 0), else -1. */
function frozenHeight(value: unknown, depth: number): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (!Object.isFrozen(value) || depth >= MAX_DEPTH) return -1;
  const proto: unknown = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return -1;
  let below = 0;
  for (const item of Object.values(value)) {
    const h = frozenHeight(item, depth + 1);
    if (h < 0) return -1;
    if (h > below) below = h;
  }
  return below + 1;
}

/**
 * Sorts an object's keys in place, by UTF-16 code units (as `Array.prototype.sort` with no comparator, and `<`, compare
 * strings). An object has a few keys, often already in order: an insertion sort allocates nothing, where V8's sort
 * allocates its work state on every call (a recorded decision encodes dozens of objects; that garbage was a quarter of
 * its allocation). Long lists go to the built-in sort.
 */
export function sortKeys(keys: string[]): string[] {
  const n = keys.length;
  if (n > 32) return keys.sort();
  for (let i = 1; i < n; i++) {
    const key = keys[i] as string;
    let j = i - 1;
    if (!((keys[j] as string) > key)) continue;
    do {
      keys[j + 1] = keys[j] as string;
      j--;
    } while (j >= 0 && (keys[j] as string) > key);
    keys[j + 1] = key;
  }
  return keys;
}

function fail(message: string, path: ReadonlyArray<string | number> | null): never {
  if (path === null) throw new Unencodable(message);
  let where = '$';
  for (const seg of path) {
    if (typeof seg === 'number') where += `[${seg}]`;
    else where += /^[A-Za-z_$][\w$]*$/.test(seg) ? `.${seg}` : `[${JSON.stringify(seg)}]`;
  }
  throw new CanonicalJsonError(`cannot canonically encode ${message}`, where);
}
