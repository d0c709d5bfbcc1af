import { ownValue } from './null-prototype.js';
import type { PathSegment } from './policy-types.js';

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * Formats a field path the way authors read it: `agent_policy.integrations.github.max_scope[2]`. Keys that are
 * not plain words (scopes such as `repo:write` or `mail.read`) are quoted: `bind["repo:write"].resource`.
 * The empty path (the document itself) formats as `''`.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** Splits an ajv `instancePath` (a JSON pointer) into segments; list indexes become numbers where the data has a list. */
export function pointerToPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const path: PathSegment[] = [];
  let node: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      const index = Number(token);
      path.push(index);
      node = node[index];
    } else {
      path.push(token);
      node = typeof node === 'object' && node !== null ? ownValue(node as Record<string, unknown>, token) : undefined;
    }
  }
  return path;
}
