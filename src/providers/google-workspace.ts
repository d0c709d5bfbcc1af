import { SignJWT } from 'jose';
import type { GoogleWorkspaceProviderConfig } from '../config/config-types.js';
import type { GoogleWorkspaceCredentialRecord } from '../audit/index.js';
import type { CompiledGoogleWorkspaceMap } from '../policy/policy-types.js';
import type { GoogleWorkspaceCredentialV1 } from '../wire/token-v1.js';
import { fillTemplate, type TemplateValues } from './map-templates.js';
import type { GoogleServiceAccount } from './source-credentials.js';

/** RFC 7523's grant type, as Google's token endpoint takes it. */
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** Google's access tokens live an hour whatever the assertion says; nothing shorter can be minted. */
export const GOOGLE_TOKEN_SECONDS = 3600;

export interface GoogleGrant {
  integration: string;
  scopes: readonly string[];
  values: TemplateValues;
  /** The assertion's lifetime (at most an hour). */
  ttl_seconds: number;
}

/** The Google scope URLs of the granted scopes, sorted, unique; a granted scope the map lacks throws. */
export function googleScopes(map: CompiledGoogleWorkspaceMap, scopes: readonly string[]): string[] {
  const urls = new Set<string>();
  for (const scope of scopes) {
    const mapped = Object.hasOwn(map.scopes, scope) ? map.scopes[scope] : undefined;
    if (mapped === undefined) throw new Error(`scope ${scope} has no Google scope in the provider map of ${map.integration}`);
    for (const url of mapped) urls.add(url);
  }
  return [...urls].sort();
}

/**
 * Domain-wide delegation: an RS256 assertion (RFC 7523 §2.1: `iss` the service account, `sub` the task's user, `aud`
 * the token endpoint, `scope` the granted Google scopes, `exp` ≤ an hour) exchanged at the token endpoint.
 * Errors name Google's `error` code, never the assertion.
 */
export async function mintWorkspaceToken(
  provider: GoogleWorkspaceProviderConfig,
  account: GoogleServiceAccount,
  map: CompiledGoogleWorkspaceMap,
  grant: GoogleGrant,
): Promise<{ credential: GoogleWorkspaceCredentialV1; record: GoogleWorkspaceCredentialRecord }> {
  const scopes = googleScopes(map, grant.scopes);
  const subject = fillTemplate(map.subject, grant.values);
  const iat = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ scope: scopes.join(' ') })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(account.keyId === undefined ? {} : { kid: account.keyId }) })
    .setIssuer(account.email)
    .setSubject(subject)
    .setAudience(provider.token_endpoint)
    .setIssuedAt(iat)
    .setExpirationTime(iat + Math.min(grant.ttl_seconds, GOOGLE_TOKEN_SECONDS))
    .sign(account.signingKey());
  const res = await fetch(provider.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({ grant_type: JWT_BEARER, assertion }).toString(),
    redirect: 'error',
    signal: AbortSignal.timeout(provider.timeout_ms),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // described below by status only
  }
  if (!res.ok) {
    const code = typeof body['error'] === 'string' ? body['error'] : 'no error code';
    const description = typeof body['error_description'] === 'string' ? `: ${body['error_description'].slice(0, 200)}` : '';
    throw new Error(`Google token endpoint answered ${res.status} ${code}${description}`);
  }
  const accessToken = body['access_token'];
  const expiresIn = body['expires_in'];
  if (typeof accessToken !== 'string' || accessToken === '' || typeof expiresIn !== 'number' || !(expiresIn > 0) || String(body['token_type']).toLowerCase() !== 'bearer') {
    throw new Error('Google token endpoint answered without access_token, expires_in and token_type Bearer');
  }
  // Google counts expires_in from when it issued the token: from its answer (our clock), not from our ask.
  const expiresAt = new Date((Math.floor(Date.now() / 1000) + Math.floor(expiresIn)) * 1000).toISOString();
  return {
    credential: {
      provider: 'google_workspace',
      integration: grant.integration,
      expires_at: expiresAt,
      google: { access_token: accessToken, token_type: 'Bearer', subject, scopes },
    },
    record: { provider: 'google_workspace', request_id: null, expires_at: expiresAt, service_account: account.email, subject, scopes },
  };
}
