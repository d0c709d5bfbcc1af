/**
 * The proxy's request handler: one proxied call, from the socket to the upstream's last byte.
 *
 *   /<integration>/<upstream path>?<query>
 *     → the integration's upstream (fixed origin) → the bearer token admitted (ours, audience, exp, not revoked)
 *     → method + path matched against the integration's endpoint map (canonical paths only) → a body's length
 *       announced (Content-Length, not chunked) and within bounds → the record read (path, query or body field)
 *       → the grant checked (scope, record) → expiry and revocation checked again
 *       → forwarded with the provider credential → the response streamed back; its last chunk is held until the
 *       call's `token.used` event is committed.
 *
 * `authorize` decides (and answers every refusal); `forward` carries out an authorised call. A call refused after
 * its token was admitted is audited too (outcome `refused`, with the code) before the refusal is sent; a call whose
 * token is not ours has no token to audit (metrics only). Nothing reaches the upstream before every check passed.
 * Once an audit write failed, every call is refused (503 `audit_unavailable`) until one succeeds again. No token,
 * credential, query or body ever reaches a log line or an event.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { authorizationHeaders, readBearer } from '../issuer/bearer-header.js';
import type { AccessTokenClaims, ResourceRef } from '../issuer/token-claims.js';
import type { CompiledEndpoint, PolicySet } from '../policy/policy-types.js';
import type { TokenIds, TokenUseInput } from '../store/index.js';
import { PROXY_REFUSALS, writeRefusal, type ProxyRefusalCode } from './proxy-refusal.js';
import { matchTarget, resolveRecord } from './request-target.js';
import { exchange } from './upstream-exchange.js';
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

/** One call as it goes: what it is, when it started, and how to account for it. */
interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  started: bigint;
  traceId: string | null;
  facts: CallFacts;
  /** The admitted token's row ids (its `token.used` event is correlated with them), once the gate admitted it. */
  token?: TokenIds;
}

/** An authorised call: everything `forward` needs. */
interface Plan {
  upstream: Upstream;
  claims: AccessTokenClaims;
  /** The path and query to send (after the upstream's base path). */
  target: string;
  /** The body: read and re-serialized, to be streamed (counted), or none. */
  body: Buffer | 'stream' | null;
}

const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A body the record is read from is buffered; Slack's arguments are small, so the buffer is too. */
const MAX_BUFFERED_BODY = 1024 * 1024;

/** A refused call's body is drained (so the connection serves the next call) only when it is at most this. */
const MAX_DRAINED_BODY = 64 * 1024;

