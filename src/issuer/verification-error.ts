/**
 * Why an access token was refused: one error type with a closed union of codes, and one table saying how
 * each code answers a client (RFC 6750 §3.1). Imports nothing, like `verify-access-token.ts` which throws it.
 *
 * Messages name the failed check, never the token, its signature or a claim value taken from it.
 */

/** Code → HTTP status and RFC 6750 `error` value for the `WWW-Authenticate` challenge. */
export const TOKEN_VERIFICATION_ERRORS = {
  /** Malformed, bad signature, missing or ill-typed claim. */
  token_invalid: { status: 401, oauth_error: 'invalid_token' },
  /** `exp` is past, beyond the clock tolerance. */
  token_expired: { status: 401, oauth_error: 'invalid_token' },
  /** `nbf` or `iat` is in the future, beyond the clock tolerance. */
  token_not_yet_valid: { status: 401, oauth_error: 'invalid_token' },
  /** The `typ` header is not `at+jwt` (an ID token or another JWT presented as an access token). */
  token_wrong_type: { status: 401, oauth_error: 'invalid_token' },
  token_wrong_issuer: { status: 401, oauth_error: 'invalid_token' },
  token_wrong_audience: { status: 401, oauth_error: 'invalid_token' },
  /** `alg` is not one of `ACCESS_TOKEN_ALGS` (`none`, HMAC, RSA...). */
  token_alg_not_allowed: { status: 401, oauth_error: 'invalid_token' },
  /** No `kid`, or a `kid` the issuer does not publish (never issued, or retired and removed). */
  token_unknown_key: { status: 401, oauth_error: 'invalid_token' },
  /** The token does not grant the scope the request needs. */
  token_scope_insufficient: { status: 403, oauth_error: 'insufficient_scope' },
  /** The token grants nothing on this integration. */
  token_wrong_integration: { status: 403, oauth_error: 'insufficient_scope' },
  /** The token is bound to another record, or to a record while the request names none. */
  token_wrong_resource: { status: 403, oauth_error: 'insufficient_scope' },
  /** The issuer's JWKS could not be fetched or used: the token was not judged, so not its fault. */
  jwks_unavailable: { status: 503, oauth_error: null },
} as const;

export type TokenVerificationErrorCode = keyof typeof TOKEN_VERIFICATION_ERRORS;

export class TokenVerificationError extends Error {
  override readonly name = 'TokenVerificationError';
  readonly code: TokenVerificationErrorCode;
  /** 401, 403, or 503 for `jwks_unavailable`. */
  readonly status: 401 | 403 | 503;
  /** RFC 6750 `error` for the `WWW-Authenticate` header; null when the token was not at fault. */
  readonly oauthError: 'invalid_token' | 'insufficient_scope' | null;
  /** Whether `message` may be shown to the caller: true except for `jwks_unavailable`. */
  readonly expose: boolean;

  constructor(code: TokenVerificationErrorCode, message: string, options: { cause?: unknown } = {}) {
    const entry = TOKEN_VERIFICATION_ERRORS[code];
    if (entry === undefined) throw new TypeError(`unknown TokenVerificationError code: ${String(code)}`);
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = entry.status;
    this.oauthError = entry.oauth_error;
    this.expose = entry.status < 500;
  }
}

export function isTokenVerificationError(err: unknown): err is TokenVerificationError {
  return err instanceof TokenVerificationError;
}
