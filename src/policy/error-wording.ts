import type { ErrorDetail } from '../errors/pdp-error.js';

/**
 * How errors about YAML files are worded for authors, shared by the policy loader and the policy-test file reader:
 * YAML's names for JSON types, and one detail per location and message.
 */

/** A JSON Schema type as an author of YAML says it: `object` is "a mapping", `array` "a list". */
export function article(type: string): string {
  const names: Record<string, string> = { object: 'a mapping', array: 'a list', integer: 'an integer', boolean: 'true or false', null: 'null' };
  return names[type] ?? `a ${type}`;
}

/** What a value is, in the same words. */
export function typeName(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a number';
  if (typeof value === 'boolean') return 'true or false';
  return `a ${typeof value}`;
}

/** Details without repeats: one per location, path and message. */
export function dedupeDetails(details: ErrorDetail[]): ErrorDetail[] {
  const seen = new Set<string>();
  return details.filter((d) => {
    const k = `${d.line}:${d.column}:${d.path}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
