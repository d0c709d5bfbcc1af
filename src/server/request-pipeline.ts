import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isAccessRefusalCode, type AccessRefusalCode } from '../audit/index.js';
import type { CallerConfig } from '../config/config-types.js';
import { isPdpError, PdpError } from '../errors/pdp-error.js';
import { bodyMediaOf, readBody } from './body-reader.js';
import { CallerResolver, challengeFor, type AuthFailure, type Authentication } from './caller-auth.js';
import { errorResponse, oauthErrorResponse, opaErrorResponse } from './error-writer.js';
import type { RequestLogFields } from './logger.js';
import type { Metrics } from './metrics.js';
import type { AuthenticatedRoute, PublicContext, Reply, RequestContext, Route } from './route.js';
import { Router } from './router.js';
import { csrfMatches, type ConsoleSessions } from '../console/console-sessions.js';
import { clearSessionCookie, sessionIdOf } from '../console/session-cookie.js';
import { traceIdOf } from './trace-context.js';

export interface PipelineOptions {
  routes: readonly Route[];
  /** The callers, or a resolver the owner may `replace` the callers of (a config reload). */
  callers: readonly CallerConfig[] | CallerResolver;
  metrics: Metrics;
  logger: Logger;
  bodyLimitBytes: number;
  /** Told of every request refused for its credentials (after the metric is counted). */
  onAuthFailure?: (failure: AuthFailure) => void;
  /** Told of every authenticated request refused for what it asked (audit's `ACCESS_REFUSAL_CODES`). */
  onRefusal?: (refusal: AuthorizationRefusal) => void;
  /**
   * The web console's sessions (src/console/): a request without an `Authorization` header that carries a session
   * cookie is the session's caller. Absent: cookies are ignored.
   */
  sessions?: Pick<ConsoleSessions, 'resume' | 'config'>;
}


export interface AuthorizationRefusal {
  code: AccessRefusalCode;
  /** The route template. */
  route: string;
  caller_id: string;
  /** The agent or decision the request named, when the route had read it. */
  agent_id?: string;
  decision_id?: string;
  trace_id: string | null;
}

/**
 * An authenticated route's context is `{ caller, body, dialect, credential, session?, ...base }`: the public context
 * spread last (docs/architecture.md, "Following one request"). It must not be able to override those keys; this
 * does not compile if PublicContext ever gets one of them.
 */
const PUBLIC_CONTEXT_OVERRIDES_NOTHING: Extract<keyof PublicContext, 'caller' | 'body' | 'dialect' | 'credential' | 'session'> extends never ? true : never = true;
void PUBLIC_CONTEXT_OVERRIDES_NOTHING;


/**
 * The one HTTP request pipeline every route goes through, on node:http, in this order:
 * request id → trace context → route match → caller (API key; failures counted and reported) → role gate →
 * bounded body reading and schema validation → handler → reply or error (`error-writer.ts`) → access log line
 * and latency metric. On an OAuth endpoint a form request without an `Authorization` header is read before
 * the caller, whose credentials it holds (`client_secret_post`). A route is one row of the route table; nothing
 * here knows any route.
 */
