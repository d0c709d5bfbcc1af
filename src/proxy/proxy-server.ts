/**
 * The proxy's request handler: one proxied call, from the socket to the upstream's last byte.
 *
 *   /<integration>/<upstream path>?<query>
 *     → the integration's upstream (fixed origin) → the bearer token admitted (ours, audience, exp, not revoked)
 *     → method + path matched against the integration's endpoint map (canonical paths only) → the record read
 *       (path, query or body field) → the grant checked (scope, record) → forwarded with the provider credential
 *       → the response streamed back; its last chunk is held until the call's `token.used` event is committed.
 *
 * A call refused after its token was admitted is audited too (outcome `refused`, with the code) before the refusal
 * is sent; a call whose token is not ours has no token to audit (metrics only). Nothing reaches the upstream before
 * every check passed. No token, credential, query or body ever reaches a log line or an event.
 */
import { Readable } from 'node:stream';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AccessTokenClaims, ResourceRef } from '../issuer/token-claims.js';
import type { CompiledEndpoint, PolicySet } from '../policy/policy-types.js';
import type { TokenUseInput } from '../store/index.js';
import { PROXY_REFUSALS, writeRefusal, type ProxyRefusalCode } from './proxy-refusal.js';
import { matchTarget, resolveRecord } from './request-target.js';
import type { TokenGate } from './token-gate.js';
import type { Upstream } from './upstream.js';

export type ProxyOutcome = 'forwarded' | 'refused' | 'failed';

/** Counts what the proxy did (src/server/metrics.ts implements it). */
export interface ProxyObserver {
  proxied(integration: string, outcome: ProxyOutcome, code: string, seconds: number): void;
}

export interface ProxyHandlerOptions {
  /** By integration id: the first path segment of a call. */
  upstreams: ReadonlyMap<string, Upstream>;
  gate: TokenGate;
  /** The policy in force: its endpoint maps and scope implications (swapped whole on reload). */
  policy: () => PolicySet | undefined;
  /** The `aud` this integration's tokens carry (as the issuer sets it). */
  audienceFor: (integration: string) => string;
  store: { recordTokenUse(input: TokenUseInput): Promise<void> };
  /** The caller id of the proxy's audit events. */
  proxyId: string;
  maxRequestBytes: number;
  maxResponseBytes: number;
  observer?: ProxyObserver;
  /** Prometheus text served at `GET /-/metrics` (the standalone proxy's own counters); absent: 404. */
  metrics?: () => Promise<{ contentType: string; text: string }>;
  logger: Logger;
  now?: () => Date;
}

/** What one call's audit event says, built up as the call goes. */
interface CallFacts {
  integration: string;
  method: string;
  path_template: string;
  scope: string | null;
  record: ResourceRef | null;
  upstream_status: number | null;
  bytes_in: number;
  bytes_out: number;
}

