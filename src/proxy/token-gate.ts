/**
 * Whether a bearer token lets one proxied call through: the token is ours (signature, `typ`, `iss`, checked once
 * per token and cached until it expires), for this integration's audience, unexpired now, not revoked (the
 * revocation cache, refreshed from the store), and it grants the scope the endpoint needs on the call's record.
 *
 * A scope is granted when the token names it or names one that implies it (the integration's `implies`, as the
 * policy compiles it): a token for `pr:write` may read the pull request it may write.
 */
import type { JWTVerifyGetKey } from 'jose';
import type { AccessTokenClaims, AuthorizationDetail, ResourceRef } from '../issuer/token-claims.js';
import { claimsAreIssued, type IssuedToken } from '../issuer/issued-claims.js';
import { TokenVerificationError, type TokenVerificationErrorCode } from '../issuer/verification-error.js';
import { verifyIssuedToken } from '../issuer/verify-access-token.js';
import type { TokenIds } from '../store/index.js';
import type { RevocationCache } from './revocation-cache.js';

export interface TokenGateOptions {
  /**
   * The issuer's public keys (the PDP's key ring): read at each verification, so a key reload is seen. When it
   * returns another resolver (the ring changed, e.g. a key was withdrawn), every verified token is forgotten.
   */
  jwks: () => JWTVerifyGetKey;
  issuer: string;
  revocations: RevocationCache;
  /**
   * The store's record of a token (on the first sight of each token only): a token the PDP never issued (signed
   * with a leaked key) is refused, and one already revoked is refused without waiting for the feed. Its ids are
   * kept with the claims: each call's `token.used` event is correlated with them without reading the row again.
   */
  lookup: (jti: string) => Promise<({ revoked: boolean; issued: IssuedToken } & TokenIds) | undefined>;
  /** The issuer's longest token lifetime: a token claiming more (`exp - iat`) was not issued by it. */
  maxTokenTtlSeconds: number;
  /** Verified tokens kept (their claims, until `exp`); the oldest is dropped beyond this. Default 10,000. */
  cacheEntries?: number;
  /**
   * Clock skew allowed on `iat` (a token the PDP issued a moment "in the future" by this clock), in seconds. Default
   * 5. Never on `exp`: the proxy refuses a token from its `exp` on, as introspection answers it inactive from then
   * (the PDP and the proxy read one store; their clocks are expected to agree, e.g. by NTP).
   */
  clockTolerance?: number;
  now?: () => Date;
}

export type GateRefusalCode = TokenVerificationErrorCode | 'token_revoked' | 'revocation_unknown';

export type GateAnswer =
  | { ok: true; claims: AccessTokenClaims }
  | { ok: false; code: GateRefusalCode; message: string; claims?: AccessTokenClaims };

/** An admitted token: its verified claims and its row's ids. */
export type AdmitAnswer = { ok: true; claims: AccessTokenClaims; ids: TokenIds } | Extract<GateAnswer, { ok: false }>;

interface Admitted {
  claims: AccessTokenClaims;
  ids: TokenIds;
}

export interface CallNeeds {
  integration: string;
  /** The audience tokens of this integration carry. */
  audience: string;
  scope: string;
  record: ResourceRef | null;
  /** scope → the scopes it implies (transitively), for this integration. */
  implies: Readonly<Record<string, readonly string[]>>;
}

export class TokenGate {
  readonly #o: TokenGateOptions;
  readonly #verified = new Map<string, Admitted>();
  readonly #max: number;
  readonly #tolerance: number;
  #keys: JWTVerifyGetKey | undefined;

  constructor(options: TokenGateOptions) {
    this.#o = options;
    this.#max = options.cacheEntries ?? 10_000;
    this.#tolerance = options.clockTolerance ?? 5;
  }

