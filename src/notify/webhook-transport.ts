/**
 * One POST of a webhook: over node:http(s) with one keep-alive agent per protocol (or an injected fetch), with a
 * timeout that covers the whole exchange, redirects not followed, the response body drained and discarded. The
 * outcome is the receiver's status or a failure in the transport's own words: never the URL (a Slack webhook URL
 * is a secret), never an error message from below (it may name the URL), never the response body.
 */
import * as http from 'node:http';
import * as https from 'node:https';

/** The subset of `fetch` the transport uses (the global `fetch` fits). It must honour `signal`. */
export type WebhookFetch = (
  url: string,
  init: { method: 'POST'; headers: Record<string, string>; body: string; signal: AbortSignal },
) => Promise<{ status: number; body?: { cancel(): Promise<void> } | null }>;

/** The receiver answered (any status), or the POST failed before it did. */
export type PostResult = { status: number } | { error: string };

export interface WebhookTransportOptions {
  /** One POST's limit, connection to the end of the response. */
  timeoutMs: number;
  /** Sockets per agent (the worker's concurrency). */
  maxSockets: number;
  /** Another client instead of node:http(s). Default: none. */
  fetch?: WebhookFetch;
}

export class WebhookTransport {
  readonly #timeoutMs: number;
  readonly #fetch: WebhookFetch | undefined;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;

  constructor(options: WebhookTransportOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#fetch = options.fetch;
    this.#httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.#httpsAgent = new https.Agent({ keepAlive: true, maxSockets: options.maxSockets });
  }

  /** POSTs `body`; resolves (never rejects) with the status or a failure described without the URL. */
  async post(url: string, headers: Record<string, string>, body: string): Promise<PostResult> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return { error: 'the destination URL is not valid' };
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') return { error: 'the destination URL is not http(s)' };
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.#timeoutMs);
    try {
      if (this.#fetch !== undefined) {
        const response = await this.#fetch(url, { method: 'POST', headers, body, signal: controller.signal });
        await response.body?.cancel().catch(() => undefined);
        return { status: response.status };
      }
      return { status: await this.#request(target, headers, body, controller.signal) };
    } catch (err) {
      if (timedOut) return { error: `timeout after ${this.#timeoutMs} ms` };
      return { error: `connection failed (${networkCode(err)})` };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the pooled sockets. */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  /** Resolves with the status once the response body is drained (or the exchange ends after the status line). */
  #request(target: URL, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<number> {
    const secure = target.protocol === 'https:';
    const payload = Buffer.from(body, 'utf8');
    return new Promise<number>((resolve, reject) => {
      let status: number | undefined;
      const settle = (err: Error) => (status === undefined ? reject(err) : resolve(status));
      const req = (secure ? https : http).request(target, {
        method: 'POST',
        agent: secure ? this.#httpsAgent : this.#httpAgent,
        headers: { ...headers, 'content-length': String(payload.length) },
        signal,
      });
      req.on('response', (res) => {
        status = res.statusCode ?? 0;
        res.on('end', () => resolve(status as number));
        res.on('error', settle);
        res.resume(); // drain and discard: the socket goes back to the pool
      });
      // An abort or a broken socket after the status line still counts as the receiver's answer.
      req.on('error', settle);
      req.on('close', () => settle(new Error('socket closed')));
      req.end(payload);
    });
  }
}

/** A network error's code (`ECONNREFUSED`, `ECONNRESET`), never its message (which may name the host or URL). */
function networkCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e !== null && typeof e === 'object' && depth < 4; e = (e as { cause?: unknown }).cause, depth += 1) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)) return code;
  }
  return 'network error';
}
