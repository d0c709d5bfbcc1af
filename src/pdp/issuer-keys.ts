import { createLocalJWKSet, type JWTVerifyGetKey } from 'jose';
import { publicJwks, type JsonWebKeySet } from '../issuer/jwks.js';
import { loadKeyRing, type KeyRing, type LoadKeyRingOptions } from '../issuer/key-ring.js';

/**
 * The key ring in force and what is derived from it (the public JWKS, a local key resolver). Replaced whole on
 * reload (SIGHUP, `POST /v1/admin/reload`) after `agent-pdp keys rotate` changed the key folder.
 */
export class IssuerKeys {
  #ring: KeyRing;
  #jwks: JsonWebKeySet;
  #resolver: JWTVerifyGetKey;
  readonly #dir: string;
  readonly #options: Omit<LoadKeyRingOptions, 'now'>;
  readonly #now: () => Date;

  private constructor(dir: string, ring: KeyRing, options: Omit<LoadKeyRingOptions, 'now'>, now: () => Date) {
    this.#dir = dir;
    this.#options = options;
    this.#now = now;
    this.#ring = ring;
    this.#jwks = publicJwks(ring);
    this.#resolver = createLocalJWKSet(this.#jwks);
  }

  static async load(dir: string, options: Omit<LoadKeyRingOptions, 'now'>, now: () => Date): Promise<IssuerKeys> {
    return new IssuerKeys(dir, await loadKeyRing(dir, { ...options, now: now() }), options, now);
  }

  get ring(): KeyRing {
    return this.#ring;
  }

  get jwks(): JsonWebKeySet {
    return this.#jwks;
  }

  get resolver(): JWTVerifyGetKey {
    return this.#resolver;
  }

  async reload(): Promise<void> {
    const ring = await loadKeyRing(this.#dir, { ...this.#options, now: this.#now() });
    const jwks = publicJwks(ring);
    this.#ring = ring;
    this.#jwks = jwks;
    this.#resolver = createLocalJWKSet(jwks);
  }
}