export function createProxyHandler(o: ProxyHandlerOptions): RequestListener {
  const now = o.now ?? (() => new Date());
  /** Set when an audit write failed: calls are refused until one succeeds. */
  let auditDown = false;

  /** The `WWW-Authenticate` realm of a refusal: the proxy and, when it names one, the call's integration. */
  const realmOf = (call: Call): string => (o.upstreams.has(call.facts.integration) ? `agent-pdp proxy ${call.facts.integration}` : 'agent-pdp proxy');

  const observe = (call: Call, outcome: ProxyOutcome, code: string): void => {
    const integration = o.upstreams.has(call.facts.integration) ? call.facts.integration : '-';
    o.observer?.proxied(integration, outcome, code, Number(process.hrtime.bigint() - call.started) / 1e9);
  };

  /** Commits the call's event; a failure is logged, marks the audit down, and is rethrown. */
  const audit = async (call: Call, claims: AccessTokenClaims, outcome: ProxyOutcome, code: string | null): Promise<void> => {
    const f = call.facts;
    try {
      await o.store.recordTokenUse({
        jti: claims.jti,
        caller_id: o.proxyId,
        at: now().toISOString(),
        trace_id: call.traceId,
        ...(call.token === undefined ? {} : { token: call.token }),
        data: {
          action: 'proxy',
          integration: f.integration,
          method: f.method,
          path_template: f.path_template,
          scope: f.scope,
          record: f.record,
          outcome,
          code,
          upstream_status: f.upstream_status,
          bytes_in: f.bytes_in,
          bytes_out: f.bytes_out,
          latency_ms: Math.round(Number(process.hrtime.bigint() - call.started) / 1e6),
        },
      });
      auditDown = false;
    } catch (err) {
      auditDown = true;
      o.logger.error({ err: describe(err), integration: f.integration, outcome, code }, 'proxy: a call could not be audited; calls are refused until the audit trail is written again');
      throw err;
    }
  };

  /** Answers a refusal, audited first when the token was admitted. Nothing the caller sent goes anywhere. */
  const refuse = async (call: Call, code: ProxyRefusalCode, message: string, claims?: AccessTokenClaims, field?: string): Promise<void> => {
    const { req, res, facts } = call;
    const declared = Number(req.headers['content-length'] ?? '0');
    if (req.headers['transfer-encoding'] !== undefined || !(declared <= MAX_DRAINED_BODY)) res.shouldKeepAlive = false;
    else req.resume();
    if (claims !== undefined) {
      try {
        await audit(call, claims, 'refused', code);
      } catch {
        observe(call, 'failed', 'audit_unavailable');
        writeRefusal(res, 'audit_unavailable', 'audit', { realm: realmOf(call) });
        return;
      }
    }
    observe(call, PROXY_REFUSALS[code].status >= 500 ? 'failed' : 'refused', code);
    writeRefusal(res, code, message, { realm: realmOf(call), ...(facts.scope === null ? {} : { scope: facts.scope }), ...(field === undefined ? {} : { field }) });
  };

  /** Every check, in order; a refusal is answered here and yields undefined. */
  const authorize = async (call: Call, path: string, rawQuery: string): Promise<Plan | undefined> => {
    const { req, res, facts } = call;
    const integration = facts.integration;
    const upstream = o.upstreams.get(integration);
    if (upstream === undefined) return void (await refuse(call, 'integration_unknown', 'no upstream is configured for this path', undefined, 'path'));
    const bearer = readBearer(req.headers.authorization, authorizationHeaders(req.rawHeaders));
    if ('missing' in bearer) return void (await refuse(call, 'token_missing', 'an access token is required (Authorization: Bearer)'));
    if ('malformed' in bearer) return void (await refuse(call, 'token_malformed', 'the request must carry one Authorization header: "Bearer" and one token'));
    const admitted = await o.gate.admit(bearer.token, o.audienceFor(integration));
    if (!admitted.ok) return void (await refuse(call, admitted.code, admitted.message, admitted.code === 'token_revoked' ? admitted.claims : undefined));
    const claims = admitted.claims;
    call.token = admitted.ids;
    if (auditDown) {
      // Probe with this refusal's own event: once it is written, the next call goes through.
      return void (await refuse(call, 'audit_unavailable', 'audit', claims));
    }

    const policy = o.policy();
    const map = policy?.endpointMaps[integration];
    if (policy === undefined || map === undefined) return void (await refuse(call, 'endpoint_not_mapped', `no endpoint map is loaded for ${integration}`, claims, 'path'));
    const slash = path.indexOf('/', 1);
    const matched = matchTarget(map, facts.method, slash === -1 ? '/' : path.slice(slash));
    if (!matched.ok) return void (await refuse(call, matched.code, matched.message, claims, matched.field));
    const endpoint: CompiledEndpoint = matched.endpoint;
    facts.path_template = endpoint.path;
    facts.scope = endpoint.scope;

    // Connection names the headers that stop at this hop; naming one that says what the body is would let the
    // upstream read other bytes than the ones judged here (a JSON body checked, then forwarded as a form).
    const hopNamed = (req.headers.connection ?? '').toLowerCase().split(',').map((t) => t.trim());
    const describesBody = hopNamed.find((t) => BODY_HEADERS.has(t));
    if (describesBody !== undefined) {
      return void (await refuse(call, 'ambiguous_request', `Connection names ${describesBody}, which describes the body: not forwarded`, claims, 'header.connection'));
    }

    // A body's size is judged from its Content-Length, before any of it leaves: one of unknown length (chunked) would
    // be judged only as it streamed, after the upstream had part of it. GET, HEAD and OPTIONS forward no body at all.
    const unframed = req.headers['transfer-encoding'] !== undefined;
    const declared = declaredLength(req);
    if (!BODYLESS.has(facts.method) && (unframed || Number.isNaN(declared))) {
      return void (await refuse(call, 'length_required', 'a request body must announce its length (Content-Length); Transfer-Encoding is not accepted', claims, 'body'));
    }
    // The body is read here only when the record comes from it; otherwise it streams to the upstream, counted.
    let body: Buffer | 'stream' | null = null;
    const limit = endpoint.readsBody.length > 0 ? Math.min(o.maxRequestBytes, MAX_BUFFERED_BODY) : o.maxRequestBytes;
    if (!(declared <= limit)) return void (await refuse(call, 'request_too_large', `the body exceeds ${limit} bytes`, claims, 'body'));
    const hasBody = declared > 0 || unframed;
    if (endpoint.readsBody.length > 0) {
      const encoding = header(req, 'content-encoding');
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        return void (await refuse(call, 'body_unreadable', 'the record is read from the body: send it without Content-Encoding', claims, 'body'));
      }
      letBodyCome(req, res);
      const read = await readBody(req, limit);
      if (read === null) return void (await refuse(call, 'request_too_large', `the body exceeds ${limit} bytes`, claims, 'body'));
      body = read;
    } else if (hasBody && !BODYLESS.has(facts.method)) {
      body = 'stream';
    } else if (hasBody) {
      req.resume(); // a GET's body goes nowhere
    }
    const resolved = resolveRecord(endpoint, matched.params, rawQuery, Buffer.isBuffer(body) ? { contentType: header(req, 'content-type'), bytes: body } : undefined);
    if (!resolved.ok) return void (await refuse(call, resolved.code, resolved.message, claims, resolved.field));
    facts.record = resolved.record;
    if (Buffer.isBuffer(body) && resolved.forwardBody !== undefined) body = resolved.forwardBody;

    const implies = policy.data.policies.integrations[integration]?.implies ?? {};
    const granted = o.gate.grants(claims, { integration, audience: o.audienceFor(integration), scope: endpoint.scope, record: resolved.record, implies });
    if (!granted.ok) return void (await refuse(call, granted.code, granted.message, claims));
    // Reading the body took time: the token must still be good now, as the call leaves.
    const still = o.gate.current(claims);
    if (!still.ok) return void (await refuse(call, still.code, still.message, claims));
    const query = resolved.forwardQuery ?? rawQuery;
    return { upstream, claims, target: `${matched.upstreamPath}${query === '' ? '' : `?${query}`}`, body };
  };

  /** Sends an authorised call and streams the answer back, one chunk behind the commit of its event. */
  const forward = async (call: Call, plan: Plan): Promise<void> => {
    const { req, res, facts } = call;
    const { upstream, claims } = plan;
    const credential = upstream.credential();
    if (credential === null) {
      o.logger.error({ integration: facts.integration }, 'proxy: the provider credential is unset or unreadable');
      return refuse(call, 'credential_unavailable', 'credential', claims);
    }
    // A streamed body announced its length, within max_request_bytes (authorize), and node's parser ends it there:
    // the count below is a second guard, not the size check.
    let counted = 0;
    let tooLarge = false;
    const max = o.maxRequestBytes;
    const body =
      plan.body === 'stream'
        ? Readable.from(
            (async function* () {
              for await (const chunk of req as AsyncIterable<Buffer>) {
                counted += chunk.length;
                if (counted > max) {
                  tooLarge = true;
                  throw new Error('request body too large');
                }
                yield chunk;
              }
            })(),
          )
        : plan.body;
    if (plan.body === 'stream') letBodyCome(req, res);
    const result = await exchange(res, {
      upstream,
      path: `${upstream.settings.base_path}${plan.target}`,
      method: facts.method,
      headers: upstream.requestHeaders(req.headers, credential, plan.body),
      body,
      bodyTooLarge: () => tooLarge,
      maxResponseBytes: o.maxResponseBytes,
    });
    facts.bytes_in = Buffer.isBuffer(plan.body) ? plan.body.length : counted;
    facts.upstream_status = result.status;
    facts.bytes_out = result.bytesOut;
    if (!result.ok) {
      // A call that failed after it left: audited (failures logged), counted, and the caller's answer.
      if (result.error !== undefined && result.answer !== 'cut') {
        o.logger.warn({ integration: facts.integration, code: result.code, err: describe(result.error) }, 'proxy: upstream call failed');
      }
      await audit(call, claims, 'failed', result.code).catch(() => undefined);
      observe(call, 'failed', result.code);
      if (result.answer === 'cut' || res.headersSent) res.destroy();
      else writeRefusal(res, result.answer, result.answer === 'request_too_large' ? `the body exceeds ${max} bytes` : 'upstream', { realm: realmOf(call) });
      return;
    }
    // The caller never holds a complete answer whose evidence is not durable: the last chunk waits for the commit.
    try {
      await audit(call, claims, 'forwarded', null);
    } catch {
      observe(call, 'failed', 'audit_unavailable');
      res.destroy(); // the call's evidence is not durable: its answer is not completed
      return;
    }
    observe(call, 'forwarded', String(result.status));
    res.end(result.held);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, started: bigint): Promise<void> => {
    const url = req.url ?? '';
    const method = (req.method ?? 'GET').toUpperCase();
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    if (method === 'GET' && path === '/-/healthz') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end('{"status":"ok"}');
      return;
    }
    if (method === 'GET' && path === '/-/metrics' && o.metrics !== undefined) {
      const { contentType, text } = await o.metrics();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(text);
      return;
    }
    const slash = path.indexOf('/', 1);
    const integration = path.startsWith('/') ? (slash === -1 ? path.slice(1) : path.slice(1, slash)) : '';
    const call: Call = {
      req,
      res,
      started,
      traceId: traceIdOf(req),
      facts: { integration, method, path_template: '', scope: null, record: null, upstream_status: null, bytes_in: 0, bytes_out: 0 },
    };
    if (url.includes('#')) return refuse(call, 'path_not_canonical', 'a request target holds no fragment (`#`)', undefined, 'path');
    const plan = await authorize(call, path, rawQuery);
    if (plan !== undefined) await forward(call, plan);
  };

  return (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    void handle(req, res, started).catch((err: unknown) => {
      o.logger.error({ err: describe(err) }, 'proxy: unexpected failure');
      if (!res.headersSent) writeRefusal(res, 'upstream_unreachable', 'internal', { realm: 'agent-pdp proxy' });
      else res.destroy();
    });
  };
}

