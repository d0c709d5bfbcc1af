/*
 * The console session: an API key exchanged for an HttpOnly cookie (POST /console/session), resumed on load
 * (GET /console/session), ended by the sign-out button (POST /console/session/end). The page keeps only what the
 * server answered (caller id, roles, CSRF token) in memory; the key itself is dropped once sent.
 */
import { currentSession, postJson, setCsrfToken } from './api.js';
import type { SessionV1 } from './wire.js';

let session: SessionV1 | null = null;

export function current(): SessionV1 | null {
  return session;
}

export function roles(): readonly string[] {
  return session?.roles ?? [];
}

function adopt(value: SessionV1 | null): SessionV1 | null {
  session = value !== null && typeof value.caller_id === 'string' && Array.isArray(value.roles) && typeof value.csrf_token === 'string' ? value : null;
  setCsrfToken(session?.csrf_token ?? null);
  return session;
}

/** The session of the current cookie, or null. */
export async function resume(): Promise<SessionV1 | null> {
  return adopt(await currentSession<SessionV1>());
}

/** Throws ApiError (401 unauthenticated for a bad key, 403 forbidden for a caller with no console role). */
export async function signIn(apiKey: string): Promise<SessionV1> {
  const answer = await postJson<SessionV1>('/console/session', {}, { ignore401: true, apiKey });
  const value = adopt(answer);
  if (value === null) throw new Error('the PDP answered the sign-in without a session');
  return value;
}

/** Ends the session on the server (best effort) and in the page. */
export async function signOut(): Promise<void> {
  try {
    await postJson('/console/session/end', {}, { ignore401: true });
  } finally {
    adopt(null);
  }
}

/** Forgets the session in the page (it expired on the server). */
export function drop(): void {
  adopt(null);
}
