/**
 * One authorised call's exchange with its upstream, as an undici dispatch handler: the request goes out on the
 * upstream's pool, the answer's status and headers (filtered by the upstream) are written to the caller as they
 * come, its body streams back one chunk behind, and the last chunk is handed back, held, with the outcome: the
 * caller's answer is completed only after the call's `token.used` event is committed (proxy-server.ts).
 *
 * Why a dispatch handler rather than `pool.request()`: no body stream, async iterator, abort signal or async
 * resource per call; the upstream's chunks are written as they are parsed, and backpressure is undici's own pause
 * (`onData` answers false, `resume()` once the caller drained).
 *
 * - The status and headers are sent with the body when the whole answer came in the read that brought its headers
 *   (one write to the caller); otherwise they are flushed at once, before the body streams.
 * - A caller that goes away aborts the upstream request (its connection is freed): `client_closed`.
 * - A caller that stops reading for `body_timeout_ms` is cut, and the upstream request aborted: `client_stalled`.
 * - An answer beyond `maxResponseBytes` (announced or counted) is refused or cut: `upstream_response_too_large`.
 * - Anything thrown in here aborts the request through undici and ends as `upstream_unreachable`.
 * Every failure once the status was written is a cut (the caller never holds a complete answer).
 */
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ProxyRefusalCode } from './proxy-refusal.js';
import type { Upstream } from './upstream.js';

/** How the exchange ended. */
export type ExchangeResult =
  | {
      ok: true;
      status: number;
      /** Bytes of the answer's body received (all of it). */
      bytesOut: number;
      /** The answer's last chunk, not yet written: the caller's answer ends with it. */
      held: Buffer | undefined;
    }
  | {
      ok: false;
      /** The failure code of the call's audit event. */
      code: string;
      /** What the caller gets: a refusal (nothing was written yet) or a cut connection. */
      answer: ProxyRefusalCode | 'cut';
      /** The upstream's status, when it sent one. */
      status: number | null;
      bytesOut: number;
      /** undici's error, for a log line (never carries our headers). */
      error?: unknown;
    };

export interface ExchangeRequest {
  upstream: Upstream;
  path: string;
  method: string;
  headers: Record<string, string>;
  body: Buffer | Readable | null;
  /** True once the request body was cut for its size (the request then fails with request_too_large). */
  bodyTooLarge: () => boolean;
  maxResponseBytes: number;
}

/** Sends `request` upstream and relays the answer to `res`; resolves once the exchange ended (never rejects). */
export function exchange(res: ServerResponse, request: ExchangeRequest): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    const handler = new Exchange(res, request, resolve);
    try {
      request.upstream.pool.dispatch(
        { path: request.path, method: request.method as Dispatcher.HttpMethod, headers: request.headers, body: request.body },
        handler,
      );
    } catch (error) {
      handler.onError(error as Error);
    }
  });
}

const CLIENT_CLOSED = 'client_closed';

class Exchange implements Dispatcher.DispatchHandlers {
  readonly #res: ServerResponse;
  readonly #request: ExchangeRequest;
  readonly #done: (result: ExchangeResult) => void;
  #abort: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #status: number | null = null;
  #bytesOut = 0;
  #held: Buffer | undefined = undefined;
  #complete = false;
  #settled = false;
  #clientGone = false;
  #drainTimer: NodeJS.Timeout | undefined = undefined;
  readonly #onClose = (): void => {
    if (this.#settled || this.#res.writableFinished) return;
    this.#clientGone = true;
    this.#fail(CLIENT_CLOSED, 'cut');
  };
  readonly #onDrain = (): void => {
    clearTimeout(this.#drainTimer);
    this.#res.off('drain', this.#onDrain);
    if (!this.#settled) this.#resume?.();
  };

  constructor(res: ServerResponse, request: ExchangeRequest, done: (result: ExchangeResult) => void) {
    this.#res = res;
    this.#request = request;
    this.#done = done;
    res.once('close', this.#onClose);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.#settled) abort(new Error(CLIENT_CLOSED));
    else this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (this.#settled) return false;
    if (statusCode < 100 || statusCode > 599) {
      this.#fail('upstream_unreachable', 'upstream_unreachable', new Error(`the upstream answered status ${statusCode}, outside HTTP's`));
      return false;
    }
    if (statusCode < 200) return true; // informational: not passed on
    this.#status = statusCode;
    const { headers, contentLength } = this.#request.upstream.responseHeaders(rawHeaders);
    if (!(contentLength <= this.#request.maxResponseBytes)) {
      this.#fail('upstream_response_too_large', 'upstream_response_too_large');
      return false;
    }
    this.#res.writeHead(statusCode, headers);
    this.#resume = resume;
    // The body came whole in this read: the headers go with it, in one write. Otherwise they go now.
    process.nextTick(() => {
      if (!this.#complete && !this.#settled && !this.#res.destroyed) this.#res.flushHeaders();
    });
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#settled) return false;
    this.#bytesOut += chunk.length;
    if (this.#bytesOut > this.#request.maxResponseBytes) {
      this.#fail('upstream_response_too_large', 'cut');
      return false;
    }
    const previous = this.#held;
    this.#held = chunk;
    if (previous === undefined || this.#res.write(previous)) return true;
    // The caller is slower than the upstream: pause undici until it drained, for at most body_timeout_ms.
    this.#res.on('drain', this.#onDrain);
    this.#drainTimer = setTimeout(() => {
      this.#res.off('drain', this.#onDrain);
      if (!this.#settled) this.#fail(this.#res.destroyed ? CLIENT_CLOSED : 'client_stalled', 'cut');
    }, this.#request.upstream.settings.body_timeout_ms);
    return false;
  }

  onComplete(): void {
    if (this.#settled) return;
    this.#complete = true;
    this.#settle({ ok: true, status: this.#status ?? 0, bytesOut: this.#bytesOut, held: this.#held });
  }

  onError(err: Error): void {
    if (this.#settled) return;
    if (this.#clientGone) return this.#fail(CLIENT_CLOSED, 'cut');
    const code: ProxyRefusalCode = this.#request.bodyTooLarge() ? 'request_too_large' : isTimeout(err) ? 'upstream_timeout' : 'upstream_unreachable';
    this.#fail(code, this.#status === null ? code : 'cut', code === 'request_too_large' ? undefined : err);
  }

  #fail(code: string, answer: ProxyRefusalCode | 'cut', error?: unknown): void {
    if (this.#settled) return;
    this.#settle({ ok: false, code, answer, status: this.#status, bytesOut: this.#bytesOut, ...(error === undefined ? {} : { error }) });
    this.#abort?.(new Error(code)); // frees the upstream connection (undici calls onError: settled, ignored)
  }

  #settle(result: ExchangeResult): void {
    this.#settled = true;
    clearTimeout(this.#drainTimer);
    this.#res.off('close', this.#onClose);
    this.#res.off('drain', this.#onDrain);
    this.#done(result);
  }
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
}
