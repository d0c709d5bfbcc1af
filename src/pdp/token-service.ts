import { randomUUID } from 'node:crypto';
import type { CallerConfig } from '../config/config-types.js';
import { isPdpError, PdpError } from '../errors/pdp-error.js';
import { claimsAreIssued, issuedToken } from '../issuer/issued-claims.js';
import type { AccessTokenClaims } from '../issuer/token-claims.js';
import { planAccessToken, signAccessToken, type IssuedAccessToken } from '../issuer/token-issuer.js';
import { isTokenVerificationError } from '../issuer/verification-error.js';
import { verifyIssuedToken } from '../issuer/verify-access-token.js';
import type { EmbeddedSources, ProviderCredentialRecord } from '../audit/index.js';
import type { Store, TokenRecord } from '../store/index.js';
import { LAST_SECOND_MS, type IntrospectionResponseV1 as IntrospectionV1, type ProviderCredentialV1 } from '../wire/token-v1.js';
import { hasRole } from './caller-agents.js';
import type { TokenGrantSource } from './decider.js';
import type { IssuerKeys } from './issuer-keys.js';
import { VerifiedTokens } from './verified-tokens.js';

/**
 * What happened to a token, one per call: `issued` (a decision redeemed and its token signed), `refused` (a
 * redemption turned down: unknown, foreign, denied, redeemed or expired decision, closed task), `revoked` (a token
 * revoked by the caller it was issued to, or by a resource server it was presented to), `introspected` (an
 * introspection answered, active or not).
 */
export const TOKEN_EVENTS = ['issued', 'refused', 'revoked', 'introspected'] as const;

export type TokenEvent = (typeof TOKEN_EVENTS)[number];

/**
 * A clock tolerance no token's times escape (ten years): to tell a long-expired token of ours (signature, issuer and
 * type still checked) from one that is not, so that its introspection is recorded. It never makes a token active:
 * the store's expiry decides that.
 */
const EXPIRED_TOO = 10 * 365 * 24 * 3600;

/**
 * Whether a JWT's payload, read without verifying anything, says it has expired: the only refusal worth a second
 * verification (`EXPIRED_TOO`); anything else (a bad signature, garbage) is not verified twice.
 */
function payloadExpired(token: string, now: Date): boolean {
  const payload = token.split('.')[1];
  if (payload === undefined) return false;
  try {
    const exp = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { exp?: unknown }).exp;
    return typeof exp === 'number' && exp * 1000 <= now.getTime();
  } catch {
    return false;
  }
}

export interface TokenObserver {
  /** Called once per answered call, after its writes committed; a 5xx failure (store, keys) is no token event. */
  tokenEvent(event: TokenEvent): void;
}

/**
 * Mints provider credentials for provider integrations (docs/providers.md; `src/providers/`'s ProviderMinter, wired
 * in `src/main.ts`). `mint` throws a PdpError (`provider_failed`) and nothing else reaches the caller.
 */
export interface ProviderMinting {
  /** The shortest credential the integration's provider mints, in seconds; null when the integration mints none. */
  minimumTtlSeconds(integration: string): number | null;
  /** How long a mint of the integration may take (its provider's timeout), in milliseconds. */
  timeoutMs(integration: string): number;
  mint(request: {
    integration: string;
    agent_id: string;
    task_id: string | null;
    decision_id: string;
    scopes: readonly string[];
    resource: { type: string; id: string } | null;
    task_context: Readonly<Record<string, unknown>> | null;
    /** The token's own lifetime (its TTL under the issuer's cap), in seconds: the credential lives at most that long. */
    ttl_seconds: number;
    /** The fixed end the token may not pass (its task's expiry, its elevation's end), in Unix seconds; null when none. */
    not_after: number | null;
  }): Promise<{ credential: ProviderCredentialV1; record: ProviderCredentialRecord }>;
  /** Told of a minted credential that was discarded and could not be recorded (the store failed): never the secret. */
  unrecorded(discard: { integration: string; decision_id: string; reason: string; record: ProviderCredentialRecord }): void;
}

