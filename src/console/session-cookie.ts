/**
 * The console's session cookie: its name, its attributes, and reading it from a `Cookie` header. The value is the
 * session id (43 base64url characters, 256 random bits); nothing else is in it.
 */

/** With `Secure`, the `__Host-` prefix: the browser then refuses it unless Secure, Path=/ and no Domain. */
export function sessionCookieName(secure: boolean): string {
  return secure ? '__Host-agentpdp_console' : 'agentpdp_console';
}

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/**
 * `Set-Cookie` for a new session: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
 * Path=/ (the console calls the API under /v1), Secure when served over TLS. Max-Age is the session's absolute end;
 * the idle timeout is the server's to enforce.
 */
export function setSessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${sessionCookieName(secure)}=${id}; Path=/; Max-Age=${maxAgeSeconds}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** `Set-Cookie` that deletes it (sign-out, a dead session). */
export function clearSessionCookie(secure: boolean): string {
  return `${sessionCookieName(secure)}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/**
 * The session id a `Cookie` header carries, or undefined: none, or one that is not a well-formed id. Two cookies of
 * that name (a cookie tossed in by a sibling subdomain beside ours) are refused as none: which one is ours is unknown.
 */
export function sessionIdOf(header: string | undefined, secure: boolean): string | undefined {
  if (header === undefined) return undefined;
  const name = sessionCookieName(secure);
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    if (found !== undefined) return undefined;
    found = part.slice(eq + 1).trim();
  }
  return found !== undefined && SESSION_ID.test(found) ? found : undefined;
}
