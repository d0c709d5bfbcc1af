import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level: the same data always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** First 16 hex digits of sha256 over the canonical JSON of the compiled data document. */
export function policyRevision(data: unknown): string {
  return createHash('sha256').update(canonicalJson(data)).digest('hex').slice(0, 16);
}