/**
 * How far a provider's own expiry (AWS STS's `Expiration`, from its clock) may pass the token's `exp` before it is
 * refused. Expiries computed on our clock (Google's `expires_in` from the moment we asked) get no allowance.
 */
export const PROVIDER_CLOCK_SKEW_SECONDS = 60;

/** How long a claim on a decision outlives its mint's timeout before another redemption may take it over. */
export const MINT_CLAIM_MARGIN_SECONDS = 30;

/** A provider credential minted for a claimed decision, not yet handed over. */
interface Minted {
  claim: string;
  credential: ProviderCredentialV1;
  /** What the trail (and a log line) gets of the credential: masked as `maskRecord` says. */
  record: ProviderCredentialRecord;
  decision: { agent_id: string; task_id: string | null; integration: string };
}

/** A redeemed token, with the provider credential minted for it when its integration is a provider's. */
export type RedeemedToken = IssuedAccessToken & { provider_credential?: ProviderCredentialV1 };

export interface TokenServiceOptions {
  store: Pick<Store, 'getTask' | 'getDecision' | 'redeemDecision' | 'claimProviderMint' | 'endProviderMint' | 'getToken' | 'revokeToken' | 'recordTokenUse'>;
  /** Provider integrations (docs/providers.md). Default: none, every integration gets our token only. */
  providers?: ProviderMinting;
  keys: IssuerKeys;
  issuer: string;
  /** `aud` of an integration's tokens: config override, else the integration file's audience, else its name. */
  audienceFor: (integration: string) => string;
  /** Told of every token event (`Metrics` counts them in `agentpdp_tokens_total`). Default: none. */
  observer?: TokenObserver;
  now?: () => Date;
  /**
   * Masks the values a provider credential's record holds inside its strings (the record id in a session policy,
   * the task's user email as a subject), as `audit.mask` masks them in the decision: `maskEmbedded` with the store's
   * mask. Default: none.
   */
  maskRecord?: (record: ProviderCredentialRecord, sources: EmbeddedSources) => ProviderCredentialRecord;
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
  /** Verified claims objects already found to be the token issued under their jti (`#issuedAsClaimed`). */
  readonly #issuedClaims = new WeakSet<AccessTokenClaims>();

  constructor(options: TokenServiceOptions) {
    this.#o = options;
  }

  /**
   * `resource` (RFC 8707) names the audience the caller wants the token for: it must be the integration's audience
   * (`invalid_target` otherwise, and the decision stays unredeemed).
   */
  async redeem(caller: CallerConfig, decisionId: string, traceId: string | null, options: { resource?: string } = {}): Promise<RedeemedToken> {
    try {
      const issued = await this.#redeem(caller, decisionId, traceId, options.resource);
      this.#o.observer?.tokenEvent('issued');
      return issued;
    } catch (err) {
      if (isPdpError(err) && err.status < 500) this.#o.observer?.tokenEvent('refused');
      throw err;
    }
  }

