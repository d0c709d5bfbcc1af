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
 */
import { createRemoteJWKSet } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import type { AccessTokenClaims, ResourceRef } from '../issuer/token-claims.js';
import { isTokenVerificationError } from '../issuer/verification-error.js';
import { verifyAccessToken } from '../issuer/verify-access-token.js';
import type { PdpClient } from './pdp-client.js';
import { isPepError } from './pep-error.js';
import { refuse, type ResourceResponse } from './resource-refusal.js';

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
 * The middleware of one route. Its request type names only the header it reads, so it leaves express's
 * inference of the route's parameter types to the path and the other handlers.
 */
export type ResourceMiddleware = (
  req: { headers: { authorization?: string | undefined } },
  res: ResourceResponse,
  next: (err?: unknown) => void,
) => Promise<void>;

/** Builds the middleware for each route: `app.post(path, requireToken({ integration, scope, record }), handler)`. */
export type RequireToken = (route: RouteRequirement) => ResourceMiddleware;

const CLAIMS = 'agentPdpAccessToken';

/** RFC 6750 §2.1 `b64token`, with any amount of space after the scheme (which is case-insensitive). */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

export function createResourceServerAuth(options: ResourceServerAuthOptions): RequireToken {
  const { issuer, audience, pdp, introspect = false, clockTolerance } = options ?? {};
  for (const [name, value] of [['issuer', issuer], ['audience', audience]] as const) {
    if (typeof value !== 'string' || value === '') throw new TypeError(`createResourceServerAuth: "${name}" must be a non-empty string`);
  }
  if (introspect && pdp === undefined) throw new TypeError('createResourceServerAuth: "introspect" needs "pdp" (a PdpClient with a resource_server key)');
  const jwks = options.jwks ?? remoteKeys(options.jwksUri ?? pdp?.jwksUri);
  const realm = options.realm ?? audience;

  return (route: RouteRequirement): ResourceMiddleware => {
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
      const header = req.headers.authorization;
      if (header === undefined || header === '') return refuse(res, 'token_missing', 'an access token is required', { realm });
      const token = BEARER.exec(header)?.[1];
      if (token === undefined) return refuse(res, 'token_invalid', 'the Authorization header is not a Bearer token', challenge);
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
      next();
    };
  };
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
