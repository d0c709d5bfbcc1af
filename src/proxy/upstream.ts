/**
 * One fixed upstream of the proxy: its origin (never taken from a request), a keep-alive connection pool (undici),
 * the provider credential it injects, and which headers cross in each direction.
 *
 * Requests carry only the headers on an allowlist (content negotiation, conditional requests, `content-type`, the
 * upstream's own API-version header, and what the operator adds): never the agent's `Authorization`, cookies,
 * `Host`, `Forwarded`/`X-Forwarded-*`, method overrides or hop-by-hop headers. Responses keep the upstream's status
 * and headers (rate limits, `Retry-After`, errors, pagination) except hop-by-hop headers (and those the upstream's
 * `Connection` names), `Set-Cookie`, and the headers describing the provider credential.
 *
 * The credential is read from an environment variable at start, or from a file, re-read when the file changes
 * (checked at most once a second): rotating it is replacing the file. It is never logged or returned.
 */
import { readFileSync, statSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { Pool } from 'undici';
import type { ProxyUpstreamConfig } from '../config/config-types.js';

/** An upstream's settings are its config entry (`proxy.upstreams[]`, docs/configuration.md). */
export type UpstreamSettings = ProxyUpstreamConfig;

/** Request headers a proxied call may carry to any upstream (besides the credential the proxy sets). */
const FORWARDED_REQUEST_HEADERS = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'content-type',
  'content-encoding',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'range',
  'user-agent',
  'x-github-api-version',
]);

/** Never forwarded, whatever an operator adds: the caller's credentials, its idea of the host, hop-by-hop headers. */
const NEVER_FORWARDED = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'host',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
  // Answered by the proxy itself (100-continue once the call is admitted); never passed on.
  'expect',
];

/** Response headers never passed back: hop-by-hop (RFC 9110 §7.6.1), cookies, and what describes the credential. */
const DROPPED_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'set-cookie',
  'set-cookie2',
  // What the provider credential is and may do: the agent has no business knowing it.
  'x-oauth-scopes',
  'x-accepted-oauth-scopes',
  'x-oauth-client-id',
  'github-authentication-token-expiration',
]);

export class Upstream {
  readonly settings: UpstreamSettings;
  readonly pool: Pool;
  readonly #forward: ReadonlySet<string>;
  #fileValue: string | null = null;
  #fileStamp = '';
  #fileCheckedAt = 0;

  constructor(settings: UpstreamSettings) {
    this.settings = settings;
    const forward = new Set([...FORWARDED_REQUEST_HEADERS, ...settings.forward_headers.map((h) => h.toLowerCase())]);
    forward.delete(settings.credential.header.toLowerCase());
    for (const never of NEVER_FORWARDED) forward.delete(never);
    this.#forward = forward;
    this.pool = new Pool(settings.origin, {
      connections: settings.connections,
      connect: { timeout: settings.connect_timeout_ms },
      headersTimeout: settings.headers_timeout_ms,
      bodyTimeout: settings.body_timeout_ms,
      keepAliveTimeout: 30_000,
    });
  }

  /** The header carrying the provider credential, or null when it cannot be read (the call is then refused). */
  credential(): { name: string; value: string } | null {
    const { header, prefix, value, file } = this.settings.credential;
    const secret = file === null ? value : this.#readFile(file);
    return secret === null || secret === '' ? null : { name: header.toLowerCase(), value: `${prefix}${secret}` };
  }

  /** The headers to send upstream: the allowlisted ones of the call, and the credential. */
  requestHeaders(incoming: IncomingHttpHeaders, credential: { name: string; value: string }, body: { length: number } | 'stream' | null): Record<string, string> {
    const out: Record<string, string> = {};
    // Headers the caller names in `Connection` are hop-by-hop for this call (RFC 9110 §7.6.1): not forwarded.
    const named = incoming.connection === undefined ? undefined : new Set(incoming.connection.toLowerCase().split(',').map((t) => t.trim()));
    for (const name in incoming) {
      const value = incoming[name];
      if (value === undefined || !this.#forward.has(name) || named?.has(name) === true) continue;
      out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    if (body !== null && body !== 'stream') out['content-length'] = String(body.length);
    else if (body === 'stream' && incoming['content-length'] !== undefined) out['content-length'] = incoming['content-length'];
    out[credential.name] = credential.value;
    return out;
  }

  /**
   * The upstream's response headers as they go back to the caller, from undici's raw list (name, value, ...):
   * a flat list for `writeHead` (names as the upstream spelled them, values byte for byte: latin1 both ways), and
   * the announced `content-length` (0 when absent, NaN when unreadable).
   */
  responseHeaders(raw: readonly Buffer[]): { headers: string[]; contentLength: number } {
    const names: string[] = new Array(raw.length >> 1);
    let named: Set<string> | undefined;
    let contentLength = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString('latin1').toLowerCase();
      names[i >> 1] = name;
      if (name === 'connection') {
        named ??= new Set();
        for (const token of (raw[i + 1] as Buffer).toString('latin1').toLowerCase().split(',')) named.add(token.trim());
      } else if (name === 'content-length') {
        contentLength = Number((raw[i + 1] as Buffer).toString('latin1'));
      }
    }
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = names[i >> 1] as string;
      if (DROPPED_RESPONSE_HEADERS.has(name) || named?.has(name) === true) continue;
      out.push(name, (raw[i + 1] as Buffer).toString('latin1'));
    }
    return { headers: out, contentLength };
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  #readFile(file: string): string | null {
    const now = Date.now();
    if (now - this.#fileCheckedAt < 1000 && this.#fileValue !== null) return this.#fileValue;
    this.#fileCheckedAt = now;
    try {
      const st = statSync(file);
      const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (stamp !== this.#fileStamp) {
        this.#fileValue = readFileSync(file, 'utf8').trim();
        this.#fileStamp = stamp;
      }
    } catch {
      this.#fileValue = null;
      this.#fileStamp = '';
    }
    return this.#fileValue;
  }
}
