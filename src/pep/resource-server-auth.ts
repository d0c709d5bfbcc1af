/**
 * Express middleware for a resource server (a tool API): each route names the integration, the one scope and
 * (through a function of the request) the record it needs; a request passes only with an access token of the
 * PDP that grants exactly that. Verification is the issuer's own helper (`verifyAccessToken`) against the PDP's
 * JWKS, fetched and cached by jose's `createRemoteJWKSet`.
 *
 * A JWT is checked without asking anyone, so on its own this cannot see revocation: a token of a completed task
 * stays valid until it expires. With `introspect: true` the middleware also asks the PDP (RFC 7662) after the
 * local checks pass, and refuses tokens that are no longer active; if the PDP cannot be asked, it refuses too.
 *
 * Refusals: 401/403 with `WWW-Authenticate: Bearer ... error="invalid_token" | "insufficient_scope"`, 503 when
 * the keys or the PDP could not be reached, always with `{ error: { code, message } }`. Never the token.
 *
 * With `reportUsage`, each request let through is also reported to the PDP (`usage-reporter.ts`): queued, sent in
 * batches in the background, never delaying or failing the request; `auth.usage` has the counts.
 */
import { createRemoteJWKSet } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import { authorizationHeaders, readBearer } from '../issuer/bearer-header.js';
import type { AccessTokenClaims, ResourceRef } from '../issuer/token-claims.js';
import { isTokenVerificationError } from '../issuer/verification-error.js';
import { verifyAccessToken } from '../issuer/verify-access-token.js';
import type { PdpClient } from './pdp-client.js';
import { isPepError } from './pep-error.js';
import { refuse, type ResourceResponse } from './resource-refusal.js';
import { UsageReporter, type UsageReporting, type UsageReportingOptions } from './usage-reporter.js';

export interface ResourceServerAuthOptions {
  /** The `iss` tokens must carry: the `issuer` of the PDP's metadata (`PdpClient.metadata()`). Required. */
  issuer: string;
  /** The `aud` tokens must carry: the integration's configured audience (`https://crm.example.com/api`). Required. */
  audience: string;
  /** The PDP's JWKS URL. Default: `pdp.jwksUri`. Required when neither `pdp` nor `jwks` is given. */
  jwksUri?: string;
  /** A key resolver to use instead of fetching `jwksUri` (e.g. `createLocalJWKSet`). Default: none. */
  jwks?: JWTVerifyGetKey;
  /**
   * A client of the PDP with an API key of role `resource_server` (or `pep`): used for introspection, and for
   * the default `jwksUri`. Required when `introspect` is true.
   */
  pdp?: PdpClient;
  /** Also ask the PDP whether each token is still active, so revoked tokens are refused. Default false. */
  introspect?: boolean;
  /**
   * Report each request let through to the PDP (`POST /v1/usage`: the token's jti, the route's scope, integration
   * and record, the route template, the time), as evidence of the scopes agents actually use. `true` for the
   * defaults (batches of 100, sent at least every 1000 ms, at most 10000 waiting), or the options. Needs `pdp` with
   * a `resource_server` key. Best effort: see `ResourceServerAuth.usage`. Default false.
   */
  reportUsage?: boolean | UsageReportingOptions;
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds. Default 5. */
  clockTolerance?: number;
  /** The `realm` of the `WWW-Authenticate` challenge. Default: `audience`. */
  realm?: string;
}

/**
 * What a route's `scope` and `record` functions see of the request; an express `Request` has these fields
 * (express 5 gives a named parameter as a string and a wildcard as an array).
 */
export interface RouteRequest {
  params: Record<string, string | string[] | undefined>;
  body?: unknown;
  headers: Record<string, string | string[] | undefined>;
}

export interface RouteRequirement {
  /** The integration this route belongs to, matched against the token's `authorization_details[].type`. Required. */
  integration: string;
  /**
   * The one scope this route needs, or how to derive it from the request (a database gateway needs
   * `select:<table>` for the table in the path). Required.
   */
  scope: string | ((req: RouteRequest) => string);
  /**
   * The record this request touches, e.g. `(req) => ({ type: 'customer', id: String(req.params['id']) })`.
   * A token bound to a record is refused when this returns another record or none. Default: no record.
   */
  record?: (req: RouteRequest) => ResourceRef | undefined;
}

/**
 * The middleware of one route. Its request type names only the headers it reads (`rawHeaders` to see several
 * `Authorization` headers: Node keeps the first), so it leaves express's
 * inference of the route's parameter types to the path and the other handlers.
 */
export type ResourceMiddleware = (
  req: { headers: { authorization?: string | undefined }; rawHeaders?: readonly string[] },
  res: ResourceResponse,
  next: (err?: unknown) => void,
) => Promise<void>;

/** Builds the middleware for each route: `app.post(path, requireToken({ integration, scope, record }), handler)`. */
export type RequireToken = (route: RouteRequirement) => ResourceMiddleware;

/** What `createResourceServerAuth` returns: `requireToken` itself, with the usage reporter (if any) beside it. */
export interface ResourceServerAuth extends RequireToken {
  /**
   * The usage reporter with `reportUsage`, else undefined: `stats()` → `{ queued, sent, dropped, failed }`,
   * `flush()` sends what is queued now, `close()` too and stops reporting.
   */
  readonly usage: UsageReporting | undefined;
  /** Sends the reports still queued and stops reporting (nothing to do without `reportUsage`). Never rejects. */
  close(): Promise<void>;
}

