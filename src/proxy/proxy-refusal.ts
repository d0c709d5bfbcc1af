/**
 * How the proxy answers a call it does not forward, or one whose upstream failed: one table of codes, each with its
 * HTTP status and RFC 6750 `error`, and the one function that writes the answer. Bodies are
 * `{ error: { code, message, field? } }` like the PDP's; nothing in them comes from the token, the credential or the
 * upstream's internals.
 */
import type { ServerResponse } from 'node:http';
import { TOKEN_VERIFICATION_ERRORS } from '../issuer/verification-error.js';

export const PROXY_REFUSALS = {
  /** No `Authorization: Bearer` header: a challenge without an error code (RFC 6750 §3.1). */
  token_missing: { status: 401, oauth_error: null },
  /** `Authorization: Bearer` with no token, several tokens, characters outside b64token, or several such headers. */
  token_malformed: { status: 400, oauth_error: 'invalid_request' },
  /** Signature, header, issuer, audience, expiry, grant: as the issuer's verification helper judges them. */
  ...TOKEN_VERIFICATION_ERRORS,
  /** The token was revoked: by its caller, or because its task completed or expired. */
  token_revoked: { status: 401, oauth_error: 'invalid_token' },
  /** The path is not in canonical form (`..`, `.`, an encoded `/` or `\`, `//`, a control character). */
  path_not_canonical: { status: 400, oauth_error: null },
  /** A query or body field the record is read from appears more than once. */
  ambiguous_request: { status: 400, oauth_error: null },
  /** The record of the call could not be read: its query or body field is absent. */
  record_missing: { status: 400, oauth_error: null },
  /** The body the record is read from is not a form or a JSON object. */
  body_unreadable: { status: 400, oauth_error: null },
  /** The request body is larger than `proxy.max_request_bytes`. */
  request_too_large: { status: 413, oauth_error: null },
  /**
   * A request with a body (any method but GET, HEAD, OPTIONS) that does not announce its length: `Transfer-Encoding`
   * instead of `Content-Length`. Its size could only be judged while it streamed, once the upstream had part of it.
   */
  length_required: { status: 411, oauth_error: null },
  /** No endpoint of the integration's map matches the method and path: refused by default. */
  endpoint_not_mapped: { status: 403, oauth_error: null },
  /** The first path segment names no upstream of this proxy. */
  integration_unknown: { status: 404, oauth_error: null },
  /** The upstream refused the connection, reset it, or could not be resolved. */
  upstream_unreachable: { status: 502, oauth_error: null },
  /** The upstream's response is larger than `max_response_bytes`. */
  upstream_response_too_large: { status: 502, oauth_error: null },
  /** The upstream sent no response headers in time. */
  upstream_timeout: { status: 504, oauth_error: null },
  /** The revocation list is older than its bound (the store could not be read): no token is accepted. */
  revocation_unknown: { status: 503, oauth_error: null },
  /** The call's audit event could not be committed: nothing is forwarded without its evidence. */
  audit_unavailable: { status: 503, oauth_error: null },
  /** The provider credential could not be read: nothing is forwarded without it. */
  credential_unavailable: { status: 503, oauth_error: null },
} as const;

export type ProxyRefusalCode = keyof typeof PROXY_REFUSALS;

/** Messages of 5xx answers are generic: they concern the proxy or the upstream, not the caller. */
const UNAVAILABLE = 'the call could not be completed; nothing was forwarded on your behalf beyond what the upstream answered';

/**
 * Writes the refusal: status, `WWW-Authenticate` for 401/403 token refusals (as the resource-server middleware does), `Cache-Control: no-store`, and the JSON
 * body. `field` names the offending part of the request (`path`, `query.channel`, `body.channel`).
 */
export function writeRefusal(res: ServerResponse, code: ProxyRefusalCode, message: string, options: { realm: string; scope?: string; field?: string }): void {
  const { status, oauth_error: oauthError } = PROXY_REFUSALS[code];
  // A challenge on 401 and 403 only (RFC 6750 §3): a malformed request (400 invalid_request) carries its code in the body.
  if (code === 'token_missing' || (oauthError !== null && status !== 400)) {
    const params = [`realm="${quoted(options.realm)}"`];
    if (oauthError !== null) {
      params.push(`error="${oauthError}"`, `error_description="${quoted(message)}"`);
      if (oauthError === 'insufficient_scope' && options.scope !== undefined) params.push(`scope="${quoted(options.scope)}"`);
    }
    res.setHeader('www-authenticate', `Bearer ${params.join(', ')}`);
  }
  const body = JSON.stringify({ error: { code, message: status >= 500 ? UNAVAILABLE : message, ...(options.field === undefined ? {} : { field: options.field }) } });
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** RFC 6750 §3: these values are quoted-strings of printable ASCII without `"` and `\`. */
function quoted(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
}
