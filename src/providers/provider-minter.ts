import type { ProviderConfig } from '../config/config-types.js';
import { describeError, PdpError } from '../errors/pdp-error.js';
import type { PolicySet } from '../policy/policy-types.js';
import type { ProviderCredentialRecord } from '../audit/index.js';
import type { ProviderCredentialV1 } from '../wire/token-v1.js';
import { assumeRole, awsDurationCap, loadStsSdk, STS_MINIMUM_SECONDS } from './aws-sts.js';
import { mintDownscopedToken } from './google-storage.js';
import { GOOGLE_TOKEN_SECONDS, mintWorkspaceToken } from './google-workspace.js';
import { TemplateRefused } from './map-templates.js';
import { ProviderLimitRefused } from './provider-limits.js';
import { loadAwsSourceCredential, loadGoogleServiceAccount, type AwsSourceCredential, type GoogleServiceAccount } from './source-credentials.js';

type Provider =
  | { config: Extract<ProviderConfig, { kind: 'aws' }>; source: AwsSourceCredential }
  | { config: Extract<ProviderConfig, { kind: 'google_workspace' | 'gcp_storage' }>; source: GoogleServiceAccount };

/** One grant to mint a provider credential for (the TokenService builds it from the checked decision). */
export interface ProviderMintRequest {
  integration: string;
  agent_id: string;
  task_id: string | null;
  decision_id: string;
  scopes: readonly string[];
  resource: { type: string; id: string } | null;
  /** The registered task's context; null for a task no orchestrator registered. */
  task_context: Readonly<Record<string, unknown>> | null;
  /** The token's own lifetime (its TTL under the issuer's cap), in seconds: it is issued after the mint answers. */
  ttl_seconds: number;
  /** The fixed end the token may not pass (its task's expiry, its elevation's end), in Unix seconds; null when none. */
  not_after: number | null;
}

export interface MintedProviderCredential {
  /** Returned to the caller, never stored or logged. */
  credential: ProviderCredentialV1;
  /** Recorded in token.issued. */
  record: ProviderCredentialRecord;
}

/** Told of each failed mint, with a description that holds no secret (the provider's error code and message). */
export type ProviderFailureLog = (failure: { integration: string; decision_id: string; error: string }) => void;

/**
 * The members of a provider credential's record that hold no value of the decision (the provider, its request id,
 * times, the role and account): `audit.mask` leaves them as they are (`maskEmbedded`'s `fixed`).
 */
export const RECORD_FIELDS_WITHOUT_DECISION_VALUES: readonly string[] = Object.freeze(['provider', 'request_id', 'expires_at', 'role_arn', 'service_account', 'session_name']);

/**
 * What does not fit between the config's providers and the policy in force, each a sentence for the operator: a
 * provider whose integration has no provider_map (every redeem of it fails, `provider_failed`) or one of another
 * kind, one for an integration the policy does not know, a provider_map no provider is configured for (its tokens
 * are ours only). Checked at every load, so a reload that drops a map says so before the first redeem does.
 */
export function providerConfigProblems(providers: readonly ProviderConfig[], policy: Pick<PolicySet, 'integrations' | 'providerMaps'>): string[] {
  const maps = policy.providerMaps ?? {};
  const problems: string[] = [];
  providers.forEach((p, i) => {
    const at = `providers[${i}] (integration ${p.integration}, kind ${p.kind})`;
    if (!Object.hasOwn(policy.integrations, p.integration)) problems.push(`${at}: the policy has no integration ${p.integration}`);
    const map = Object.hasOwn(maps, p.integration) ? maps[p.integration] : undefined;
    if (map === undefined) problems.push(`${at}: the policy has no provider_map for ${p.integration}: every redeem of it fails (provider_failed)`);
    else if (map.kind !== p.kind) problems.push(`${at}: the provider_map of ${p.integration} is of kind ${map.kind}: every redeem of it fails (provider_failed)`);
  });
  const configured = new Set(providers.map((p) => p.integration));
  for (const integration of Object.keys(maps).sort()) {
    if (!configured.has(integration)) problems.push(`provider_map for ${integration}: no providers[] entry names it, so its tokens are agent-pdp's only (no ${maps[integration]?.kind} credential is minted)`);
  }
  return problems;
}

/**
 * Mints provider credentials for the integrations the config names (docs/providers.md), narrowed by the active
 * policy's provider maps. Source credentials are read once, here, at construction.
 */
export class ProviderMinter {
  readonly #providers = new Map<string, Provider>();
  readonly #policy: () => PolicySet | undefined;
  readonly #onFailure: ProviderFailureLog;

