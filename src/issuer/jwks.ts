/**
 * The public half of the key ring as a JSON Web Key Set, served at `GET /.well-known/jwks.json`.
 *
 * Built by allowlist: only `kty crv x y kid alg use` are copied, so no private member (`d`) can reach the wire
 * whatever the ring holds. The active key comes first, then the next key (published before it signs), then
 * retired keys whose tokens may still be live. Serve it with a `Cache-Control: max-age` well under the
 * rotation interval (300 s is plenty); verifiers also refetch on an unknown `kid`.
 */
import type { KeyRing } from './key-ring.js';
import type { PublicJwk } from './signing-key.js';

/** Frozen at runtime; typed mutable so it passes straight to jose's `createLocalJWKSet`. */
export interface JsonWebKeySet {
  keys: PublicJwk[];
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'] as const;

export function publicJwks(keyRing: KeyRing): JsonWebKeySet {
  const keys = keyRing.publishedKeys.map(({ jwk }) => {
    const out: Record<string, string> = {};
    for (const member of PUBLIC_MEMBERS) {
      const value = jwk[member];
      if (typeof value === 'string') out[member] = value;
    }
    return Object.freeze(out as unknown as PublicJwk);
  });
  return Object.freeze({ keys: Object.freeze(keys) as PublicJwk[] });
}
