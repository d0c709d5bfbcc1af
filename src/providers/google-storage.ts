import { SignJWT } from 'jose';
import type { GcsProviderConfig } from '../config/config-types.js';
import type { GcsCredentialRecord } from '../audit/index.js';
import type { CompiledGcsMap } from '../policy/policy-types.js';
import type { GcsCredentialV1 } from '../wire/token-v1.js';
import { GOOGLE_TOKEN_SECONDS, JWT_BEARER } from './google-workspace.js';
import { fillTemplate, type TemplateValues } from './map-templates.js';
import { PROVIDER_LIMITS, ProviderLimitRefused } from './provider-limits.js';
import type { GoogleServiceAccount } from './source-credentials.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

export interface GcsGrant {
  integration: string;
  scopes: readonly string[];
  values: TemplateValues;
  ttl_seconds: number;
}

/** A CEL string literal: the filled prefix holds no quote or backslash (the template value rule), checked again here. */
function celString(text: string): string {
  if (/['"\\\n]/.test(text)) throw new Error('an object prefix with a quote or backslash cannot go into CEL');
  return `'${text}'`;
}

/**
 * The Credential Access Boundary for a grant: one rule per mapped rule of each granted scope, the object prefix as a
 * CEL availability condition over the object's name and over a listing's prefix. More rules, or a longer condition,
 * than Google STS takes is a `ProviderLimitRefused` (nothing is sent).
 */
export function accessBoundary(map: CompiledGcsMap, grant: Pick<GcsGrant, 'scopes' | 'values'>): { accessBoundary: { accessBoundaryRules: Record<string, unknown>[] } } {
  const rules: Record<string, unknown>[] = [];
  for (const scope of [...grant.scopes].sort()) {
    const mapped = Object.hasOwn(map.scopes, scope) ? map.scopes[scope] : undefined;
    if (mapped === undefined) throw new Error(`scope ${scope} has no rule in the provider map of ${map.integration}`);
    for (const r of mapped) {
      const rule: Record<string, unknown> = {
        availableResource: `//storage.googleapis.com/projects/_/buckets/${r.bucket}`,
        availablePermissions: [`inRole:${r.role}`],
      };
      if (r.object_prefix !== null) {
        const prefix = fillTemplate(r.object_prefix, grant.values);
        const objects = celString(`projects/_/buckets/${r.bucket}/objects/${prefix}`);
        const expression = `resource.name.startsWith(${objects}) || api.getAttribute('storage.googleapis.com/objectListPrefix', '').startsWith(${celString(prefix)})`;
        if (expression.length > PROVIDER_LIMITS.celExpressionChars) {
          throw new ProviderLimitRefused(`the availability condition for bucket ${r.bucket} is ${expression.length} characters: Google STS takes at most ${PROVIDER_LIMITS.celExpressionChars}`);
        }
        rule['availabilityCondition'] = { title: `${scope}: ${prefix}`, expression };
      }
      rules.push(rule);
    }
  }
  if (rules.length > PROVIDER_LIMITS.gcsBoundaryRules) {
    throw new ProviderLimitRefused(`the access boundary for scopes ${[...grant.scopes].sort().join(' ')} has ${rules.length} rules: Google STS takes at most ${PROVIDER_LIMITS.gcsBoundaryRules}`);
  }
  return { accessBoundary: { accessBoundaryRules: rules } };
}

async function postForm(url: string, form: Record<string, string>, timeoutMs: number, what: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(form).toString(),
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(await res.text()) as Record<string, unknown>;
  } catch {
    // described by status only
  }
  if (!res.ok) {
    const code = typeof body['error'] === 'string' ? body['error'] : 'no error code';
    const description = typeof body['error_description'] === 'string' ? `: ${body['error_description'].slice(0, 200)}` : '';
    throw new Error(`${what} answered ${res.status} ${code}${description}`);
  }
  if (typeof body['access_token'] !== 'string' || body['access_token'] === '' || typeof body['expires_in'] !== 'number' || !(body['expires_in'] > 0)) {
    throw new Error(`${what} answered without access_token and expires_in`);
  }
  return body;
}

/**
 * The service account's own token (an RFC 7523 assertion without `sub`, scope cloud-platform), then the RFC 8693
 * exchange at Google's STS with the boundary in `options`: the token returned reaches only what the boundary allows.
 * The source token is never returned or recorded.
 */
export async function mintDownscopedToken(
  provider: GcsProviderConfig,
  account: GoogleServiceAccount,
  map: CompiledGcsMap,
  grant: GcsGrant,
): Promise<{ credential: GcsCredentialV1; record: GcsCredentialRecord }> {
  const boundary = accessBoundary(map, grant);
  const iat = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ scope: CLOUD_PLATFORM })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(account.keyId === undefined ? {} : { kid: account.keyId }) })
    .setIssuer(account.email)
    .setAudience(provider.token_endpoint)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.min(grant.ttl_seconds, GOOGLE_TOKEN_SECONDS))
    .sign(account.signingKey());
  const source = await postForm(provider.token_endpoint, { grant_type: JWT_BEARER, assertion }, provider.timeout_ms, 'Google token endpoint');
  const exchanged = await postForm(
    provider.sts_endpoint,
    {
      grant_type: TOKEN_EXCHANGE,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      subject_token: source['access_token'] as string,
      options: JSON.stringify(boundary),
    },
    provider.timeout_ms,
    'Google STS',
  );
  // Google counts expires_in from when it issued the token: from its answer (our clock), not from our ask.
  const expiresAt = new Date((Math.floor(Date.now() / 1000) + Math.floor(exchanged['expires_in'] as number)) * 1000).toISOString();
  return {
    credential: { provider: 'gcp_storage', integration: grant.integration, expires_at: expiresAt, google: { access_token: exchanged['access_token'] as string, token_type: 'Bearer' } },
    record: { provider: 'gcp_storage', request_id: null, expires_at: expiresAt, service_account: account.email, access_boundary: boundary as unknown as Record<string, unknown> },
  };
}