export function requestPipeline(options: PipelineOptions): RequestListener {
  const router = new Router(options.routes);
  const callers = options.callers instanceof CallerResolver ? options.callers : new CallerResolver(options.callers);

  /** The caller, or a 401 whose challenge names the scheme tried; failures are counted and reported. */
  const authenticated = (req: IncomingMessage, route: Route, found: Authentication): CallerConfig => {
    if ('caller' in found) return found.caller;
    options.metrics.authFailures.inc({ reason: found.failure });
    options.onAuthFailure?.({ reason: found.failure, route: route.path, ip: req.socket.remoteAddress });
    throw new AuthenticationError(challengeFor(found.scheme, route.roles !== 'public' && route.oauth === true));
  };

  const gate = (route: AuthenticatedRoute<never>, caller: CallerConfig): void => {
    const held = caller.roles ?? [caller.role];
    if (!held.some((r) => route.roles.includes(r))) {
      throw new PdpError('forbidden_role', `role ${held.join(', ')} may not use this endpoint`);
    }
  };

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    // The caller's X-Request-ID is kept (AuthZEN requires the echo; logs then join across services) when it is
    // printable ASCII of sane length; anything else (control or non-ASCII bytes, 257+ characters) is replaced.
    const requestId = requestIdOf(req.headers['x-request-id']) ?? randomUUID();
    const traceId = traceIdOf(req.headers.traceparent);
    const method = req.method ?? 'GET';
    // nosniff on every answer: a JSON body (which may echo a client's text) is never sniffed into HTML by a browser.
    const headers: Record<string, string> = { 'x-request-id': requestId, 'x-content-type-options': 'nosniff' };
    if (traceId !== null) headers['traceparent'] = req.headers.traceparent as string;
    const log: PublicContext['log'] = {};
    let label = 'unmatched';
    let errorDialect: 'authzen' | 'opa' | undefined;
    let errorPage: AuthenticatedRoute<unknown>['errorPage'];
    let caller: CallerConfig | undefined;
    let dialect: 'pdp' | 'oauth' = 'pdp';
    let clearCookie: string | undefined;
    let reply: Reply;
    try {
      const target = req.url ?? '/';
      const q = target.indexOf('?');
      const { route, params } = router.match(method, q < 0 ? target : target.slice(0, q));
      label = route.path;
      errorDialect = route.roles === 'public' ? undefined : route.errors;
      errorPage = route.roles === 'public' ? undefined : route.errorPage;
      const ip = req.socket.remoteAddress;
      const base: PublicContext = { requestId, traceId, params, query: q < 0 ? {} : parseQuery(target.slice(q + 1)), headers: req.headers, log, ...(ip === undefined ? {} : { ip }) };
      if (route.roles === 'public') {
        reply = await route.handle(base);
      } else if (route.oauth) {
        dialect = route.body && bodyMediaOf(req, route.body.media) === 'form' ? 'oauth' : 'pdp';
        const header = authorizationOf(req);
        let raw: unknown;
        if (header !== undefined || dialect !== 'oauth') {
          // Credentials in the header (or none, and a body that cannot carry any): the caller and the role come
          // first, and the body of a refused request is never read, as on every other route.
          caller = authenticated(req, route, callers.client(header, undefined));
          gate(route, caller);
          raw = route.body ? await readBody(req, route.body.media, options.bodyLimitBytes, route.body.optional) : undefined;
          // A form beside a header may name the same client (client_id), never carry a second credential.
          if (dialect === 'oauth') caller = authenticated(req, route, callers.client(header, raw as Record<string, unknown>));
        } else {
          // client_secret_post: the credentials are in the form body, so it is read (within the same limits) first.
          raw = route.body ? await readBody(req, route.body.media, options.bodyLimitBytes, route.body.optional) : undefined;
          caller = authenticated(req, route, callers.client(undefined, raw as Record<string, unknown>));
          gate(route, caller);
        }
        const body = route.body ? (dialect === 'oauth' && route.body.parseForm ? route.body.parseForm(raw) : route.body.parse(raw)) : undefined;
        reply = await route.handle({ caller, body: body as never, dialect, credential: 'api_key', ...base });
      } else if (route.formKey) {
        // The approval page's form carries the approver's key: read the body (bounded) first, then authenticate.
        const raw = route.body ? await readBody(req, route.body.media, options.bodyLimitBytes, route.body.optional) : undefined;
        caller = authenticated(req, route, callers.formKey(authorizationOf(req), raw as Record<string, unknown> | undefined));
        gate(route, caller);
        const body = route.body ? route.body.parse(raw) : undefined;
        reply = await route.handle({ caller, body: body as never, dialect: 'pdp', credential: 'api_key', ...base });
      } else {
        const header = authorizationOf(req);
        const sessions = options.sessions;
        const sessionId = header === undefined && sessions !== undefined ? sessionIdOf(req.headers.cookie, sessions.config.secure_cookie) : undefined;
        let consoleSession: RequestContext<never>['session'];
        if (sessionId === undefined || sessions === undefined) {
          caller = authenticated(req, route, callers.apiKey(header));
          gate(route, caller);
        } else {
          // A console session: the cookie is the credential. A dead one is a 401 that also deletes the cookie.
          const session = await sessions.resume(sessionId);
          if (session === undefined) {
            clearCookie = clearSessionCookie(sessions.config.secure_cookie);
            throw authenticated(req, route, { failure: 'unknown_session', scheme: 'session' });
          }
          caller = session.caller;
          consoleSession = { id: sessionId, csrfToken: session.csrfToken, expiresAt: session.expiresAt };
          gate(route, caller);
          // SameSite=Strict keeps other sites' pages from sending the cookie, but a site is every subdomain of it: a
          // page on a sibling host could still make the browser fetch a trail export with it. A browser says where a
          // request comes from (Fetch Metadata): only the console's own origin, or the user typing or bookmarking a
          // URL (`none`), may use the session. A client that sends no such header is not a browser page.
          const site = req.headers['sec-fetch-site'];
          if (site !== undefined && site !== 'same-origin' && site !== 'none') {
            throw new PdpError('csrf_failed', 'a console session is used by the console\'s own origin only (Sec-Fetch-Site)');
          }
          // The browser sends the cookie with any request it makes, whoever's page asks; only the console's own
          // script knows the token. Every method but GET (which changes nothing) must echo it.
          if (method !== 'GET' && method !== 'HEAD' && !csrfMatches(session, req.headers['x-csrf-token'])) {
            throw new PdpError('csrf_failed', 'a state change made with a console session must carry its X-CSRF-Token');
          }
          // A read naming another session's token comes from a page of a session this cookie no longer holds (the
          // browser signed in again, in another tab, maybe as another caller): refused, so that page learns it and
          // reloads its session rather than showing one caller's data under another's name.
          if ((method === 'GET' || method === 'HEAD') && req.headers['x-csrf-token'] !== undefined && !csrfMatches(session, req.headers['x-csrf-token'])) {
            throw new PdpError('csrf_failed', 'this page belongs to another console session (signed in again elsewhere): reload it');
          }
        }
        const body = route.body ? route.body.parse(await readBody(req, route.body.media, options.bodyLimitBytes, route.body.optional)) : undefined;
        reply = await route.handle({
          caller,
          body: body as never,
          dialect: 'pdp',
          ...(consoleSession === undefined ? { credential: 'api_key' } : { credential: 'session', session: consoleSession }),
          ...base,
        });
      }
    } catch (err) {
      const mapped =
        dialect === 'oauth'
          ? oauthErrorResponse(err, options.logger, requestId)
          : errorDialect === 'opa'
            ? opaErrorResponse(err, options.logger, requestId)
            : errorResponse(err, options.logger, requestId);
      if (err instanceof AuthenticationError) mapped.headers['www-authenticate'] = err.challenge;
      if (clearCookie !== undefined) mapped.headers['set-cookie'] = clearCookie;
      // AuthZEN's HTTPS binding: a request that is not JSON is a Bad Request.
      if (errorDialect === 'authzen' && mapped.status === 415) mapped.status = 400;
      if (caller && isPdpError(err) && isAccessRefusalCode(err.code)) {
        options.onRefusal?.({
          code: err.code,
          route: label,
          caller_id: caller.id,
          ...(log.agentId ? { agent_id: log.agentId } : {}),
          ...(log.decisionId ? { decision_id: log.decisionId } : {}),
          trace_id: traceId,
        });
      }
      // The page says what the JSON body would have said (its code and exposed message), nothing more.
      const said = (mapped.body as { error?: { code?: unknown; message?: unknown } }).error;
      const page =
        errorPage !== undefined && mapped.status < 500 && typeof said?.code === 'string' && typeof said.message === 'string' ? errorPage(mapped.status, said.code, said.message) : undefined;
      reply = page === undefined ? { status: mapped.status, json: mapped.body, headers: mapped.headers } : { status: mapped.status, text: page.text, contentType: page.contentType, headers: { ...mapped.headers, ...page.headers } };
    }
    await write(req, res, method, headers, reply, options, requestId);

    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    options.metrics.requestSeconds.observe({ route: label, method, status: String(res.statusCode) }, seconds);
    const fields: RequestLogFields = {
      request_id: requestId,
      method,
      route: label,
      status: res.statusCode,
      duration_ms: Math.round(seconds * 1e6) / 1e3,
      ...(caller ? { caller_id: caller.id } : {}),
      ...(log.decisionId ? { decision_id: log.decisionId } : {}),
      ...(log.agentId ? { agent_id: log.agentId } : {}),
      ...(traceId ? { trace_id: traceId } : {}),
    };
    options.logger.info(fields, 'request');
  };

  return (req, res) => {
    void serve(req, res).catch((err: unknown) => {
      // Only a bug in the pipeline itself lands here; the socket cannot be trusted to hold a response any more.
      options.logger.error({ err: err instanceof Error ? `${err.name}: ${err.message}` : typeof err }, 'request pipeline failed');
      res.destroy();
    });
  };
}