const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function createProxyHandler(o: ProxyHandlerOptions): RequestListener {
  const now = o.now ?? (() => new Date());

  const observe = (integration: string, outcome: ProxyOutcome, code: string, started: bigint): void => {
    o.observer?.proxied(o.upstreams.has(integration) ? integration : '-', outcome, code, Number(process.hrtime.bigint() - started) / 1e9);
  };

  const audit = (claims: AccessTokenClaims, facts: CallFacts, outcome: ProxyOutcome, code: string | null, started: bigint, traceId: string | null): Promise<void> =>
    o.store.recordTokenUse({
      jti: claims.jti,
      caller_id: o.proxyId,
      at: now().toISOString(),
      trace_id: traceId,
      data: {
        action: 'proxy',
        integration: facts.integration,
        method: facts.method,
        path_template: facts.path_template,
        scope: facts.scope,
        record: facts.record,
        outcome,
        code,
        upstream_status: facts.upstream_status,
        bytes_in: facts.bytes_in,
        bytes_out: facts.bytes_out,
        latency_ms: Math.round(Number(process.hrtime.bigint() - started) / 1e6),
      },
    });

  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    void handle(req, res, started).catch((err: unknown) => {
      o.logger.error({ err: err instanceof Error ? { name: err.name, message: err.message } : String(err) }, 'proxy: unexpected failure');
      if (!res.headersSent) writeRefusal(res, 'upstream_unreachable', 'internal', { realm: 'agent-pdp proxy' });
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse, started: bigint): Promise<void> {
    const url = req.url ?? '';
    const method = (req.method ?? 'GET').toUpperCase();
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    if (path === '/-/healthz' && method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"status":"ok"}');
      return;
    }
    if (path === '/-/metrics' && method === 'GET' && o.metrics !== undefined) {
      const { contentType, text } = await o.metrics();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(text);
      return;
    }
    const slash = path.indexOf('/', 1);
    const integration = path.startsWith('/') ? (slash === -1 ? path.slice(1) : path.slice(1, slash)) : '';
    const rest = slash === -1 ? '/' : path.slice(slash);
    const realm = `agent-pdp proxy ${o.upstreams.has(integration) ? integration : ''}`.trim();
    const traceId = traceIdOf(req);
    const facts: CallFacts = { integration, method, path_template: '', scope: null, record: null, upstream_status: null, bytes_in: 0, bytes_out: 0 };

    const refuse = async (code: ProxyRefusalCode, message: string, claims?: AccessTokenClaims, field?: string): Promise<void> => {
      // Nothing the caller sent goes anywhere: a body too large is not read (the connection closes after the
      // answer); any other is drained so the connection can serve the next call.
      if (code === 'request_too_large') res.shouldKeepAlive = false;
      else req.resume();
      if (claims !== undefined) {
        try {
          await audit(claims, facts, 'refused', code, started, traceId);
        } catch (err) {
          o.logger.error({ err: describe(err), code }, 'proxy: the refusal could not be audited');
          observe(integration, 'failed', 'audit_unavailable', started);
          writeRefusal(res, 'audit_unavailable', 'audit', { realm });
          return;
        }
      }
      observe(integration, PROXY_REFUSALS[code].status >= 500 ? 'failed' : 'refused', code, started);
      writeRefusal(res, code, message, { realm, ...(facts.scope === null ? {} : { scope: facts.scope }), ...(field === undefined ? {} : { field }) });
    };

    const upstream = o.upstreams.get(integration);
    if (upstream === undefined) return refuse('integration_unknown', 'no upstream is configured for this path', undefined, 'path');
    const token = bearerOf(req);
    if (token === null) return refuse('token_missing', 'an access token is required (Authorization: Bearer)');
    const admitted = await o.gate.admit(token, o.audienceFor(integration));
    if (!admitted.ok) return refuse(admitted.code, admitted.message, admitted.code === 'token_revoked' ? admitted.claims : undefined);
    const claims = admitted.claims;

    const policy = o.policy();
    const map = policy?.endpointMaps[integration];
    if (policy === undefined || map === undefined) return refuse('endpoint_not_mapped', `no endpoint map is loaded for ${integration}`, claims, 'path');
    const matched = matchTarget(map, method, rest);
    if (!matched.ok) return refuse(matched.code, matched.message, claims, matched.field);
    const endpoint: CompiledEndpoint = matched.endpoint;
    facts.path_template = endpoint.path;
    facts.scope = endpoint.scope;

    // The body is read here only when the record comes from it; otherwise it streams to the upstream, counted.
    let body: Buffer | null | 'stream' = null;
    const declared = Number(req.headers['content-length'] ?? '0');
    if (Number.isFinite(declared) && declared > o.maxRequestBytes) return refuse('request_too_large', `the body exceeds ${o.maxRequestBytes} bytes`, claims, 'body');
    const hasBody = (req.headers['content-length'] !== undefined && declared > 0) || req.headers['transfer-encoding'] !== undefined;
    if (endpoint.readsBody.length > 0) {
      const read = await readBody(req, o.maxRequestBytes);
      if (read === null) return refuse('request_too_large', `the body exceeds ${o.maxRequestBytes} bytes`, claims, 'body');
      body = read;
    } else if (hasBody && !BODYLESS.has(method)) {
      body = 'stream';
    } else if (hasBody) {
      req.resume();
    }
    const resolved = resolveRecord(endpoint, matched.params, rawQuery, Buffer.isBuffer(body) ? { contentType: header(req, 'content-type'), bytes: body } : undefined);
    if (!resolved.ok) return refuse(resolved.code, resolved.message, claims, resolved.field);
    facts.record = resolved.record;
    if (Buffer.isBuffer(body) && resolved.forwardBody !== undefined) body = resolved.forwardBody;

    const implies = policy.data.policies.integrations[integration]?.implies ?? {};
    const granted = o.gate.grants(claims, { integration, audience: o.audienceFor(integration), scope: endpoint.scope, record: resolved.record, implies });
    if (!granted.ok) return refuse(granted.code, granted.message, claims);

    const credential = upstream.credential();
    if (credential === null) {
      o.logger.error({ integration }, 'proxy: the provider credential is unset or unreadable');
      return refuse('credential_unavailable', 'credential', claims);
    }

    // Everything checked: forward.
    const abort = new AbortController();
    const onClientGone = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClientGone);
    let counted = 0;
    let tooLarge = false;
    const requestBody =
      body === 'stream'
        ? Readable.from(
            (async function* () {
            for await (const chunk of req as AsyncIterable<Buffer>) {
              counted += chunk.length;
              if (counted > o.maxRequestBytes) {
                tooLarge = true;
                throw new Error('request body too large');
              }
              yield chunk;
            }
          })(),
          )
        : body;
    let upstreamAnswer;
    try {
      const search = rawQuery === '' ? '' : `?${rawQuery}`;
      upstreamAnswer = await upstream.pool.request({
        path: `${upstream.settings.base_path}${matched.upstreamPath}${search}`,
        method: method as 'GET',
        headers: upstream.requestHeaders(req.headers, credential, Buffer.isBuffer(body) ? body : body === 'stream' ? 'stream' : null),
        body: requestBody,
        signal: abort.signal,
      });
    } catch (err) {
      facts.bytes_in = Buffer.isBuffer(body) ? body.length : counted;
      res.off('close', onClientGone);
      const code: ProxyRefusalCode = tooLarge ? 'request_too_large' : isTimeout(err) ? 'upstream_timeout' : 'upstream_unreachable';
      if (code !== 'request_too_large') o.logger.warn({ integration, code, err: describe(err) }, 'proxy: upstream call failed');
      if (abort.signal.aborted) {
        await audit(claims, facts, 'failed', 'client_closed', started, traceId).catch(() => undefined);
        observe(integration, 'failed', 'client_closed', started);
        return;
      }
      // A body cut for its size had already started to stream: the upstream saw part of it, so the call failed.
      try {
        await audit(claims, facts, 'failed', code, started, traceId);
      } catch (auditErr) {
        o.logger.error({ err: describe(auditErr) }, 'proxy: the failed call could not be audited');
      }
      observe(integration, 'failed', code, started);
      writeRefusal(res, code, code === 'request_too_large' ? `the body exceeds ${o.maxRequestBytes} bytes` : 'upstream', { realm });
      return;
    }
    facts.bytes_in = Buffer.isBuffer(body) ? body.length : counted;
    facts.upstream_status = upstreamAnswer.statusCode;
    const length = Number(upstreamAnswer.headers['content-length'] ?? '0');
    if (Number.isFinite(length) && length > o.maxResponseBytes) {
      upstreamAnswer.body.destroy();
      res.off('close', onClientGone);
      await audit(claims, facts, 'failed', 'upstream_response_too_large', started, traceId).catch(() => undefined);
      observe(integration, 'failed', 'upstream_response_too_large', started);
      writeRefusal(res, 'upstream_response_too_large', 'upstream', { realm });
      return;
    }

    res.writeHead(upstreamAnswer.statusCode, upstream.responseHeaders(upstreamAnswer.headers));
    res.flushHeaders(); // the status and headers now, not with the first chunk (one is always held back)
    // Stream back, one chunk behind: the last one goes out after the audit event is committed, so the caller
    // never holds a complete response whose evidence is not durable.
    let held: Buffer | undefined;
    let failure: string | null = null;
    try {
      for await (const chunk of upstreamAnswer.body as AsyncIterable<Buffer>) {
        facts.bytes_out += chunk.length;
        if (facts.bytes_out > o.maxResponseBytes) {
          failure = 'upstream_response_too_large';
          break;
        }
        if (held !== undefined && !res.write(held)) await drained(res);
        if (res.destroyed) {
          failure = 'client_closed';
          break;
        }
        held = chunk;
      }
    } catch (err) {
      failure = abort.signal.aborted || res.destroyed ? 'client_closed' : isTimeout(err) ? 'upstream_timeout' : 'upstream_unreachable';
    }
    res.off('close', onClientGone);
    if (failure !== null) {
      upstreamAnswer.body.destroy();
      await audit(claims, facts, 'failed', failure, started, traceId).catch((err: unknown) => o.logger.error({ err: describe(err) }, 'proxy: a cut call could not be audited'));
      observe(integration, 'failed', failure, started);
      res.destroy(); // the caller sees an incomplete response, never a complete one
      return;
    }
    try {
      await audit(claims, facts, 'forwarded', null, started, traceId);
    } catch (err) {
      o.logger.error({ err: describe(err) }, 'proxy: the call could not be audited: its response is cut');
      observe(integration, 'failed', 'audit_unavailable', started);
      res.destroy();
      return;
    }
    observe(integration, 'forwarded', String(upstreamAnswer.statusCode), started);
    res.end(held);
  }
}

/** Resolves when the response can take more, or is gone; leaves no listener behind. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function bearerOf(req: IncomingMessage): string | null {
  const value = req.headers.authorization;
  if (value === undefined) return null;
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(value);
  return m === null ? null : (m[1] as string);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The W3C trace id of the call, when it carries a valid `traceparent`. */
function traceIdOf(req: IncomingMessage): string | null {
  const m = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(header(req, 'traceparent') ?? '');
  return m === null || /^0+$/.test(m[1] as string) ? null : (m[1] as string);
}

/** The whole body, or null past `max` bytes. */
async function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      req.resume();
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
}

/** An error for a log line: its name, code and message (undici's never carry our headers). */
function describe(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  return { name: err.name, code: (err as { code?: unknown }).code, message: err.message };
}