  /**
   * The token alone: ours, for this audience, unexpired, not revoked. The grant (`grants`) is judged after the call
   * is matched, so an unmapped call with a good token is still told apart (and audited) from a bad token.
   */
  async admit(token: string, audience: string): Promise<AdmitAnswer> {
    const keys = this.#o.jwks();
    if (keys !== this.#keys) {
      this.#verified.clear(); // a withdrawn key must not leave its tokens accepted from the cache
      this.#keys = keys;
    }
    let admitted = this.#verified.get(token);
    if (admitted === undefined) {
      let claims: AccessTokenClaims;
      try {
        claims = await verifyIssuedToken(token, { jwks: keys, issuer: this.#o.issuer, clockTolerance: this.#tolerance, currentDate: this.#now() });
      } catch (err) {
        if (err instanceof TokenVerificationError) return { ok: false, code: err.code, message: err.message };
        throw err;
      }
      if (claims.exp - claims.iat > this.#o.maxTokenTtlSeconds) {
        return { ok: false, code: 'token_invalid', message: 'access token claims a lifetime this issuer never gives' };
      }
      let record: Awaited<ReturnType<TokenGateOptions['lookup']>>;
      try {
        record = await this.#o.lookup(claims.jti);
      } catch {
        // The store cannot say whether this PDP issued it, or revoked it: refused as a token it cannot judge (503).
        return { ok: false, code: 'revocation_unknown', message: 'the token cannot be checked against the store' };
      }
      if (record === undefined) return { ok: false, code: 'token_invalid', message: 'access token was not issued by this PDP' };
      // Signed by our key is not enough: its claims must be the ones issued under its jti (no widened copy).
      if (!claimsAreIssued(claims, record.issued)) return { ok: false, code: 'token_invalid', message: 'access token claims differ from the token this PDP issued' };
      if (record.revoked) return { ok: false, code: 'token_revoked', message: 'access token was revoked (or its task completed)', claims };
      admitted = { claims, ids: { decision_id: record.decision_id, task_id: record.task_id, agent_id: record.agent_id } };
      if (this.#max > 0) {
        if (this.#verified.size >= this.#max) this.#verified.delete(this.#verified.keys().next().value as string);
        this.#verified.set(token, admitted);
      }
    }
    const { claims, ids } = admitted;
    const aud = claims.aud as string | string[];
    if (Array.isArray(aud) ? !aud.includes(audience) : aud !== audience) {
      return { ok: false, code: 'token_wrong_audience', message: 'access token is for another audience' };
    }
    const now = this.current(claims);
    return now.ok ? { ok: true, claims, ids } : now;
  }

  /**
   * What may change while a call is under way: expiry and revocation. Asked at admission and again just before
   * the call is forwarded (a body read slowly must not outlive its token).
   */
  current(claims: AccessTokenClaims): GateAnswer {
    if (claims.exp <= this.#now().getTime() / 1000) {
      return { ok: false, code: 'token_expired', message: 'access token has expired' };
    }
    const state = this.#o.revocations.state(claims.jti);
    if (state === 'revoked') return { ok: false, code: 'token_revoked', message: 'access token was revoked (or its task completed)', claims };
    if (state === 'unknown') return { ok: false, code: 'revocation_unknown', message: 'the revocation list is out of date', claims };
    return { ok: true, claims };
  }

  /** The grant: the integration, the scope (directly or implied) and the record. */
  grants(claims: AccessTokenClaims, needs: CallNeeds): GateAnswer {
    const forIntegration = claims.authorization_details.filter((d) => d.type === needs.integration);
    if (forIntegration.length === 0) {
      return { ok: false, code: 'token_wrong_integration', message: `access token grants nothing on integration "${needs.integration}"`, claims };
    }
    const holds = (scopes: readonly string[]): boolean =>
      scopes.some((s) => s === needs.scope || (Object.hasOwn(needs.implies, s) && (needs.implies[s] as readonly string[]).includes(needs.scope)));
    const covering = forIntegration.filter((d) => holds(d.actions));
    if (covering.length === 0 || !holds(claims.scope.split(' '))) {
      return { ok: false, code: 'token_scope_insufficient', message: `access token does not grant scope "${needs.scope}"`, claims };
    }
    if (!covering.some((d) => coversRecord(d, needs.record))) {
      return {
        ok: false,
        code: 'token_wrong_resource',
        message: needs.record === null ? 'access token is bound to a record and this call names none' : 'access token is bound to another record',
        claims,
      };
    }
    return { ok: true, claims };
  }

  /** Verified tokens held (for metrics). */
  get size(): number {
    return this.#verified.size;
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }
}

/** An unbound grant covers any record; a bound one only its own (same id, and same type when the token says). */
function coversRecord(detail: AuthorizationDetail, record: ResourceRef | null): boolean {
  if (detail.identifier === undefined) return true;
  if (record === null) return false;
  return detail.identifier === record.id && (detail.resource_type === undefined || detail.resource_type === record.type);
}
