/**
 * Masking: configured fields are replaced by a digest of their value before anything is stored, so the audit
 * trail can still show that two events carried the same value without carrying the value.
 *
 * Path syntax (dotted, relative to the value being masked, e.g. an event's `data`):
 * - `input.task.context.ssn`  one field;
 * - `*`                       any one key of an object or element of an array (`input.scopes.*`);
 * - `**`                      any depth, including none (`**.ssn` masks every field named `ssn`);
 * - a segment of digits also selects that array index. Keys containing "." cannot be addressed.
 * A path that does not exist in a value is ignored. Masking never changes the input; it copies what it changes.
 *
 * The replacement is `"sha256:<hex>"` of the value's canonical JSON, or `"hmac-sha256:<hex>"` when a key is
 * configured. Prefer a key for low-entropy values: an SSN or a phone number has few enough possible values that
 * an unkeyed digest is reversed by trying them all.
 *
 * A path that would reach a decision's `result.outcome` (`result`, `**.outcome`, `*`, ...) is refused: the outcome
 * is what the trail is kept for, and the outcome filter of exports and listings reads it from the hashed event.
 */
import { createHmac } from 'node:crypto';
import { canonicalJson } from './canonical-json.js';
import { sha256Hex } from './hash-chain.js';

export interface MaskOptions {
  /** HMAC key; when set, digests are `hmac-sha256:<hex>` and cannot be reversed by enumeration. Default: none. */
  key?: string | Uint8Array;
}

/** Returns `value` with every configured path replaced by its digest (the same object when nothing matched). */
export type Masker = <T>(value: T) => T;

const IDENTITY: Masker = (value) => value;

export function compileMask(paths: readonly string[], options: MaskOptions = {}): Masker {
  const compiled = paths.map(parsePath);
  if (compiled.length === 0) return IDENTITY;
  const key = options.key;
  const digest = (value: unknown): string => {
    const encoded = canonicalJson(value);
    if (key === undefined) return 'sha256:' + sha256Hex(encoded);
    return 'hmac-sha256:' + createHmac('sha256', key).update(encoded, 'utf8').digest('hex');
  };
  return <T>(value: T): T => {
    let out: unknown = value;
    for (const segments of compiled) out = maskAt(out, segments, 0, digest);
    return out as T;
  };
}

/** Decision data as far as the outcome: a path that changes it would hide what was decided. */
const OUTCOME_PROBE = Object.freeze({ result: Object.freeze({ outcome: 'allow' }) });

function parsePath(path: string): readonly string[] {
  if (typeof path !== 'string' || path === '') throw new TypeError('mask path must be a non-empty string');
  const segments = path.split('.');
  segments.forEach((segment, i) => {
    if (segment === '') throw new TypeError(`mask path ${JSON.stringify(path)} has an empty segment`);
    if (segment === '**' && (i === segments.length - 1 || segments[i + 1] === '**')) {
      throw new TypeError(`mask path ${JSON.stringify(path)}: "**" must be followed by a field name or "*"`);
    }
  });
  if (maskAt(OUTCOME_PROBE, segments, 0, () => 'masked') !== OUTCOME_PROBE) {
    throw new TypeError(`mask path ${JSON.stringify(path)} would mask a decision's result.outcome, which the trail must keep in clear`);
  }
  return segments;
}

function maskAt(node: unknown, segments: readonly string[], i: number, digest: (v: unknown) => string): unknown {
  if (i === segments.length) return digest(node);
  const segment = segments[i] as string;
  if (segment === '**') {
    const here = maskAt(node, segments, i + 1, digest);
    return mapChildren(here, () => true, (child) => maskAt(child, segments, i, digest));
  }
  if (segment === '*') return mapChildren(node, () => true, (child) => maskAt(child, segments, i + 1, digest));
  return mapChildren(node, (k) => k === segment, (child) => maskAt(child, segments, i + 1, digest));
}

