/*
 * Every call the console makes to the PDP: same-origin fetch with the session cookie (`credentials: 'same-origin'`),
 * JSON in and out, `X-CSRF-Token` on every POST. The CSRF token lives in this module's memory only (never
 * localStorage): a reload gets it again from GET /console/session. A 401 from any call but the sign-in itself ends
 * the session in the UI (the handler set by session.ts shows the sign-in form with "session expired").
 * Errors become ApiError with the API's code and message, shown as text.
 */
import type { ErrorBodyV1 } from './wire.js';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ReadonlyArray<{ path: string; message: string }>;

  constructor(status: number, code: string, message: string, details: ReadonlyArray<{ path: string; message: string }> = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** `code: message (path message; ...)`, for the status area. */
  describe(): string {
    const details = this.details.map((d) => `${d.path} ${d.message}`).join('; ');
    return `${this.code}: ${this.message}${details === '' ? '' : ` (${details})`}`;
  }
}

let csrfToken: string | null = null;
let onUnauthorized: (() => void) | null = null;
let onActivity: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called on a 401 from any API call (the session expired, or was ended elsewhere). */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

let onSessionChanged: (() => void) | undefined;

/**
 * Called on a 403 csrf_failed: the cookie now holds another session than this page's (the browser signed in again in
 * another tab), whose token the page does not know.
 */
export function setSessionChangedHandler(handler: () => void): void {
  onSessionChanged = handler;
}

/** Called on every answer of the PDP but a 401: the session's idle clock restarted on the server. */
export function setActivityHandler(handler: () => void): void {
  onActivity = handler;
}

export type Query = Readonly<Record<string, string | number | undefined | null>>;

/** `path?query`, the query from URLSearchParams with empty values left out. */
export function urlOf(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const q = params.toString();
  return q === '' ? path : `${path}?${q}`;
}

/** `/v1/agents/{id}`-style paths: each dynamic segment encoded. */
export function pathOf(...segments: string[]): string {
  return segments.map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join('/');
}

export async function getJson<T>(path: string, query?: Query): Promise<T> {
  const res = await send('GET', urlOf(path, query));
  return (await res.json()) as T;
}

/**
 * `apiKey`: sent as `Authorization: Bearer` instead of the cookie (sign-in only, where the key is exchanged for the
 * session); the key goes nowhere else and is not kept.
 */
export async function postJson<T>(path: string, body: unknown, options: { ignore401?: boolean; apiKey?: string } = {}): Promise<T | null> {
  const res = await send('POST', path, body, options.ignore401 === true, options.apiKey);
  if (res.status === 204) return null;
  return (await res.json()) as T;
}

/** A POST whose answer is read as a stream (the NDJSON of POST /v1/audit/verify). */
export async function postStream(path: string, body: unknown): Promise<Response> {
  return send('POST', path, body);
}

/** GET /console/session: the session of the current cookie, or null (no 401 handling: this is how a page starts). */
export async function currentSession<T>(): Promise<T | null> {
  const res = await fetch('/console/session', { method: 'GET', credentials: 'same-origin', headers: { accept: 'application/json' }, cache: 'no-store' });
  if (res.status === 401) return null;
  if (!res.ok) throw await errorOf(res);
  return (await res.json()) as T;
}

async function send(method: 'GET' | 'POST', url: string, body?: unknown, ignore401 = false, apiKey?: string): Promise<Response> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (apiKey !== undefined) headers['authorization'] = `Bearer ${apiKey}`;
  const init: RequestInit = { method, credentials: 'same-origin', headers, cache: 'no-store' };
  // Every request names the session the page belongs to (a read too: the server then refuses one from a page whose
  // session the cookie no longer holds).
  if (csrfToken !== null && apiKey === undefined) headers['x-csrf-token'] = csrfToken;
  if (method === 'POST') {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, 'network_error', `the PDP did not answer (${err instanceof Error ? err.message : 'network error'})`);
  }
  if (res.status !== 401) onActivity?.();
  if (res.ok) return res;
  const error = await errorOf(res);
  if (res.status === 401 && !ignore401) onUnauthorized?.();
  if (res.status === 403 && error.code === 'csrf_failed' && apiKey === undefined) onSessionChanged?.();
  throw error;
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const error = (body as Partial<ErrorBodyV1> | undefined)?.error;
  if (error !== undefined && typeof error.code === 'string' && typeof error.message === 'string') {
    const details = Array.isArray(error.details) ? error.details.filter((d) => typeof d?.path === 'string' && typeof d?.message === 'string') : [];
    return new ApiError(res.status, error.code, error.message, details);
  }
  return new ApiError(res.status, `http_${res.status}`, res.statusText || 'the request failed');
}
