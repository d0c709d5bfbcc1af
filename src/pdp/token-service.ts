import type { CallerConfig } from '../config/config-types.js';
import { isPdpError, PdpError } from '../errors/pdp-error.js';
import type { AccessTokenClaims } from '../issuer/token-claims.js';
import { planAccessToken, signAccessToken, type IssuedAccessToken } from '../issuer/token-issuer.js';
import { isTokenVerificationError } from '../issuer/verification-error.js';
import { verifyIssuedToken } from '../issuer/verify-access-token.js';
import type { Store } from '../store/index.js';
import type { IntrospectionResponseV1 as IntrospectionV1 } from '../wire/token-v1.js';
import { hasRole } from './caller-agents.js';
import type { TokenGrantSource } from './decider.js';
import type { IssuerKeys } from './issuer-keys.js';
import { VerifiedTokens } from './verified-tokens.js';

/**
 * What happened to a token, one per call: `issued` (a decision redeemed and its token signed), `refused` (a
 * redemption turned down: unknown, foreign, denied, redeemed or expired decision, closed task), `revoked` (a token
 * revoked by the caller it was issued to), `introspected` (an introspection answered, active or not).
 */
export const TOKEN_EVENTS = ['issued', 'refused', 'revoked', 'introspected'] as const;
export type TokenEvent = (typeof TOKEN_EVENTS)[number];

export interface TokenObserver {
  /** Called once per answered call, after its writes committed; a 5xx failure (store, keys) is no token event. */
  tokenEvent(event: TokenEvent): void;
}

export interface TokenServiceOptions {
  store: Pick<Store, 'getTask' | 'redeemDecision' | 'getToken' | 'revokeToken' | 'recordTokenUse'>;
  keys: IssuerKeys;
  issuer: string;
  /** `aud` of an integration's tokens: config override, else the integration file's audience, else its name. */
  audienceFor: (integration: string) => string;
  /** Told of every token event (`Metrics` counts them in `agentpdp_tokens_total`). Default: none. */
  observer?: TokenObserver;
  now?: () => Date;
}

export type { IntrospectionResponseV1 as IntrospectionV1 } from '../wire/token-v1.js';

/**
 * Redeems allowed decisions for tokens (once, by the caller they were made for, within the window), and answers
 * introspection and revocation. The token record and its audit event commit before the token is signed and
 * returned, so no token ever reaches a caller without its trail.
 */
export class TokenService {
  readonly #o: TokenServiceOptions;
  readonly #verifiedTokens = new VerifiedTokens();

  constructor(options: TokenServiceOptions) {
    this.#o = options;
  }

  /**
   * `resource` (RFC 8707) names the audience the caller wants the token for: it must be the integration's audience
   * (`invalid_target` otherwise, and the decision stays unredeemed).
   */
  async redeem(caller: CallerConfig, decisionId: string, traceId: string | null, options: { resource?: string } = {}): Promise<IssuedAccessToken> {
    try {
      const issued = await this.#redeem(caller, decisionId, traceId, options.resource);
      this.#o.observer?.tokenEvent('issued');
      return issued;
    } catch (err) {
      if (isPdpError(err) && err.status < 500) this.#o.observer?.tokenEvent('refused');
      throw err;
    }
  }