/**
 * A client's request id, when it is 1 to 256 printable ASCII characters (spaces included, as AuthZEN's "arbitrary
 * string" allows); else undefined. Log lines are JSON, so a kept id cannot forge one.
 */
function requestIdOf(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && /^[\x20-\x7e]{1,256}$/.test(value) ? value : undefined;
}

/** A 401 `unauthenticated`, with the challenge of the scheme the client tried. */
class AuthenticationError extends PdpError {
  constructor(readonly challenge: string) {
    super('unauthenticated', 'missing or invalid API key');
  }
}

async function write(
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  base: Record<string, string>,
  reply: Reply,
  options: Pick<PipelineOptions, 'logger' | 'bodyLimitBytes'>,
  requestId: string,
): Promise<void> {
  const headers = Object.assign({}, base, reply.headers);
  keepAliveOrClose(req, headers, options.bodyLimitBytes);
  if ('stream' in reply) {
    res.writeHead(reply.status, headers);
    if (method === 'HEAD') {
      res.end();
      return;
    }
    try {
      await reply.stream(res);
    } catch (err) {
      // The status line is gone: all that is left is to cut the response short, which the reader detects.
      errorResponse(err, options.logger, requestId);
      res.destroy();
    }
    return;
  }
  let payload: string | Buffer | undefined;
  if ('json' in reply) {
    payload = JSON.stringify(reply.json);
    headers['content-type'] = 'application/json; charset=utf-8';
  } else if ('text' in reply) {
    payload = reply.text;
    headers['content-type'] = reply.contentType;
  } else if ('bytes' in reply) {
    payload = reply.bytes;
    headers['content-type'] = reply.contentType;
  }
  headers['content-length'] = String(payload === undefined ? 0 : Buffer.byteLength(payload));
  res.writeHead(reply.status, headers);
  res.end(method === 'HEAD' ? undefined : payload);
}

