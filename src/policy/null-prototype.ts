/*
 * Lookups keyed by names an author chooses (integrations, agents, roles, task types, scopes, binding keys).
 * `constructor`, `toString`, `valueOf` and `hasOwnProperty` are valid names, `__proto__` a valid scope: a plain
 * object answers the first four from `Object.prototype`, and assigning the last one replaces its prototype
 * instead of storing a key. Every record the compiler builds has no prototype, and every lookup in an author's
 * document goes through `ownValue`.
 */

/** `record[key]` when `key` is the record's own property; `undefined` otherwise (never `Object.prototype`'s). */
export function ownValue<V>(record: Readonly<Record<string, V>> | undefined, key: string): V | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** An empty record without a prototype: `record['__proto__'] = v` stores a key, `record['constructor']` is undefined. */
export function emptyRecord<V>(): Record<string, V> {
  return Object.create(null) as Record<string, V>;
}