  async #redeem(caller: CallerConfig, decisionId: string, traceId: string | null, resource: string | undefined): Promise<IssuedAccessToken> {
    const now = this.#now();
    const keyRing = this.#o.keys.ring;
    let claims: AccessTokenClaims | undefined;
    await this.#o.store.redeemDecision({
      decision_id: decisionId,
      caller_id: caller.id,
      now: now.toISOString(),
      trace_id: traceId,
      // The task's expiry caps the token: the store hands over the task row it checked in the same transaction.
      makeToken: (decision, task) => {
        // The unmasked grant, not the (possibly masked) result: a token must carry the real record id.
        const result = decision.token_grant as TokenGrantSource | null;
        if (!result) throw new PdpError('decision_not_allowed', `decision ${decision.decision_id} carries no grant`);
        const audience = this.#o.audienceFor(decision.integration);
        if (resource !== undefined && resource !== audience) {
          throw new PdpError('invalid_target', `resource must be the audience of integration ${decision.integration}`, {
            details: [{ path: 'resource', message: `is not ${audience}` }],
          });
        }
        // An elevated grant ends with its approval window: the token may not outlive it (nor the task).
        const notAfter = result.not_after == null ? null : new Date(result.not_after);
        if (notAfter !== null && notAfter.getTime() <= now.getTime()) {
          throw new PdpError('decision_expired', `the elevation decision ${decision.decision_id} was granted under has ended`);
        }
        const taskEnd = task ? new Date(task.expires_at) : null;
        const ends = [taskEnd, notAfter].filter((d): d is Date => d !== null);
        claims = planAccessToken({
          keyRing,
          issuer: this.#o.issuer,
          agent_id: decision.agent_id,
          caller_id: caller.id,
          integration: decision.integration,
          audience,
          scopes: result.granted_scopes,
          resource: result.resource,
          task_id: decision.task_id ?? result.task_id,
          decision_id: decision.decision_id,
          ttl_seconds: result.token_ttl_seconds,
          task_expires_at: ends.length === 0 ? null : new Date(Math.min(...ends.map((d) => d.getTime()))),
          now,
        });
        return {
          jti: claims.jti,
          issued_at: new Date(claims.iat * 1000).toISOString(),
          expires_at: new Date(claims.exp * 1000).toISOString(),
          scopes: result.granted_scopes,
          audience: claims.aud,
          event_data: { integration: decision.integration, resource: result.resource, kid: keyRing.signingKey.kid },
        };
      },
    });
    if (!claims) throw new PdpError('internal', 'redemption committed without claims');
    return signAccessToken(keyRing, claims);
  }

  /**
   * RFC 7662. Unknown, unverifiable, expired, revoked and task-closed tokens are all just `{ active: false }`, and so
   * is, to a PEP, a token issued to another caller.
   */
  async introspect(caller: CallerConfig, token: string, traceId: string | null): Promise<IntrospectionV1> {
    const answer = await this.#introspect(caller, token, traceId);
    this.#o.observer?.tokenEvent('introspected');
    return answer;
  }

  async #introspect(caller: CallerConfig, token: string, traceId: string | null): Promise<IntrospectionV1> {
    const now = this.#now();
    const claims = await this.#verified(token, now);
    if (!claims) return { active: false };
    const record = await this.#o.store.getToken(claims.jti);
    if (!record) return { active: false };
    // RFC 7662 §4: the server decides who may introspect what. Resource servers may introspect any token (that is
    // what the endpoint is for); a PEP only the tokens issued to itself, so it cannot read other PEPs' grants.
    const entitled = !hasRole(caller, 'pep') || claims.client_id === caller.id;
    let active = entitled && record.revoked_at === null && Date.parse(record.expires_at) > now.getTime();
    if (active && record.task_id !== null) {
      // Belt and braces: closing a task revokes its tokens in the same transaction, and no token outlives its task.
      // A task that was never registered (context asserted by a trusted PEP) has nothing that closes it.
      const task = await this.#o.store.getTask(record.task_id);
      if (task !== undefined) active = task.status === 'active' && Date.parse(task.expires_at) > now.getTime();
    }
    await this.#o.store.recordTokenUse({
      jti: claims.jti,
      caller_id: caller.id,
      at: now.toISOString(),
      data: { action: 'introspect', active },
      trace_id: traceId,
    });
    return active ? { active: true, token_type: 'Bearer', ...claims } : { active: false };
  }

  /** RFC 7009: always succeeds from the caller's view; only the caller a token was issued to can revoke it. */
  async revoke(caller: CallerConfig, token: string, traceId: string | null): Promise<void> {
    const now = this.#now();
    const claims = await this.#verified(token, now); // an expired token is dead already: nothing to revoke
    if (!claims || claims.client_id !== caller.id) return;
    const revoked = await this.#o.store.revokeToken({ jti: claims.jti, caller_id: caller.id, at: now.toISOString(), reason: 'revoked_by_caller', trace_id: traceId });
    if (revoked) this.#o.observer?.tokenEvent('revoked');
  }

  /**
   * Signature, issuer and type checked; `undefined` for anything that is not a token of ours. A token verified
   * before under the same key ring is not verified again (`verified-tokens.ts`); its expiry still is.
   */
  async #verified(token: string, now: Date): Promise<AccessTokenClaims | undefined> {
    const ring = this.#o.keys.ring;
    const known = this.#verifiedTokens.get(token, ring, now);
    if (known !== undefined) return known;
    try {
      const claims = await verifyIssuedToken(token, { jwks: this.#o.keys.resolver, issuer: this.#o.issuer, currentDate: now });
      this.#verifiedTokens.set(token, ring, claims);
      return claims;
    } catch (err) {
      if (isTokenVerificationError(err) && err.code === 'jwks_unavailable') throw err;
      if (isTokenVerificationError(err)) return undefined;
      throw err;
    }
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }
}
