import { emptyRecord } from './null-prototype.js';
import type { ScopeSet } from './policy-types.js';

/** Sorted, unique; plain code-unit order so the compiled document is byte-for-byte reproducible. */
export function sortedUnion(...lists: Iterable<string>[]): string[] {
  const all = new Set<string>();
  for (const list of lists) for (const item of list) all.add(item);
  return [...all].sort();
}

/** `["b", "a"]` → `{ a: true, b: true }`, the set shape the Rego indexes. No prototype (`null-prototype.ts`). */
export function toScopeSet(scopes: Iterable<string>): ScopeSet {
  const set = emptyRecord<true>();
  for (const scope of sortedUnion(scopes)) set[scope] = true;
  return set;
}

/** Builds an object with sorted keys (stable JSON, readable diffs) and no prototype (`null-prototype.ts`). */
export function sortedRecord<V>(entries: Iterable<readonly [string, V]>): Record<string, V> {
  const out = emptyRecord<V>();
  for (const [k, v] of [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[k] = v;
  return out;
}
