import type { AccessTokenClaims } from '../issuer/token-claims.js';

/**
 * Tokens of ours whose signature, issuer and type were verified, remembered by their exact text, so that a
 * resource server introspecting the same token on every tool call pays for one signature check, not one per call
 * (an Ed25519 verification costs more than a whole decision). What stays per call: expiry (below), revocation and
 * the task's state (the store's record, read every time).
 *
 * Only successes are remembered, keyed by the whole token text: a token changed in any byte is another key and is
 * verified from scratch. The cache empties when the key ring changes (a reload, e.g. after a key was withdrawn),
 * holds at most `max` tokens (least recently used out first), and drops a token once it has expired.
 */
export class VerifiedTokens {
  readonly #max: number;
  readonly #clockTolerance: number;
  readonly #entries = new Map<string, AccessTokenClaims>();
  #ring: unknown;

  /** `clockTolerance`: the seconds of skew the verifier allows past `exp` (its default, 5). */
  constructor(options: { max?: number; clockTolerance?: number } = {}) {
    this.#max = options.max ?? 10_000;
    this.#clockTolerance = options.clockTolerance ?? 5;
    if (!Number.isInteger(this.#max) || this.#max < 1) throw new TypeError('VerifiedTokens: max must be a positive integer');
  }

  /** The claims of a token verified under `ring`, if it is remembered and not expired at `now`. */
  get(token: string, ring: unknown, now: Date): AccessTokenClaims | undefined {
    this.#sameRing(ring);
    const claims = this.#entries.get(token);
    if (claims === undefined) return undefined;
    this.#entries.delete(token);
    if (claims.exp <= Math.floor(now.getTime() / 1000) - this.#clockTolerance) return undefined;
    this.#entries.set(token, claims); // most recently used last
    return claims;
  }

  /** Remembers a token the verifier accepted under `ring`. */
  set(token: string, ring: unknown, claims: AccessTokenClaims): void {
    this.#sameRing(ring);
    if (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(token, claims);
  }

  get size(): number {
    return this.#entries.size;
  }

  #sameRing(ring: unknown): void {
    if (ring === this.#ring) return;
    this.#entries.clear();
    this.#ring = ring;
  }
}