/** Copy-on-write map over the children of an object or array whose key passes `select`. */
function mapChildren(
  node: unknown,
  select: (key: string) => boolean,
  map: (child: unknown) => unknown,
): unknown {
  if (typeof node !== 'object' || node === null) return node;
  if (Array.isArray(node)) {
    let copy: unknown[] | undefined;
    node.forEach((child: unknown, index) => {
      if (child === undefined || !select(String(index))) return;
      const next = map(child);
      if (next !== child) (copy ??= [...node])[index] = next;
    });
    return copy ?? node;
  }
  let copy: Record<string, unknown> | undefined;
  for (const [key, child] of Object.entries(node)) {
    if (child === undefined || !select(key)) continue;
    const next = map(child);
    if (next === child) continue;
    copy ??= { ...(node as Record<string, unknown>) };
    // defineProperty, not assignment: a JSON key "__proto__" must stay a plain own property.
    Object.defineProperty(copy, key, { value: next, writable: true, enumerable: true, configurable: true });
  }
  return copy ?? node;
}

/** What a provider's credential record was made from: the decision's record and the task's context. */
export interface EmbeddedSources {
  resource: { type: string; id: string } | null;
  task_context: Readonly<Record<string, unknown>> | null;
}

/**
 * Masking for values a record holds inside its strings, where a path cannot reach them: a provider credential's
 * session policy names `arn:aws:s3:::reports/customers/1234/*`, its Workspace subject is the task's user email.
 * `mask` is applied to the decision-shaped data those values came from (`input.resource`, `input.task.context`,
 * `result.resource`, and a token event's `resource`); each value it replaced is then replaced by the same digest
 * wherever it stands whole in a string of `record` (delimited as a template value is: by `/`, `:`, quotes, the
 * ends). A value equal to an unrelated whole part of another string (a region `eu` beside `eu` elsewhere) is masked
 * there too; never a value the paths select left in clear. `fixed`: the record's top-level members that hold no
 * decision value (a time, a request id), left as they are. Returns `record` itself when nothing is masked.
 */
export function maskEmbedded<T>(mask: Masker, record: T, sources: EmbeddedSources, options: { fixed?: readonly string[] } = {}): T {
  if (mask === IDENTITY) return record;
  const clear = { input: { resource: sources.resource, task: { context: sources.task_context } }, result: { resource: sources.resource }, resource: sources.resource };
  const masked = mask(clear);
  if (masked === clear) return record;
  const replaced = new Map<string, string>();
  collectReplaced(clear, masked, replaced);
  if (replaced.size === 0) return record;
  // One pass, longest first, each value only where it stands whole (not inside a longer run of the characters a
  // template value may hold: `[A-Za-z0-9._@+=,-]`): a digest already put in is never searched again, and an id `25`
  // does not match inside an account number, a time or a request id.
  const values = [...replaced.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = new RegExp(`(?<![A-Za-z0-9._@+=,-])(?:${values.join('|')})(?![A-Za-z0-9._@+=,-])`, 'g');
  const fixed = new Set(options.fixed ?? []);
  // Members that hold no decision value (a time, a provider's request id, a role ARN) are left as they are.
  return mapChildren(record, (key) => !fixed.has(key), (child) => substitute(child, pattern, replaced)) as T;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function collectReplaced(before: unknown, after: unknown, out: Map<string, string>): void {
  if (before === after) return;
  if (typeof after === 'string' && (typeof before === 'string' || typeof before === 'number' || typeof before === 'boolean')) {
    const text = String(before);
    if (text !== '') out.set(text, after);
    return;
  }
  if (typeof before !== 'object' || before === null) return;
  if (typeof after === 'string') {
    // A whole object or list masked as one digest: each value in it stands for it.
    for (const value of Object.values(before)) collectReplaced(value, after, out);
    return;
  }
  if (typeof after !== 'object' || after === null) return;
  for (const key of Object.keys(before)) collectReplaced((before as Record<string, unknown>)[key], (after as Record<string, unknown>)[key], out);
}

function substitute(node: unknown, pattern: RegExp, replaced: ReadonlyMap<string, string>): unknown {
  if (typeof node === 'string') return node.replace(pattern, (value) => replaced.get(value) ?? value);
  return mapChildren(node, () => true, (child) => substitute(child, pattern, replaced));
}