const CLAIMS = 'agentPdpAccessToken';

export function createResourceServerAuth(options: ResourceServerAuthOptions): ResourceServerAuth {
  const { issuer, audience, pdp, introspect = false, clockTolerance, reportUsage = false } = options ?? {};
  for (const [name, value] of [['issuer', issuer], ['audience', audience]] as const) {
    if (typeof value !== 'string' || value === '') throw new TypeError(`createResourceServerAuth: "${name}" must be a non-empty string`);
  }
  if (introspect && pdp === undefined) throw new TypeError('createResourceServerAuth: "introspect" needs "pdp" (a PdpClient with a resource_server key)');
  if (reportUsage !== false && pdp === undefined) throw new TypeError('createResourceServerAuth: "reportUsage" needs "pdp" (a PdpClient with a resource_server key)');
  if (reportUsage !== false && reportUsage !== true && (typeof reportUsage !== 'object' || reportUsage === null)) {
    throw new TypeError('createResourceServerAuth: "reportUsage" must be a boolean or { batchSize, flushMs, maxQueue }');
  }
  const jwks = options.jwks ?? remoteKeys(options.jwksUri ?? pdp?.jwksUri);
  const realm = options.realm ?? audience;
  const usage = reportUsage === false || pdp === undefined ? undefined : new UsageReporter(pdp, reportUsage === true ? {} : reportUsage);

  const requireToken = (route: RouteRequirement): ResourceMiddleware => {
    checkRoute(route);
    const { integration, record } = route;
    return async (req, res, next) => {
      let scope: string;
      let resource: ResourceRef | undefined;
      try {
        const view = req as RouteRequest;
        scope = typeof route.scope === 'function' ? route.scope(view) : route.scope;
        resource = record?.(view);
      } catch (err) {
        return next(err);
      }
      const challenge = { realm, scope };
      const bearer = readBearer(req.headers.authorization, authorizationHeaders(req.rawHeaders ?? []));
      if ('missing' in bearer) return refuse(res, 'token_missing', 'an access token is required (Authorization: Bearer)', { realm });
      if ('malformed' in bearer) return refuse(res, 'token_malformed', 'the request must carry one Authorization header: "Bearer" and one token', challenge);
      const token = bearer.token;
      let claims: AccessTokenClaims;
      try {
        claims = await verifyAccessToken(token, {
          jwks, issuer, audience, integration, scope,
          ...(resource === undefined ? {} : { resource }),
          ...(clockTolerance === undefined ? {} : { clockTolerance }),
        });
      } catch (err) {
        if (isTokenVerificationError(err)) return refuse(res, err.code, err.message, challenge);
        return next(err);
      }
      if (introspect && pdp !== undefined) {
        try {
          const state = await pdp.introspect(token);
          if (!state.active || state.jti !== claims.jti) {
            return refuse(res, 'token_inactive', 'the access token has been revoked or its task is closed', challenge);
          }
        } catch (err) {
          if (isPepError(err)) return refuse(res, err.code === 'pdp_error' ? 'pdp_error' : 'pdp_unavailable', err.message, challenge);
          return next(err);
        }
      }
      res.locals[CLAIMS] = claims;
      // Queued only (never awaited, never thrown): the request goes on at once whatever becomes of the report.
      usage?.report({
        jti: claims.jti,
        scope,
        integration,
        record: resource === undefined ? null : { type: resource.type, id: resource.id },
        route: routeTemplate(req),
        used_at: new Date().toISOString(),
      });
      next();
    };
  };
  return Object.assign(requireToken, {
    usage,
    close: async (): Promise<void> => {
      await usage?.close();
    },
  });
}

/**
 * The route template express matched (`req.route.path`, e.g. `/customers/:id`), never the request's path; null when
 * there is none to read (a router-level `app.use`, a RegExp or array route). A mounted router's prefix
 * (`req.baseUrl`) is a concrete path, so it is not added.
 */
function routeTemplate(req: unknown): string | null {
  try {
    const path = (req as { route?: { path?: unknown } } | null)?.route?.path;
    return typeof path === 'string' ? path : null;
  } catch {
    return null;
  }
}

/** The claims of the token the middleware accepted for this request. Throws if it did not run. */
export function accessTokenClaims(res: { locals: Record<string, unknown> }): AccessTokenClaims {
  const claims = res.locals[CLAIMS] as AccessTokenClaims | undefined;
  if (claims === undefined) throw new TypeError('accessTokenClaims: no access token was accepted for this request (is the middleware mounted?)');
  return claims;
}

function remoteKeys(uri: string | undefined): JWTVerifyGetKey {
  if (typeof uri !== 'string') throw new TypeError('createResourceServerAuth: give "jwksUri", "jwks" or "pdp"');
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new TypeError('createResourceServerAuth: "jwksUri" is not a URL');
  }
  return createRemoteJWKSet(url);
}

function checkRoute(route: RouteRequirement): void {
  if (typeof route?.integration !== 'string' || route.integration === '') throw new TypeError('requireToken: "integration" must be a non-empty string');
  if (typeof route.scope !== 'function' && (typeof route.scope !== 'string' || route.scope === '')) {
    throw new TypeError('requireToken: "scope" must be a non-empty string or a function of the request');
  }
  if (route.record !== undefined && typeof route.record !== 'function') throw new TypeError('requireToken: "record" must be a function of the request');
}
