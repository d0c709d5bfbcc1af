/**
 * Issues one access token for an allowed decision: a JWT in the RFC 9068 profile (`typ: at+jwt`), signed by
 * the key ring's active key, its grant spelled out as one RFC 9396 authorization details object.
 *
 * The caller (the PDP) has already checked the decision; this module trusts its input, caps the lifetime
 * and signs. Lifetime: `exp - iat = min(ttl_seconds, keyRing.maxTokenTtlSeconds, task_expires_at - iat)`,
 * with `task_expires_at` rounded down to a whole second, so a token never outlives its task.
 */
import { randomBytes } from 'node:crypto';
import { PdpError } from '../errors/pdp-error.js';
import type { KeyRing } from './key-ring.js';
import { ACCESS_TOKEN_TYP } from './token-claims.js';
import type { AccessTokenClaims, AuthorizationDetail, ResourceRef } from './token-claims.js';

export interface IssueAccessTokenInput {
  keyRing: KeyRing;
  /** The issuer identifier, exactly as in the metadata (`https://pdp.example.com`). */
  issuer: string;
  /** Becomes `sub`. */
  agent_id: string;
  /** The authenticated caller redeeming the decision; becomes `client_id`. */
  caller_id: string;
  /** Becomes `authorization_details[0].type`, and `aud` unless `audience` is given. */
  integration: string;
  /** The audience configured for the integration. Default: the integration name. */
  audience?: string;
  /** The decision's granted scopes; sorted and deduplicated here. At least one. */
  scopes: readonly string[];
  /** The record the decision is bound to. Default: none (an unbound token). */
  resource?: ResourceRef | null;
  task_id: string;
  decision_id: string;
  /** The decision's token TTL in seconds, a positive integer. */
  ttl_seconds: number;
  /** When the task expires; the token expires no later. Default: no task expiry. */
  task_expires_at?: Date | null;
  /** The issue time; the token's `iat`. */
  now: Date;
}

export interface IssuedAccessToken {
  access_token: string;
  token_type: 'Bearer';
  /** `exp - iat`, in seconds. */
  expires_in: number;
  /** Granted scopes, space-separated. */
  scope: string;
  authorization_details: AuthorizationDetail[];
  jti: string;
  exp: number;
  iat: number;
}

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. A space would split the `scope` claim. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

export async function issueAccessToken(input: IssueAccessTokenInput): Promise<IssuedAccessToken> {
  return signAccessToken(input.keyRing, planAccessToken(input));
}

/**
 * The claims of the token `issueAccessToken` would sign, computed synchronously (the store records the jti and
 * expiry inside its redemption transaction, and signing happens after that commits).
 */
export function planAccessToken(input: IssueAccessTokenInput): AccessTokenClaims {
  checkInput(input);
  const { keyRing, now, resource } = input;
  const iat = Math.floor(now.getTime() / 1000);
  let exp = iat + Math.min(input.ttl_seconds, keyRing.maxTokenTtlSeconds);
  if (input.task_expires_at != null) exp = Math.min(exp, Math.floor(input.task_expires_at.getTime() / 1000));
  if (exp <= iat) throw new PdpError('task_not_active', 'the task expires before a token could be used');

  const scopes = [...new Set(input.scopes)].sort();
  const detail: AuthorizationDetail = {
    type: input.integration,
    actions: scopes,
    ...(resource == null ? {} : { identifier: resource.id, resource_type: resource.type }),
  };
  return {
    iss: input.issuer,
    sub: input.agent_id,
    aud: input.audience ?? input.integration,
    client_id: input.caller_id,
    iat,
    exp,
    jti: randomBytes(16).toString('base64url'),
    scope: scopes.join(' '),
    authorization_details: [detail],
    task_id: input.task_id,
    decision_id: input.decision_id,
  };
}

/** Signs planned claims with the key ring's active key (`typ: at+jwt`, `kid`). */
export async function signAccessToken(keyRing: KeyRing, claims: AccessTokenClaims): Promise<IssuedAccessToken> {
  const { kid, alg, sign } = keyRing.signingKey;
  // A JWS in compact serialisation (RFC 7515 §7.1), signed through node:crypto: the same bytes jose's SignJWT
  // would produce (its tests verify every token with jose), at a third of the CPU of WebCrypto.
  const signingInput = `${base64url(JSON.stringify({ alg, typ: ACCESS_TOKEN_TYP, kid }))}.${base64url(JSON.stringify(claims))}`;
  const accessToken = `${signingInput}.${sign(Buffer.from(signingInput, 'ascii')).toString('base64url')}`;
  return {
    access_token: accessToken,
    token_type: 'Bearer',
    expires_in: claims.exp - claims.iat,
    scope: claims.scope,
    authorization_details: structuredClone(claims.authorization_details),
    jti: claims.jti,
    exp: claims.exp,
    iat: claims.iat,
  };
}

/** Misuse by the caller is a TypeError: these are checked upstream, so a bad value here is a bug. */
function checkInput(input: IssueAccessTokenInput): void {
  const name = (field: string) => `issueAccessToken: "${field}"`;
  if (typeof input?.keyRing?.signingKey?.kid !== 'string') throw new TypeError(`${name('keyRing')} must be a loaded key ring`);
  for (const field of ['issuer', 'agent_id', 'caller_id', 'integration', 'task_id', 'decision_id'] as const) {
    if (typeof input[field] !== 'string' || input[field] === '') throw new TypeError(`${name(field)} must be a non-empty string`);
  }
  if (input.audience !== undefined && (typeof input.audience !== 'string' || input.audience === '')) {
    throw new TypeError(`${name('audience')} must be a non-empty string`);
  }
  if (!Array.isArray(input.scopes) || input.scopes.length === 0 || !input.scopes.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))) {
    throw new TypeError(`${name('scopes')} must be a non-empty list of RFC 6749 scope tokens`);
  }
  const { resource } = input;
  if (resource != null && !(typeof resource.type === 'string' && resource.type !== '' && typeof resource.id === 'string' && resource.id !== '')) {
    throw new TypeError(`${name('resource')} must be { type, id } with non-empty strings`);
  }
  if (!Number.isInteger(input.ttl_seconds) || input.ttl_seconds <= 0) throw new TypeError(`${name('ttl_seconds')} must be a positive integer`);
  for (const field of ['now', 'task_expires_at'] as const) {
    const value = input[field];
    if (value == null && field === 'task_expires_at') continue;
    if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`${name(field)} must be a valid Date`);
  }
}

function base64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}
