import type { CallerConfig } from '../config/config-types.js';
import type { Store, TokenUseInput } from '../store/index.js';
import type { ResourceRef } from '../wire/evaluation-v1.js';
import type { UsageAnswerV1, UsageRejectionCode, UsageReportV1 } from '../wire/usage-v1.js';

export interface UsageServiceOptions {
  store: Pick<Store, 'getToken' | 'getDecision' | 'recordTokenUses'>;
  /**
   * Slack, in seconds, between a report's `used_at` (the resource server's clock) and the token's life (`issued_at`
   * to `expires_at`) or the PDP's clock. Default 60.
   */
  toleranceSeconds?: number;
  /** Most tokens whose facts are kept between batches (they never change once issued). Default 10000. */
  cacheSize?: number;
  now?: () => Date;
}

/** What a report is checked against: what the token was issued for. Fixed at issue, so it may be cached. */
interface TokenFacts {
  integration: string;
  scopes: ReadonlySet<string>;
  resource: ResourceRef | null;
  issuedAt: number;
  expiresAt: number;
}

/**
 * A resource server's usage reports (`POST /v1/usage`): each report names a token of ours, the scope the request
 * it let through required, the integration, the record and when. A report is use evidence only when it agrees
 * with the token: a jti the store does not know is counted `unknown` (never an error: the token may be another
 * issuer's); a report whose integration, scope or record the token does not grant, or whose time is outside the
 * token's life or ahead of the PDP's clock, is refused by index with a code and never recorded. The accepted ones
 * become `token.used` events (`action: resource_server`, caller = the resource server, time = the PDP's), all in
 * one transaction committed before the answer.
 *
 * Any resource server may report on any token (as any may introspect one); the report is the resource server's
 * word, which the trail keeps as such (its `caller_id`). Revocation is not checked: a use a resource server let
 * through with a revoked token still happened.
 */
export class UsageService {
  readonly #o: UsageServiceOptions;
  readonly #toleranceMs: number;
  readonly #cacheSize: number;
  readonly #facts = new Map<string, TokenFacts>();

  constructor(options: UsageServiceOptions) {
    const tolerance = options.toleranceSeconds ?? 60;
    const cacheSize = options.cacheSize ?? 10_000;
    if (!Number.isFinite(tolerance) || tolerance < 0) throw new TypeError('UsageService: "toleranceSeconds" must be a non-negative number');
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) throw new TypeError('UsageService: "cacheSize" must be a non-negative integer');
    this.#o = options;
    this.#toleranceMs = tolerance * 1000;
    this.#cacheSize = cacheSize;
  }

  async record(caller: CallerConfig, reports: readonly UsageReportV1[], traceId: string | null): Promise<UsageAnswerV1> {
    const now = this.#now();
    const at = now.toISOString();
    const facts = new Map<string, TokenFacts | undefined>();
    for (const { jti } of reports) if (!facts.has(jti)) facts.set(jti, await this.#tokenFacts(jti));
    const uses: TokenUseInput[] = [];
    const rejected: UsageAnswerV1['rejected'] = [];
    let unknown = 0;
    reports.forEach((report, index) => {
      const token = facts.get(report.jti);
      if (token === undefined) {
        unknown++;
        return;
      }
      const code = this.#refusal(report, token, now.getTime());
      if (code !== undefined) {
        rejected.push({ index, code });
        return;
      }
      uses.push({
        jti: report.jti,
        caller_id: caller.id,
        at,
        trace_id: traceId,
        data: {
          action: 'resource_server',
          integration: report.integration,
          scope: report.scope,
          record: report.record == null ? null : { type: report.record.type, id: report.record.id },
          route: report.route ?? null,
          used_at: report.used_at,
        },
      });
    });
    await this.#o.store.recordTokenUses(uses);
    return { accepted: uses.length, unknown, rejected };
  }

  /** The first thing the report claims that the token does not grant, or undefined when it agrees. */
  #refusal(report: UsageReportV1, token: TokenFacts, now: number): UsageRejectionCode | undefined {
    if (report.integration !== token.integration) return 'integration_mismatch';
    if (!token.scopes.has(report.scope)) return 'scope_not_granted';
    const record = report.record ?? null;
    if (token.resource !== null && (record === null || record.type !== token.resource.type || record.id !== token.resource.id)) return 'record_mismatch';
    const usedAt = Date.parse(report.used_at);
    if (usedAt > now + this.#toleranceMs) return 'used_in_future';
    if (usedAt < token.issuedAt - this.#toleranceMs || usedAt > token.expiresAt + this.#toleranceMs) return 'outside_token_lifetime';
    return undefined;
  }

  /** The token's facts from its record and its decision (integration, bound record); undefined for a jti not ours. */
  async #tokenFacts(jti: string): Promise<TokenFacts | undefined> {
    const cached = this.#facts.get(jti);
    if (cached !== undefined) return cached;
    const token = await this.#o.store.getToken(jti);
    if (token === undefined) return undefined;
    const decision = await this.#o.store.getDecision(token.decision_id);
    if (decision === undefined) return undefined;
    const facts: TokenFacts = {
      integration: decision.integration,
      scopes: new Set(token.scopes),
      resource: grantedResource(decision.token_grant),
      issuedAt: Date.parse(token.issued_at),
      expiresAt: Date.parse(token.expires_at),
    };
    if (this.#cacheSize > 0) {
      // Oldest first out: a Map iterates in insertion order.
      if (this.#facts.size >= this.#cacheSize) this.#facts.delete(this.#facts.keys().next().value as string);
      this.#facts.set(jti, facts);
    }
    return facts;
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }
}

/**
 * The record the decision's (unmasked) grant bound its token to, or null. A grant whose record cannot be read
 * binds to a record no report can name (`type` '' is no id), so its reports are refused rather than let through.
 */
function grantedResource(grant: unknown): ResourceRef | null {
  const resource = (grant as { resource?: unknown } | null)?.resource;
  if (resource === null || resource === undefined) return null;
  const { type, id } = (typeof resource === 'object' ? resource : {}) as { type?: unknown; id?: unknown };
  return typeof type === 'string' && typeof id === 'string' ? { type, id } : { type: '', id: '' };
}
