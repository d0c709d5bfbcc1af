/**
 * Reading a bearer token from an `Authorization` header (RFC 6750 §2.1), one way for every place that accepts our
 * tokens (the enforcement proxy, the resource-server middleware, the MCP resource server before the SDK's own check):
 *
 * - no header, an empty one, or another scheme (`Basic …`): `missing` (a challenge without an error code, §3.1);
 * - `Bearer` with nothing after it, with more than one token, with characters outside b64token, or several
 *   `Authorization` headers on one request (which one a hop would use is not ours to guess): `malformed`
 *   (`invalid_request`, 400);
 * - otherwise the token. The scheme is case-insensitive; spaces between scheme and token, and trailing ones, are
 *   tolerated.
 */
export type BearerHeader = { token: string } | { missing: true } | { malformed: true };

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * `value`: the header (Node's `req.headers.authorization`). `count`: how many `Authorization` headers the request
 * carried (Node keeps the first of several), e.g. from `authorizationHeaders(req.rawHeaders)`.
 */
export function readBearer(value: string | undefined, count = value === undefined ? 0 : 1): BearerHeader {
  if (value === undefined || value === '' || !/^bearer(\s|$)/i.test(value)) return count > 1 ? { malformed: true } : { missing: true };
  if (count > 1) return { malformed: true };
  const m = BEARER.exec(value);
  return m === null ? { malformed: true } : { token: m[1] as string };
}

/** How many `Authorization` headers a request carried (`rawHeaders`: name, value, name, value…). */
export function authorizationHeaders(rawHeaders: readonly string[]): number {
  let seen = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if ((rawHeaders[i] as string).toLowerCase() === 'authorization') seen++;
  return seen;
}