  async #redeem(caller: CallerConfig, decisionId: string, traceId: string | null, resource: string | undefined): Promise<RedeemedToken> {
    // A provider integration: checks, a claim on the decision, the mint, then the commit below (docs/providers.md).
    // The token is planned after the mint, so a credential minted for `not_after` cannot outlive it.
    const provider = await this.#mintFor(caller, decisionId, this.#now(), resource);
    const now = this.#now();
    try {
      return await this.#issue(caller, decisionId, traceId, resource, now, provider);
    } catch (err) {
      if (provider !== undefined) await this.#discard(provider, caller, decisionId, traceId, err);
      throw err;
    }
  }

  async #issue(caller: CallerConfig, decisionId: string, traceId: string | null, resource: string | undefined, now: Date, provider: Minted | undefined): Promise<RedeemedToken> {
    const keyRing = this.#o.keys.ring;
    let claims: AccessTokenClaims | undefined;
    await this.#o.store.redeemDecision({
      decision_id: decisionId,
      caller_id: caller.id,
      now: now.toISOString(),
      trace_id: traceId,
      mint_claim: provider?.claim ?? null,
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
        const minted = this.#o.providers?.minimumTtlSeconds(decision.integration) ?? null;
        if (minted !== null && provider === undefined) throw new PdpError('internal', `decision ${decision.decision_id} reached its redemption without its provider credential`);
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
        if (provider !== undefined) {
          const skew = provider.credential.provider === 'aws' ? PROVIDER_CLOCK_SKEW_SECONDS : 0;
          if (Date.parse(provider.credential.expires_at) > (claims.exp + skew) * 1000) {
            throw new PdpError('provider_failed', `the provider's credential for ${decision.decision_id} would outlive its token (${provider.credential.expires_at})`);
          }
          // A credential the provider says has already expired is no credential: nothing is issued for it.
          if (Date.parse(provider.credential.expires_at) <= now.getTime()) {
            throw new PdpError('provider_failed', `the provider's credential for ${decision.decision_id} had already expired when it arrived (${provider.credential.expires_at})`);
          }
        }
        return {
          jti: claims.jti,
          issued_at: new Date(claims.iat * 1000).toISOString(),
          expires_at: new Date(claims.exp * 1000).toISOString(),
          scopes: result.granted_scopes,
          audience: claims.aud,
          event_data: {
            integration: decision.integration,
            resource: result.resource,
            kid: keyRing.signingKey.kid,
            ...(provider === undefined ? {} : { provider_credential: provider.record }),
          },
        };
      },
    });
    if (!claims) throw new PdpError('internal', 'redemption committed without claims');
    const token = await signAccessToken(keyRing, claims);
    return provider === undefined ? token : { ...token, provider_credential: provider.credential };
  }

  /**
   * For a provider integration: the redemption's checks (the store checks them again when it claims and when it
   * commits), the lifetime the token will have, the claim on the decision (committed: a concurrent or retried redeem
   * is refused `redemption_in_progress` rather than minting a second credential), then the mint. A failed mint
   * releases the claim. `undefined` for any other integration, or a decision the store will refuse anyway (unknown).
   */
  async #mintFor(caller: CallerConfig, decisionId: string, now: Date, resource: string | undefined): Promise<Minted | undefined> {
    const minting = this.#o.providers;
    if (minting === undefined) return undefined;
    const decision = await this.#o.store.getDecision(decisionId);
    if (decision === undefined) return undefined;
    const minimum = minting.minimumTtlSeconds(decision.integration);
    if (minimum === null) return undefined;
    const id = decision.decision_id;
    if (decision.caller_id !== caller.id) throw new PdpError('decision_wrong_caller', `decision ${id} was made for another caller`);
    if (decision.outcome !== 'allow') throw new PdpError('decision_not_allowed', `decision ${id} is not an allow`);
    if (decision.redeemed_jti !== null) throw new PdpError('decision_already_redeemed', `decision ${id} was already redeemed`);
    if (decision.redeemable_until === null || now.toISOString() > decision.redeemable_until) {
      throw new PdpError('decision_expired', `decision ${id} could be redeemed until ${String(decision.redeemable_until)}`);
    }
    const task = decision.task_id === null ? undefined : await this.#o.store.getTask(decision.task_id);
    if (task !== undefined && (task.status !== 'active' || Date.parse(task.expires_at) - now.getTime() < LAST_SECOND_MS)) {
      throw new PdpError('task_not_active', `task ${decision.task_id} is no longer active`);
    }
    const grant = decision.token_grant as TokenGrantSource | null;
    if (!grant) throw new PdpError('decision_not_allowed', `decision ${id} carries no grant`);
    const audience = this.#o.audienceFor(decision.integration);
    if (resource !== undefined && resource !== audience) {
      throw new PdpError('invalid_target', `resource must be the audience of integration ${decision.integration}`, { details: [{ path: 'resource', message: `is not ${audience}` }] });
    }
    const seconds = this.#lifetime(grant, task, now);
    if (seconds < minimum) {
      throw new PdpError(
        'provider_ttl_too_short',
        `the token for decision ${id} would live ${seconds} s, below the ${minimum} s the provider of ${decision.integration} mints at least: ` +
          'nothing is minted that would outlive the grant (raise the agent\'s token_ttl, or the task\'s lifetime)',
      );
    }
    const claim = randomUUID();
    const until = new Date(now.getTime() + minting.timeoutMs(decision.integration) + MINT_CLAIM_MARGIN_SECONDS * 1000);
    await this.#o.store.claimProviderMint({ decision_id: id, caller_id: caller.id, claim, now: now.toISOString(), until: until.toISOString() });
    try {
      const minted = await minting.mint({
        integration: decision.integration,
        agent_id: decision.agent_id,
        task_id: decision.task_id,
        decision_id: id,
        scopes: grant.granted_scopes,
        resource: grant.resource ?? null,
        task_context: task?.context ?? null,
        ...this.#bounds(grant, task),
      });
      const record = this.#o.maskRecord?.(minted.record, { resource: grant.resource ?? null, task_context: task?.context ?? null }) ?? minted.record;
      return { claim, ...minted, record, decision: { agent_id: decision.agent_id, task_id: decision.task_id, integration: decision.integration } };
    } catch (err) {
      // Nothing was minted: the decision is free for a retry. Should the release fail, the claim lapses at `until`.
      await this.#o.store.endProviderMint({ decision_id: id, claim, now: this.#now().toISOString() }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A credential minted and then refused its token (the task closed or the decision expired during the mint, the
   * credential would outlive the token, the store failed): it cannot be recalled, so the trail records it
   * (provider.credential_discarded), and the claim ends. Should that write fail too, the minter is told (a log line).
   */
  async #discard(minted: Minted, caller: CallerConfig, decisionId: string, traceId: string | null, err: unknown): Promise<void> {
    const reason = isPdpError(err) ? err.code : 'internal';
    try {
      await this.#o.store.endProviderMint({
        decision_id: decisionId,
        claim: minted.claim,
        now: this.#now().toISOString(),
        discarded: {
          agent_id: minted.decision.agent_id,
          caller_id: caller.id,
          task_id: minted.decision.task_id,
          trace_id: traceId,
          integration: minted.decision.integration,
          reason,
          provider_credential: minted.record,
        },
      });
    } catch {
      this.#o.providers?.unrecorded({ integration: minted.decision.integration, decision_id: decisionId, reason, record: minted.record });
    }
  }

  /** The token's lifetime as `planAccessToken` will compute it at `now`: the TTL, the issuer's cap, the task, the elevation. */
  #lifetime(grant: TokenGrantSource, task: { expires_at: string } | undefined, now: Date): number {
    const iat = Math.floor(now.getTime() / 1000);
    const { ttl_seconds, not_after } = this.#bounds(grant, task);
    return Math.min(ttl_seconds, not_after === null ? Infinity : not_after - iat);
  }

  /**
   * What bounds the token, as the minter needs it: the lifetime it has from whenever it is issued (the TTL under the
   * issuer's cap), and the fixed end it may not pass (the task's expiry, the elevation's end). The token is planned
   * after the mint, so a credential minted within these bounds cannot outlive it.
   */
  #bounds(grant: TokenGrantSource, task: { expires_at: string } | undefined): { ttl_seconds: number; not_after: number | null } {
    let notAfter: number | null = null;
    for (const end of [task?.expires_at, grant.not_after ?? undefined]) {
      if (end !== undefined) notAfter = Math.min(notAfter ?? Infinity, Math.floor(Date.parse(end) / 1000));
    }
    return { ttl_seconds: Math.min(grant.token_ttl_seconds, this.#o.keys.ring.maxTokenTtlSeconds), not_after: notAfter };
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
    // A token of ours outside its times (long expired) is still ours: its introspection is recorded like any other,
    // and it is never active.
    const current = await this.#verified(token, now);
    const claims = current ?? (payloadExpired(token, now) ? await this.#verified(token, now, EXPIRED_TOO) : undefined);
    if (!claims) return { active: false };
    const record = await this.#o.store.getToken(claims.jti);
    if (!record) return { active: false };
    // RFC 7662 §4: the server decides who may introspect what. Resource servers may introspect any token (that is
    // what the endpoint is for); a PEP only the tokens issued to itself, so it cannot read other PEPs' grants.
    const entitled = !hasRole(caller, 'pep') || claims.client_id === caller.id;
    let active = current !== undefined && entitled && record.revoked_at === null && Date.parse(record.expires_at) > now.getTime();
    // Claims that differ from the token issued under this jti (a copy re-signed with a leaked key) are never active.
    if (active) active = await this.#issuedAsClaimed(claims, record);
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

  /**
   * Whether these claims are the token issued under their jti: its row, and the record its decision's grant is bound
   * to. Checked once per verified claims object (the verified-token cache hands the same object out again), as the
   * issued facts never change.
   */
  async #issuedAsClaimed(claims: AccessTokenClaims, record: TokenRecord): Promise<boolean> {
    if (this.#issuedClaims.has(claims)) return true;
    const decision = await this.#o.store.getDecision(record.decision_id);
    const ok = decision !== undefined && claimsAreIssued(claims, issuedToken(record, decision));
    if (ok) this.#issuedClaims.add(claims);
    return ok;
  }

  /**
   * RFC 7009: always succeeds from the caller's view. The caller a token was issued to can revoke it; so can a
   * resource server (that is not also a PEP) it was presented to.
   */
  async revoke(caller: CallerConfig, token: string, traceId: string | null): Promise<void> {
    const now = this.#now();
    const claims = await this.#verified(token, now); // an expired token is dead already: nothing to revoke
    if (!claims) return;
    // RFC 7009 §2.1: a client revokes its own tokens. A resource server, which may introspect any token, may also
    // revoke one presented to it (a leaked or misused token it saw): it is recorded as the revoker. The same rule as
    // introspection's: a caller that is also a PEP sees (and so revokes) only its own tokens, and a token whose
    // claims are not the ones issued under its jti (re-signed with a leaked key) is not ours to act on.
    const own = claims.client_id === caller.id;
    const asResourceServer = !own && hasRole(caller, 'resource_server') && !hasRole(caller, 'pep');
    if (!own && !asResourceServer) return;
    if (asResourceServer) {
      const record = await this.#o.store.getToken(claims.jti);
      if (record === undefined || !(await this.#issuedAsClaimed(claims, record))) return;
    }
    const revoked = await this.#o.store.revokeToken({ jti: claims.jti, caller_id: caller.id, any_holder: asResourceServer, at: now.toISOString(), reason: 'revoked_by_caller', trace_id: traceId });
    if (revoked) this.#o.observer?.tokenEvent('revoked');
  }

  /**
   * Signature, issuer and type checked; `undefined` for anything that is not a token of ours. A token verified
   * before under the same key ring is not verified again (`verified-tokens.ts`); its expiry still is.
   */
  async #verified(token: string, now: Date, clockTolerance?: number): Promise<AccessTokenClaims | undefined> {
    const ring = this.#o.keys.ring;
    const anyTime = clockTolerance !== undefined;
    const known = anyTime ? undefined : this.#verifiedTokens.get(token, ring, now);
    if (known !== undefined) return known;
    try {
      const claims = await verifyIssuedToken(token, { jwks: this.#o.keys.resolver, issuer: this.#o.issuer, currentDate: now, ...(anyTime ? { clockTolerance } : {}) });
      if (!anyTime) this.#verifiedTokens.set(token, ring, claims);
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