/**
 * A request whose body was not read (refused before it: no key, wrong role) keeps its connection when the body
 * is small enough for node:http to discard; a body we stopped reading part-way, or one too large to be worth
 * reading (over the body limit, or of unknown length), closes the connection, since the next request on it would start mid-body.
 */
function keepAliveOrClose(req: IncomingMessage, headers: Record<string, string>, limit: number): void {
  if (req.complete) return;
  const declared = Number(req.headers['content-length']);
  const unread = !req.readableDidRead && req.readableFlowing === null;
  if (!(unread && Number.isFinite(declared) && declared <= limit)) headers['connection'] = 'close';
}

function parseQuery(text: string): Record<string, string | string[]> {
  const out = new Map<string, string | string[]>();
  for (const [name, value] of new URLSearchParams(text)) {
    const seen = out.get(name);
    out.set(name, seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]);
  }
  return Object.fromEntries(out);
}

/**
 * The request's Authorization header. Node keeps only the first of several; two or more are one malformed
 * credential here (401: exactly one method per request), never the first one silently.
 */
function authorizationOf(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).length === 13 && (raw[i] as string).toLowerCase() === 'authorization') seen++;
  return seen > 1 ? SEVERAL_AUTHORIZATIONS : req.headers.authorization;
}

/** What stands for several Authorization headers: a credential of no scheme, which every method refuses as malformed. */
const SEVERAL_AUTHORIZATIONS = 'several-authorization-headers';
