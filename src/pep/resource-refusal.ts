/**
 * How a resource server answers a request it refuses: one table of codes, each with its HTTP status and RFC 6750
 * `error`, and the one function that writes the answer. Bodies are `{ error: { code, message } }` like the PDP's;
 * neither body nor header ever contains the presented token.
 */
import { TOKEN_VERIFICATION_ERRORS } from '../issuer/verification-error.js';

export const RESOURCE_REFUSALS = {
  /**
   * No bearer token: no `Authorization` header, or one of another scheme (`Basic`, `Digest`): a challenge without an
   * error code (RFC 6750 §3.1: the client did not know, or used an unsupported method).
   */
  token_missing: { status: 401, oauth_error: null },
  /** An `Authorization: Bearer` header that is not one token (`Bearer`, `Bearer a b`): 400 (RFC 6750 §3.1). */
  token_malformed: { status: 400, oauth_error: 'invalid_request' },
  /** Signature, claims and grant as `verifyAccessToken` judges them. */
  ...TOKEN_VERIFICATION_ERRORS,
  /** Introspection says the token is no longer active: revoked, or its task completed or expired. */
  token_inactive: { status: 401, oauth_error: 'invalid_token' },
  /** Introspection was required and the PDP could not be asked: the token was not judged, and is not accepted. */
  pdp_unavailable: { status: 503, oauth_error: null },
  /** Introspection was required and the PDP refused this server's request (e.g. its API key): not accepted. */
  pdp_error: { status: 503, oauth_error: null },
} as const;

export type ResourceRefusalCode = keyof typeof RESOURCE_REFUSALS;

/** The response methods the middleware uses; an express `Response` has them. */
export interface ResourceResponse {
  status(code: number): unknown;
  setHeader(name: string, value: string): unknown;
  json(body: unknown): unknown;
  locals: Record<string, unknown>;
}

/** Messages of 5xx refusals are not shown: they concern this server, not the caller's token. */
const UNAVAILABLE_MESSAGE = 'the access token could not be checked; nothing was allowed';

/** Writes the refusal: status, `WWW-Authenticate` for 401/403, and the JSON body. */
export function refuse(res: ResourceResponse, code: ResourceRefusalCode, message: string, challenge: { realm: string; scope?: string }): void {
  const { status, oauth_error: oauthError } = RESOURCE_REFUSALS[code];
  if (status === 401 || status === 403) {
    const params = [`realm="${quoted(challenge.realm)}"`];
    if (oauthError !== null) {
      params.push(`error="${oauthError}"`, `error_description="${quoted(message)}"`);
      if (oauthError === 'insufficient_scope' && challenge.scope !== undefined) params.push(`scope="${quoted(challenge.scope)}"`);
    }
    res.setHeader('www-authenticate', `Bearer ${params.join(', ')}`);
  }
  res.setHeader('cache-control', 'no-store');
  res.status(status);
  res.json({ error: { code, message: status >= 500 ? UNAVAILABLE_MESSAGE : message } });
}

/** RFC 6750 §3: these values are quoted-strings of printable ASCII without `"` and `\`. */
function quoted(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
}
