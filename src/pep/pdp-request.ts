/**
 * One JSON exchange with the PDP: a timeout per attempt (`AbortSignal.timeout`), bounded retries with backoff
 * only where repeating cannot do harm, and every failure turned into a `PepError`. Nothing here decides what a
 * failure means for the tool call; the callers (client, guard, middleware) all fail closed on any throw.
 *
 * Retry rules, by the call's `retry`:
 * - `safe` (decide, introspect, metadata: no side effect a repeat could double): network error, timeout or 503.
 * - `unsent` (redeem, register, complete): only when the request provably never left, i.e. the connection
 *   could not be opened. Once it may have reached the server, a second attempt is not made: a redemption can
 *   succeed only once, and a token minted by a lost answer is as good as none.
 */
import { PepError } from './pep-error.js';

export interface PdpTransport {
  /** Base URL without a trailing slash. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` on calls that need it. */
  apiKey: string;
  timeoutMs: number;
  maxAttempts: number;
  retryDelayMs: number;
  fetch: typeof fetch;
}

export interface PdpCall {
  method: 'GET' | 'POST';
  path: string;
  /** Names the call in error messages (`decide`, `redeem`, ...). */
  what: string;
  body?: unknown;
  /** Send the API key. Public discovery documents do not need it. */
  authenticate: boolean;
  /** Statuses that carry the answer. */
  ok: readonly number[];
  retry: 'safe' | 'unsent';
  /** Extra request headers (e.g. `Idempotency-Key`). */
  headers?: Readonly<Record<string, string>>;
  /**
   * The caller's own cancellation. An abort is not a failure of the PDP: the signal's reason is thrown as it is,
   * and no further attempt is made.
   */
  signal?: AbortSignal;
}

/** An `ok` answer: its parsed JSON body and, when the PDP sent one, its `Retry-After` in seconds. */
export interface PdpAnswer {
  body: unknown;
  retryAfterSeconds: number | undefined;
}

/** The connection was never opened, so the request cannot have reached the server. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

type Attempt =
  | { kind: 'answer'; status: number; body: unknown; retryAfterSeconds: number | undefined }
  | { kind: 'network'; error: unknown; sent: boolean };

/** Performs `call`; resolves with the parsed JSON body of an `ok` answer, throws `PepError` otherwise. */
export async function pdpRequest(t: PdpTransport, call: PdpCall): Promise<unknown> {
  return (await pdpExchange(t, call)).body;
}

/** As `pdpRequest`, with the answer's `Retry-After` (a poll honours it). */
export async function pdpExchange(t: PdpTransport, call: PdpCall): Promise<PdpAnswer> {
  for (let attempt = 1; ; attempt++) {
    call.signal?.throwIfAborted();
    const result = await once(t, call);
    if (result.kind === 'network' && call.signal?.aborted) throw call.signal.reason;
    const canRetry = attempt < t.maxAttempts;
    if (result.kind === 'network') {
      if (canRetry && (call.retry === 'safe' || !result.sent)) {
        await backoff(t.retryDelayMs, attempt);
        continue;
      }
      throw new PepError('pdp_unavailable', `the PDP at ${origin(t)} did not answer ${call.what}: ${describeNetworkError(result.error, t.timeoutMs)}`, {
        cause: result.error,
      });
    }
    if (call.ok.includes(result.status)) {
      if (result.body === undefined) throw new PepError('pdp_error', `the PDP's answer to ${call.what} is not JSON`, { status: result.status });
      return { body: result.body, retryAfterSeconds: result.retryAfterSeconds };
    }
    if (result.status === 503 && call.retry === 'safe' && canRetry) {
      await backoff(t.retryDelayMs, attempt);
      continue;
    }
    throw refusal(call.what, result.status, result.body);
  }
}

async function once(t: PdpTransport, call: PdpCall): Promise<Attempt> {
  const headers: Record<string, string> = { ...call.headers, accept: 'application/json' };
  if (call.authenticate) headers['authorization'] = `Bearer ${t.apiKey}`;
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  try {
    const response = await t.fetch(`${t.baseUrl}${call.path}`, {
      method: call.method,
      headers,
      ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
      // A redirect would carry the API key elsewhere; the PDP never redirects, so a 3xx is simply not an answer.
      redirect: 'manual',
      signal: call.signal === undefined ? AbortSignal.timeout(t.timeoutMs) : AbortSignal.any([AbortSignal.timeout(t.timeoutMs), call.signal]),
    });
    const text = await response.text();
    return { kind: 'answer', status: response.status, body: parseJson(text), retryAfterSeconds: retryAfter(response.headers.get('retry-after')) };
  } catch (error) {
    return { kind: 'network', error, sent: !NOT_SENT.has(networkCode(error) ?? '') };
  }
}

/**
 * `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP date, as seconds from now (0 for a date past).
 * Anything else is ignored.
 */
function retryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^[0-9]{1,9}$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, (at - Date.now()) / 1000);
}

function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * A PDP error answer: `{ error: { code, message } }`, or an OAuth endpoint's RFC 6749 §5.2 error with ours in
 * `pdp_error`. 503 means it could not decide: unavailable, not refused.
 */
function refusal(what: string, status: number, body: unknown): PepError {
  const answer = body as { error?: { code?: unknown; message?: unknown } | string; pdp_error?: { code?: unknown; message?: unknown } } | undefined;
  const error = typeof answer?.error === 'object' ? answer.error : answer?.pdp_error;
  const pdpCode = typeof error?.code === 'string' ? error.code.slice(0, 64) : undefined;
  const message = typeof error?.message === 'string' ? error.message.slice(0, 300) : undefined;
  const detail = pdpCode === undefined ? `HTTP ${status}` : `${status} ${pdpCode}${message ? `: ${message}` : ''}`;
  const code = status === 503 ? 'pdp_unavailable' : 'pdp_error';
  const lead = status === 503 ? `the PDP could not answer ${what}` : `the PDP refused ${what}`;
  return new PepError(code, `${lead} (${detail})`, { status, ...(pdpCode === undefined ? {} : { pdpCode }) });
}

function networkCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

function describeNetworkError(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: unknown } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  const code = networkCode(error);
  if (code === 'ECONNREFUSED') return 'connection refused';
  return code === undefined ? 'network error' : `network error (${code})`;
}

/** The base URL without any userinfo, for messages. */
function origin(t: PdpTransport): string {
  try {
    return new URL(t.baseUrl).origin;
  } catch {
    return '(invalid URL)';
  }
}

/** Exponential backoff with equal jitter: base·2^(n-1), half fixed and half random. */
function backoff(baseMs: number, attempt: number): Promise<void> {
  const full = baseMs * 2 ** (attempt - 1);
  const delay = full / 2 + Math.random() * (full / 2);
  return new Promise((resolve) => setTimeout(resolve, delay));
}
