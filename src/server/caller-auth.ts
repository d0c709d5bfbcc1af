import { createHash } from 'node:crypto';
import type { AuthFailureReason } from '../audit/index.js';
import type { CallerConfig } from '../config/config-types.js';

export interface AuthFailure {
  reason: AuthFailureReason;
  /** The route template the request was for (never the raw path: it is the sender's to make arbitrarily long). */
  route: string;
  ip: string | undefined;
}

/** The scheme is case-insensitive (RFC 7235 §2.1, RFC 6750 §2.1); one space, then the key. */
const BEARER = /^bearer ([\x21-\x7e]{1,512})$/i;

/**
 * The caller an `Authorization: Bearer <api key>` header names, or why it names none. Only the SHA-256 of each key
 * is configured; the presented key is hashed and looked up, and never logged, echoed or stored.
 */
export function callerResolver(callers: readonly CallerConfig[]): (header: string | undefined) => CallerConfig | AuthFailureReason {
  const byHash = new Map(callers.map((c) => [c.key_sha256, c]));
  return (header) => {
    if (header === undefined) return 'missing';
    const key = BEARER.exec(header)?.[1];
    if (key === undefined) return 'malformed';
    return byHash.get(createHash('sha256').update(key, 'utf8').digest('hex')) ?? 'unknown_key';
  };
}