  constructor(options: { providers: readonly ProviderConfig[]; policy: () => PolicySet | undefined; variables?: NodeJS.ProcessEnv; onFailure?: ProviderFailureLog }) {
    options.providers.forEach((config, i) => {
      this.#providers.set(
        config.integration,
        config.kind === 'aws'
          ? { config, source: loadAwsSourceCredential(config, i, options.variables) }
          : { config, source: loadGoogleServiceAccount(config, i, options.variables) },
      );
    });
    this.#policy = options.policy;
    this.#onFailure = options.onFailure ?? (() => {});
    // The SDK is loaded now, in the background, rather than by the first mint; a failure to load shows there.
    if (options.providers.some((p) => p.kind === 'aws')) void loadStsSdk().catch(() => undefined);
  }

  /** The shortest lifetime the integration's provider mints, or null when the integration mints nothing. */
  minimumTtlSeconds(integration: string): number | null {
    const provider = this.#providers.get(integration);
    if (provider === undefined) return null;
    return provider.config.kind === 'aws' ? STS_MINIMUM_SECONDS : GOOGLE_TOKEN_SECONDS;
  }

  /** The longest a mint of the integration may take: its provider's `timeout_ms` per request it makes. */
  timeoutMs(integration: string): number {
    const provider = this.#providers.get(integration);
    if (provider === undefined) return 0;
    // GCS: two requests in a row (the account's token, then the exchange), each with the whole timeout.
    return provider.config.timeout_ms * (provider.config.kind === 'gcp_storage' ? 2 : 1);
  }

  /** A minted credential discarded without its provider.credential_discarded event (the store failed): logged, no secret. */
  unrecorded(discard: { integration: string; decision_id: string; reason: string; record: ProviderCredentialRecord }): void {
    const { record } = discard;
    this.#onFailure({
      integration: discard.integration,
      decision_id: discard.decision_id,
      error: `a ${record.provider} credential was minted (request id ${String(record.request_id)}, expires ${record.expires_at}) and discarded after ${discard.reason}; the trail could not record it`,
    });
  }

  /**
   * Mints, or throws `provider_failed` (its cause described to `onFailure`, never to the caller), or
   * `provider_ttl_too_short` when, by the time the request is sent, less than the provider's minimum is left.
   */
  async mint(request: ProviderMintRequest): Promise<MintedProviderCredential> {
    const provider = this.#providers.get(request.integration);
    if (provider === undefined) throw new PdpError('internal', `integration ${request.integration} has no provider`);
    // Asked for no longer than the token will live: its TTL (it is issued after this answers), and no later than
    // its fixed end as it stands now, not when the redemption began.
    const seconds = Math.min(request.ttl_seconds, request.not_after === null ? Infinity : request.not_after - Math.floor(Date.now() / 1000));
    const minimum = this.minimumTtlSeconds(request.integration) ?? 0;
    if (seconds < minimum) {
      throw new PdpError('provider_ttl_too_short', `the token for decision ${request.decision_id} would live ${seconds} s, below the ${minimum} s its provider mints at least`);
    }
    try {
      const maps = this.#policy()?.providerMaps ?? {};
      const map = Object.hasOwn(maps, request.integration) ? maps[request.integration] : undefined;
      if (map === undefined) throw new Error(`the policy has no provider_map for ${request.integration}: nothing is minted unnarrowed`);
      if (map.kind !== provider.config.kind) throw new Error(`the provider_map of ${request.integration} is of kind ${map.kind}, the config's provider of kind ${provider.config.kind}`);
      const values = { record: request.resource, context: request.task_context };
      if (provider.config.kind === 'google_workspace' && map.kind === 'google_workspace') {
        return await mintWorkspaceToken(provider.config, provider.source as GoogleServiceAccount, map, {
          integration: request.integration,
          scopes: request.scopes,
          values,
          ttl_seconds: seconds,
        });
      }
      if (provider.config.kind === 'gcp_storage' && map.kind === 'gcp_storage') {
        return await mintDownscopedToken(provider.config, provider.source as GoogleServiceAccount, map, {
          integration: request.integration,
          scopes: request.scopes,
          values,
          ttl_seconds: seconds,
        });
      }
      if (provider.config.kind !== 'aws' || map.kind !== 'aws') throw new Error('unreachable: provider kinds differ');
      return await assumeRole(provider.config, provider.source as AwsSourceCredential, map, {
        integration: request.integration,
        agent_id: request.agent_id,
        task_id: request.task_id,
        decision_id: request.decision_id,
        scopes: request.scopes,
        values,
        duration_seconds: Math.min(seconds, awsDurationCap(provider.config)),
      });
    } catch (err) {
      const error =
        err instanceof TemplateRefused ? `template refused: ${err.message}` : err instanceof ProviderLimitRefused ? `refused before sending: ${err.message}` : describeError(err);
      this.#onFailure({ integration: request.integration, decision_id: request.decision_id, error });
      throw new PdpError('provider_failed', `the provider could not mint a credential for ${request.integration}`);
    }
  }
}
