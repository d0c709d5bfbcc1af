/**
 * Verifies an agent-pdp access token for one request of a resource server: signature, header, standard
 * claims, then the grant itself (integration, scope, bound record). Used by resource servers and the PEP SDK,
 * so it imports only `jose` and its two siblings, which import nothing.
 *
 * Order of checks: `alg` allowlist (before any key lookup) → `kid` → signature → `typ` → `iss` → `aud` →
 * `nbf`/`exp` → `iat` not in the future → claim types → integration → scope → record.
 */
import { errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import { ACCESS_TOKEN_ALGS, ACCESS_TOKEN_TYP } from './token-claims.js';
import type { AccessTokenClaims, AuthorizationDetail, ResourceRef } from './token-claims.js';
import { TokenVerificationError } from './verification-error.js';

export interface VerifyAccessTokenOptions {
  /**
   * The issuer's public keys: `createRemoteJWKSet(new URL(jwks_uri))` in a resource server, or
   * `createLocalJWKSet(publicJwks(keyRing))` in-process. Required.
   */
  jwks: JWTVerifyGetKey;
  /** Expected `iss`, exactly the issuer's metadata `issuer`. Required. */
  issuer: string;
  /** Expected `aud`: this resource server's integration name or its configured audience. Required. */
  audience: string;
  /** The integration this request belongs to, matched against `authorization_details[].type`. Required. */
  integration: string;
  /** The one scope this request needs. Required. */
  scope: string;
  /**
   * The record this request touches. Required when the token is bound to a record; a bound token used
   * without naming one is refused. Default: none.
   */
  resource?: ResourceRef;
  /** Allowed clock skew in seconds for `exp`, `nbf` and `iat`. Default 5. */
  clockTolerance?: number;
  /** The time to judge expiry against. Default: now. */
  currentDate?: Date;
}

const REQUIRED_CLAIMS = [
  'iss', 'sub', 'aud', 'client_id', 'iat', 'exp', 'jti', 'scope', 'authorization_details', 'task_id', 'decision_id',
];

/** Verifies `token` for the request described by `options`; throws `TokenVerificationError` on refusal. */
export async function verifyAccessToken(token: string, options: VerifyAccessTokenOptions): Promise<AccessTokenClaims> {
  const tolerance = checkOptions(options);
  const claims = await verifySignedClaims(token, options, tolerance, options.audience);
  checkGrant(claims, options);
  return claims;
}

export type VerifyResourceTokenOptions = Pick<VerifyAccessTokenOptions, 'jwks' | 'issuer' | 'audience' | 'clockTolerance' | 'currentDate'>;

/**
 * Verifies `token` for a resource as a whole rather than for one request: every check of `verifyAccessToken` up to
 * and including expiry (signature, `typ`, `iss`, `aud`, time, claim types), and no grant. For a resource whose
 * requests are decided one by one elsewhere, such as an MCP endpoint whose tool calls each go to the PDP: the
 * token says who is calling and on which task, not what a request may do.
 */
export async function verifyResourceToken(token: string, options: VerifyResourceTokenOptions): Promise<AccessTokenClaims> {
  const tolerance = checkOptions(Object.assign({}, options, { integration: '*', scope: '*' }));
  return verifySignedClaims(token, options, tolerance, options.audience);
}

export type VerifyIssuedTokenOptions = Pick<VerifyAccessTokenOptions, 'jwks' | 'issuer' | 'clockTolerance' | 'currentDate'>;

/**
 * Verifies that `token` is a well-formed, unexpired access token of this issuer, for any audience and grant:
 * what introspection and revocation need before they look the token up. Resource servers use verifyAccessToken.
 */
export async function verifyIssuedToken(token: string, options: VerifyIssuedTokenOptions): Promise<AccessTokenClaims> {
  const tolerance = checkOptions(Object.assign({}, options, { audience: '*', integration: '*', scope: '*' }));
  return verifySignedClaims(token, options, tolerance, undefined);
}

async function verifySignedClaims(
  token: string,
  options: VerifyIssuedTokenOptions,
  tolerance: number,
  audience: string | undefined,
): Promise<AccessTokenClaims> {
  if (typeof token !== 'string' || token.length === 0) {
    throw new TokenVerificationError('token_invalid', 'no access token');
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, requireKnownKey(options.jwks), {
      algorithms: [...ACCESS_TOKEN_ALGS],
      typ: ACCESS_TOKEN_TYP,
      issuer: options.issuer,
      ...(audience === undefined ? {} : { audience }),
      clockTolerance: tolerance,
      requiredClaims: REQUIRED_CLAIMS,
      ...(options.currentDate === undefined ? {} : { currentDate: options.currentDate }),
    }));
  } catch (err) {
    throw refusal(err);
  }
  const claims = toClaims(payload);
  const now = Math.floor((options.currentDate ?? new Date()).getTime() / 1000);
  if (claims.iat > now + tolerance) throw new TokenVerificationError('token_not_yet_valid', '"iat" is in the future');
  return claims;
}

