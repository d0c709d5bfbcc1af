import { CONSOLE_ROLES, type ConsoleSessions } from '../../console/console-sessions.js';
import { CONSOLE_CSP, type ConsoleAssets } from '../../console/console-assets.js';
import { clearSessionCookie, sessionIdOf, setSessionCookie } from '../../console/session-cookie.js';
import { PdpError } from '../../errors/pdp-error.js';
import { errors, json } from '../openapi.js';
import { publicRoute, route, type Reply, type RequestContext, type Route } from '../route.js';

/** What a browser gets with every console page and file. */
const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CONSOLE_CSP,
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
});

const text = { schema: { type: 'string' } };

/**
 * The web console (docs/console.md): its page and files (public: they hold no data, every datum comes from the API
 * under the session's roles), and its sessions: sign in with an API key, read the session, sign out.
 */
export function consoleRoutes(sessions: ConsoleSessions, assets: ConsoleAssets): Route[] {
  const sessionBody = (ctx: RequestContext<unknown>, csrfToken: string, expiresAt: string): object => ({
    caller_id: ctx.caller.id,
    roles: ctx.caller.roles ?? [ctx.caller.role],
    approver_groups: ctx.caller.approver_groups ?? [],
    csrf_token: csrfToken,
    idle_timeout_seconds: sessions.config.session_idle_seconds,
    expires_at: expiresAt,
  });
  const asset = (name: string, ifNoneMatch: string | string[] | undefined): Reply => {
    const file = name === 'index.html' ? assets.shell : assets.get(name);
    if (file === undefined) {
      if (assets.shell === undefined) throw new PdpError('console_unavailable', "the console's files are not built (make build)");
      throw new PdpError('not_found', `the console has no file ${name}`);
    }
    // Revalidated at every load (a new build changes the ETag); the page itself is never stored.
    const headers = { ...CONSOLE_HEADERS, etag: file.etag, 'cache-control': name === 'index.html' ? 'no-store' : 'no-cache' };
    if (ifNoneMatch === file.etag) return { status: 304, empty: true, headers };
    return { status: 200, bytes: file.body, contentType: file.contentType, headers };
  };
  return [
    publicRoute({
      method: 'GET',
      path: '/console',
      handle: ({ headers }) => asset('index.html', headers['if-none-match']),
      openapi: {
        operationId: 'getConsole',
        summary: 'The web console: one page that loads its script and style from /console/assets and reads the API with a session',
        responses: { '200': { description: 'the page', content: { 'text/html': text } }, ...errors(503) },
      },
    }),
    publicRoute({
      method: 'GET',
      path: '/console/assets/{file}',
      handle: ({ params, headers }) => asset(params['file'] ?? '', headers['if-none-match']),
      openapi: {
        operationId: 'getConsoleAsset',
        summary: "One of the console's built files (script modules, style sheet)",
        parameters: [{ name: 'file', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,63}$' } }],
        responses: {
          '200': { description: 'the file', content: { 'text/javascript': text, 'text/css': text } },
          '304': { description: 'not modified (If-None-Match)' },
          '404': { description: 'no such file (code not_found)', content: json('Error') },
          ...errors(503),
        },
      },
    }),
    route({
      method: 'POST',
      path: '/console/session',
      roles: CONSOLE_ROLES,
      async handle(ctx) {
        if (ctx.credential !== 'api_key') {
          throw new PdpError('invalid_request', 'sign in with an API key (Authorization: Bearer), not with a session', { details: [{ path: 'Authorization', message: 'required' }] });
        }
        // A browser that signs in again while it holds a session (another key, a new tab): the old one ends.
        const held = sessionIdOf(ctx.headers.cookie, sessions.config.secure_cookie);
        if (held !== undefined) await sessions.end(held, 'replaced', ctx.traceId);
        const { id, session } = await sessions.begin(ctx.caller, ctx.ip ?? null, ctx.traceId);
        return {
          status: 201,
          json: sessionBody({ ...ctx, caller: session.caller }, session.csrfToken, session.expiresAt),
          headers: { 'set-cookie': setSessionCookie(id, sessions.config.session_max_seconds, sessions.config.secure_cookie), 'cache-control': 'no-store' },
        };
      },
      openapi: {
        operationId: 'createConsoleSession',
        summary: 'Sign in to the console: the API key (Authorization: Bearer) for a session cookie (HttpOnly, SameSite=Strict, Secure over TLS) and its CSRF token',
        description:
          "The session acts with the caller's auditor, approver and admin roles only, ends after console.session_idle_seconds unused or console.session_max_seconds in all, and every state change made with it must send the CSRF token as X-CSRF-Token.",
        responses: { '201': { description: 'signed in; the cookie is set', content: json('ConsoleSessionV1') }, ...errors(503) },
      },
    }),
    route({
      method: 'GET',
      path: '/console/session',
      roles: CONSOLE_ROLES,
      handle(ctx) {
        if (ctx.session === undefined) {
          throw new PdpError('invalid_request', 'no console session: this reads the session its cookie names', { details: [{ path: 'Cookie', message: 'required' }] });
        }
        return { status: 200, json: sessionBody(ctx, ctx.session.csrfToken, ctx.session.expiresAt), headers: { 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'getConsoleSession',
        summary: "The console session its cookie names: the caller, its console roles and the session's CSRF token (a reloaded page resumes with it)",
        responses: { '200': { description: 'the session', content: json('ConsoleSessionV1') }, ...errors(503) },
      },
    }),
    route({
      method: 'POST',
      path: '/console/session/end',
      roles: CONSOLE_ROLES,
      async handle(ctx) {
        if (ctx.session !== undefined) await sessions.end(ctx.session.id, 'signed_out', ctx.traceId);
        return { status: 204, empty: true, headers: { 'set-cookie': clearSessionCookie(sessions.config.secure_cookie), 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'endConsoleSession',
        summary: 'Sign out: the session ends on every replica and its cookie is deleted',
        responses: { '204': { description: 'signed out' }, ...errors(503) },
      },
    }),
  ];
}

