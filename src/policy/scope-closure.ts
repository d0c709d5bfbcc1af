import { emptyRecord, ownValue } from './null-prototype.js';

/**
 * Transitive closure of scope implications: `{ a: [b], b: [c] }` → `{ a: [b, c], b: [c] }`. Each list is sorted,
 * unique and never contains its own key; cycles (`a → b → a`) are fine and simply mean both imply each other.
 */
export function closeImplications(implies: Readonly<Record<string, readonly string[]>>): Record<string, string[]> {
  const closed = emptyRecord<string[]>();
  for (const start of Object.keys(implies).sort()) {
    const seen = new Set<string>();
    const pending = [...(ownValue(implies, start) ?? [])];
    for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
      if (seen.has(next)) continue;
      seen.add(next);
      pending.push(...(ownValue(implies, next) ?? []));
    }
    seen.delete(start);
    closed[start] = [...seen].sort();
  }
  return closed;
}