function checkOptions(options: VerifyAccessTokenOptions): number {
  if (typeof options?.jwks !== 'function') throw new TypeError('verifyAccessToken: "jwks" must be a key resolver');
  for (const name of ['issuer', 'audience', 'integration', 'scope'] as const) {
    if (typeof options[name] !== 'string' || options[name] === '') {
      throw new TypeError(`verifyAccessToken: "${name}" must be a non-empty string`);
    }
  }
  const { resource } = options;
  if (resource !== undefined && (typeof resource?.type !== 'string' || typeof resource.id !== 'string')) {
    throw new TypeError('verifyAccessToken: "resource" must be { type: string, id: string }');
  }
  const tolerance = options.clockTolerance ?? 5;
  if (!Number.isFinite(tolerance) || tolerance < 0) {
    throw new TypeError('verifyAccessToken: "clockTolerance" must be a non-negative number of seconds');
  }
  return tolerance;
}

/** Wraps the key resolver: a token must name its key, and a resolver that cannot answer is not the token's fault. */
function requireKnownKey(jwks: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    if (typeof header.kid !== 'string' || header.kid === '') {
      throw new TokenVerificationError('token_unknown_key', 'access token names no key ("kid")');
    }
    try {
      return await jwks(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
        throw new TokenVerificationError('token_unknown_key', 'access token is signed with a key the issuer does not publish');
      }
      if (err instanceof errors.JOSENotSupported) {
        throw new TokenVerificationError('token_invalid', 'access token "alg" is not usable with the issuer keys');
      }
      throw new TokenVerificationError('jwks_unavailable', 'the issuer public keys could not be fetched', { cause: err });
    }
  };
}

/** Maps a jose failure to a code. jose errors carry the decoded payload, so none is kept as `cause`. */
function refusal(err: unknown): TokenVerificationError {
  if (err instanceof TokenVerificationError) return err;
  if (err instanceof errors.JOSEAlgNotAllowed) return new TokenVerificationError('token_alg_not_allowed', 'access token "alg" is not allowed');
  if (err instanceof errors.JWTExpired) return new TokenVerificationError('token_expired', 'access token has expired');
  if (err instanceof errors.JWSSignatureVerificationFailed) return new TokenVerificationError('token_invalid', 'access token signature is invalid');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'typ': return new TokenVerificationError('token_wrong_type', 'token "typ" is not at+jwt');
      case 'iss': return new TokenVerificationError('token_wrong_issuer', 'access token is from another issuer');
      case 'aud': return new TokenVerificationError('token_wrong_audience', 'access token is for another audience');
      case 'nbf': return new TokenVerificationError('token_not_yet_valid', 'access token is not valid yet ("nbf")');
      default: return new TokenVerificationError('token_invalid', `access token claim "${safeName(err.claim)}" is missing or invalid`);
    }
  }
  return new TokenVerificationError('token_invalid', 'access token is malformed');
}

/** jose names the claim it checked; keep it only if it is one of ours, so nothing token-borne reaches a message. */
function safeName(claim: string): string {
  return [...REQUIRED_CLAIMS, 'nbf'].includes(claim) ? claim : 'unknown';
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function toClaims(payload: JWTPayload): AccessTokenClaims {
  const p = payload as Record<string, unknown>;
  const invalid = (claim: string) => new TokenVerificationError('token_invalid', `access token claim "${claim}" is missing or invalid`);
  for (const claim of ['iss', 'sub', 'aud', 'client_id', 'jti', 'scope', 'task_id', 'decision_id']) {
    if (!isString(p[claim])) throw invalid(claim);
  }
  if (typeof p.iat !== 'number' || typeof p.exp !== 'number') throw invalid('iat');
  const details = p.authorization_details;
  if (!Array.isArray(details) || !details.every(isDetail)) throw invalid('authorization_details');
  return payload as unknown as AccessTokenClaims;
}

function isDetail(v: unknown): v is AuthorizationDetail {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  return isString(d.type) && isStringArray(d.actions)
    && (d.identifier === undefined || typeof d.identifier === 'string')
    && (d.resource_type === undefined || typeof d.resource_type === 'string');
}

function checkGrant(claims: AccessTokenClaims, options: VerifyAccessTokenOptions): void {
  const { integration, scope, resource } = options;
  const forIntegration = claims.authorization_details.filter((d) => d.type === integration);
  if (forIntegration.length === 0) {
    throw new TokenVerificationError('token_wrong_integration', `access token grants nothing on integration "${integration}"`);
  }
  const covering = forIntegration.filter((d) => d.actions.includes(scope));
  if (covering.length === 0 || !claims.scope.split(' ').includes(scope)) {
    throw new TokenVerificationError('token_scope_insufficient', `access token does not grant scope "${scope}"`);
  }
  if (!covering.some((d) => coversResource(d, resource))) {
    throw new TokenVerificationError(
      'token_wrong_resource',
      resource === undefined ? 'access token is bound to a record and the request names none' : 'access token is bound to another record',
    );
  }
}

/** An unbound entry covers any record; a bound one only its own (same id, and same type when the token says). */
function coversResource(detail: AuthorizationDetail, resource: ResourceRef | undefined): boolean {
  if (detail.identifier === undefined) return true;
  if (resource === undefined) return false;
  return detail.identifier === resource.id && (detail.resource_type === undefined || detail.resource_type === resource.type);
}
