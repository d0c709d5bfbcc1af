import type { AwsProviderConfig } from '../config/config-types.js';
import type { CompiledAwsMap } from '../policy/policy-types.js';
import type { ProviderCredentialRecord } from '../audit/index.js';
import type { ProviderCredentialV1 } from '../wire/token-v1.js';
import { fillTemplate, type TemplateValues } from './map-templates.js';
import { checkStsTags, PROVIDER_LIMITS, ProviderLimitRefused, stsName } from './provider-limits.js';
import type { AwsSourceCredential } from './source-credentials.js';

let stsSdk: Promise<typeof import('@aws-sdk/client-sts')> | undefined;

/**
 * The AWS SDK's STS client, loaded once: by a server whose config names an AWS provider as it starts (in the
 * background), never by one that names none (it is about 0.1 s of a start).
 */
export function loadStsSdk(): Promise<typeof import('@aws-sdk/client-sts')> {
  stsSdk ??= import('@aws-sdk/client-sts');
  return stsSdk;
}

/** STS refuses `DurationSeconds` below this (AssumeRole's documented minimum). */
export const STS_MINIMUM_SECONDS = 900;
/** AssumeRole's ceiling for any role; the role's own maximum session duration may be lower (STS then refuses). */
export const STS_MAXIMUM_SECONDS = 43200;

/**
 * The longest `DurationSeconds` asked of STS for this provider: the role's maximum session duration as configured
 * (`providers[].max_session_seconds`, default 3600 like a new role's), never above AssumeRole's own ceiling. STS
 * refuses a duration above the role's maximum, so a token living longer gets a shorter credential, never a refusal.
 */
export function awsDurationCap(provider: Pick<AwsProviderConfig, 'max_session_seconds'>): number {
  return Math.min(provider.max_session_seconds, STS_MAXIMUM_SECONDS);
}

export interface AwsGrant {
  integration: string;
  agent_id: string;
  task_id: string | null;
  decision_id: string;
  /** Granted scopes, each mapped by the provider map. */
  scopes: readonly string[];
  values: TemplateValues;
  duration_seconds: number;
}

interface SessionStatement {
  Effect: 'Allow';
  Action: string[];
  Resource: string[];
  Condition?: Record<string, Record<string, string[]>>;
}

/**
 * The session policy for a grant: one Allow statement per mapped statement of each granted scope, in scope order,
 * templates filled (a value that could widen a pattern throws `TemplateRefused`). A granted scope the map lacks
 * throws too: the compiler requires every scope to be mapped, so that is a map older than the grant.
 */
export function sessionPolicy(map: CompiledAwsMap, grant: Pick<AwsGrant, 'scopes' | 'values'>): { Version: '2012-10-17'; Statement: SessionStatement[] } {
  const statements: SessionStatement[] = [];
  for (const scope of [...grant.scopes].sort()) {
    const mapped = Object.hasOwn(map.scopes, scope) ? map.scopes[scope] : undefined;
    if (mapped === undefined) throw new Error(`scope ${scope} has no statement in the provider map of ${map.integration}`);
    for (const s of mapped) {
      const statement: SessionStatement = { Effect: 'Allow', Action: [...s.actions], Resource: s.resources.map((r) => fillTemplate(r, grant.values)) };
      const ops = Object.entries(s.conditions);
      if (ops.length > 0) {
        statement.Condition = Object.fromEntries(
          ops.map(([op, keys]) => [op, Object.fromEntries(Object.entries(keys).map(([key, values]) => [key, values.map((v) => fillTemplate(v, grant.values))]))]),
        );
      }
      statements.push(statement);
    }
  }
  return { Version: '2012-10-17', Statement: statements };
}

/** `agentpdp-<decision id>`, in a form STS takes (`stsName`: as is when it fits, never cut into another's). */
function sessionName(decisionId: string): string {
  return stsName(`agentpdp-${decisionId}`);
}

/**
 * What AssumeRole is sent besides the lifetime, checked against what STS takes before anything is sent (a
 * `ProviderLimitRefused` otherwise): the session policy's JSON (at most 2048 characters), the session tags (agent,
 * task, decision: CloudTrail shows them), the session name and SourceIdentity (the agent id, or its `stsName` form).
 */
export function assumeRoleRequest(
  map: CompiledAwsMap,
  grant: Pick<AwsGrant, 'agent_id' | 'task_id' | 'decision_id' | 'scopes' | 'values'>,
): { policy: ReturnType<typeof sessionPolicy>; policyJson: string; tags: Record<string, string>; name: string; sourceIdentity: string } {
  const policy = sessionPolicy(map, grant);
  const policyJson = JSON.stringify(policy);
  if (policyJson.length > PROVIDER_LIMITS.stsPolicyChars) {
    throw new ProviderLimitRefused(`the session policy for scopes ${[...grant.scopes].sort().join(' ')} is ${policyJson.length} characters: STS takes at most ${PROVIDER_LIMITS.stsPolicyChars}`);
  }
  const tags: Record<string, string> = { agent_id: grant.agent_id, decision_id: grant.decision_id };
  if (grant.task_id !== null) tags['task_id'] = grant.task_id;
  checkStsTags(tags);
  return { policy, policyJson, tags, name: sessionName(grant.decision_id), sourceIdentity: stsName(grant.agent_id) };
}

/**
 * AssumeRole with the session policy, the lifetime, the session tags (agent, task, decision: CloudTrail shows them)
 * and SourceIdentity (the agent), through the real AWS SDK, once {@link assumeRoleRequest} found them acceptable.
 * Errors are `ProviderLimitRefused`, `TemplateRefused` or the SDK's (`AccessDenied`, a timeout, …); the caller turns
 * them into `provider_failed`.
 */
export async function assumeRole(
  provider: AwsProviderConfig,
  source: AwsSourceCredential,
  map: CompiledAwsMap,
  grant: AwsGrant,
): Promise<{ credential: ProviderCredentialV1; record: ProviderCredentialRecord }> {
  const { policy, policyJson, tags, name, sourceIdentity } = assumeRoleRequest(map, grant);
  const { AssumeRoleCommand, STSClient } = await loadStsSdk();
  const client = new STSClient({
    region: provider.region,
    ...(provider.endpoint === null ? {} : { endpoint: provider.endpoint }),
    credentials: source.sdkCredentials(),
    maxAttempts: 1,
    requestHandler: { connectionTimeout: provider.timeout_ms, requestTimeout: provider.timeout_ms },
  });
  try {
    const out = await client.send(
      new AssumeRoleCommand({
        RoleArn: provider.role_arn,
        RoleSessionName: name,
        DurationSeconds: grant.duration_seconds,
        Policy: policyJson,
        SourceIdentity: sourceIdentity,
        Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
      }),
      { abortSignal: AbortSignal.timeout(provider.timeout_ms) },
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date) || Number.isNaN(c.Expiration.getTime())) {
      throw new Error('STS answered AssumeRole without complete credentials');
    }
    const expiration = c.Expiration.toISOString();
    return {
      credential: {
        provider: 'aws',
        integration: grant.integration,
        expires_at: expiration,
        aws: { access_key_id: c.AccessKeyId, secret_access_key: c.SecretAccessKey, session_token: c.SessionToken, expiration, region: provider.region },
      },
      record: {
        provider: 'aws',
        request_id: out.$metadata.requestId ?? null,
        expires_at: expiration,
        role_arn: provider.role_arn,
        session_name: name,
        source_identity: sourceIdentity,
        session_tags: tags,
        session_policy: policy as unknown as Record<string, unknown>,
      },
    };
  } finally {
    client.destroy();
  }
}