/**
 * The body length a request announces: 0 without Content-Length, NaN when it is not one decimal number (node's
 * parser already refuses most such requests; this does not rely on it).
 */
function declaredLength(req: IncomingMessage): number {
  const value = req.headers['content-length'];
  if (value === undefined) return 0;
  return /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
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

/**
 * The whole body, or null past `max` bytes: reading stops there (the request is paused, not destroyed, so the
 * refusal can still be answered; the connection closes after it).
 */
/** Headers that say what a request's body is: a caller may not make them hop-by-hop (Connection). */
const BODY_HEADERS: ReadonlySet<string> = new Set(['content-type', 'content-length', 'content-encoding', 'transfer-encoding']);

/**
 * Requests that sent `Expect: 100-continue` (the server's `checkContinue` event: `continueFirst`). Their `100
 * Continue` is sent only once the call is admitted and its body is wanted, so a refused upload ends with the refusal
 * before the client sends a byte of it (RFC 9110 §10.1.1), rather than with a connection closed under it.
 */
const awaitingContinue = new WeakSet<IncomingMessage>();

/** For `server.on('checkContinue', continueFirst(handler))`: the handler runs, and sends `100 Continue` itself. */
export function continueFirst(handler: RequestListener): RequestListener {
  return (req, res) => {
    awaitingContinue.add(req);
    handler(req, res);
  };
}

function letBodyCome(req: IncomingMessage, res: ServerResponse): void {
  if (awaitingContinue.delete(req)) res.writeContinue();
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (value: Buffer | null, err?: unknown): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err === undefined) resolve(value);
      else reject(err);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > max) {
        req.pause();
        settle(null);
      } else chunks.push(chunk);
    };
    const onEnd = (): void => settle(Buffer.concat(chunks, size));
    const onError = (err: unknown): void => settle(null, err);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

/** An error for a log line: its name, code and message (undici's never carry our headers). */
function describe(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: String(err) };
  return { name: err.name, code: (err as { code?: unknown }).code, message: err.message };
}
