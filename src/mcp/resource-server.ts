/**
 * The resource-server side of a remote MCP server behind agent-pdp's issuer, as the MCP authorization spec asks of
 * one: it publishes RFC 9728 protected-resource metadata naming agent-pdp as its authorization server, and it lets
 * an MCP request through only with one of our access tokens whose audience is this server's resource URI (RFC 8707).
 *
 * The SDK's own pieces do the HTTP: `requireBearerAuth` reads the header, answers 401 with
 * `WWW-Authenticate: Bearer error=..., resource_metadata="<metadataUrl>"` and sets `req.auth`, which the Streamable
 * HTTP transport hands to every handler as `extra.authInfo`; `metadataHandler` serves the document (GET and OPTIONS,
 * any origin, as the SDK serves its own). Ours is the verifier behind them: the PEP SDK's `verifyResourceToken` (every check of a request's token but the
 * grant's: signature, type, issuer, audience, time).
 *
 * This checks who is calling, not what they may do: any valid token for this audience opens the session. Each
 * `tools/call` is the guard's to decide (`mcp-guard.ts`); `authInfo.extra` carries the agent and task it needs.
 */
import { requireBearerAuth } from '@modelcontextprotocol/sdk/server/auth/middleware/bearerAuth.js';
import { InvalidTokenError, ServerError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { metadataHandler } from '@modelcontextprotocol/sdk/server/auth/handlers/metadata.js';
import type { OAuthTokenVerifier } from '@modelcontextprotocol/sdk/server/auth/provider.js';
import { getOAuthProtectedResourceMetadataUrl } from '@modelcontextprotocol/sdk/server/auth/router.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { OAuthProtectedResourceMetadataSchema, type OAuthProtectedResourceMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, createRemoteJWKSet } from 'jose';
import type { JSONWebKeySet, JWTVerifyGetKey } from 'jose';
import {
  authorizationHeaders,
  isPepError,
  isTokenVerificationError,
  readBearer,
  verifyResourceToken,
  type AccessTokenClaims,
  type PdpClient,
} from '../pep/index.js';

export interface McpResourceServerOptions {
  /**
   * The MCP server's canonical resource URI (RFC 8707), e.g. `https://crm-mcp.example.com/mcp`: the `aud` its tokens
   * must carry, exactly (the issuer's `issuer.audiences` maps the integration to it). An absolute URL without query
   * or fragment. Required.
   */
  resource: string;
  /** agent-pdp's issuer identifier: the `iss` tokens must carry, and the metadata's authorization server. Required. */
  issuer: string;
  /**
   * A client of the PDP: its JWKS (`pdp.jwksUri`) when neither `jwksUri` nor `jwks` is given, and introspection.
   * Its API key must have role `resource_server` (or `pep`) when `introspect` is true. Default: none.
   */
  pdp?: PdpClient;
  /** The issuer's JWKS URL, fetched and cached by jose. Default: `pdp.jwksUri`. */
  jwksUri?: string;
  /** The issuer's keys given here instead of fetched: a JWKS document, or a key resolver (`createLocalJWKSet`). */
  jwks?: JSONWebKeySet | JWTVerifyGetKey;
  /** RFC 9728 `scopes_supported`. Default: left out. */
  scopesSupported?: string[];
  /** RFC 9728 `resource_name`, for people. Default: left out. */
  resourceName?: string;
  /** RFC 9728 `resource_documentation`, a URL. Default: left out. */
  resourceDocumentation?: string;
  /**
   * Also ask the PDP (RFC 7662) whether each token is still active, so a revoked token, or one of a completed task,
   * is refused before it expires. Needs `pdp`. Default false: a JWT alone cannot know it was revoked.
   */
  introspect?: boolean;
  /** Stateful sessions remembered with the agent and task that opened them; the oldest past this is forgotten. Default 100000. */
  maxSessions?: number;
}

/**
 * An express-compatible middleware, typed without express so that `agent-pdp/mcp`'s declarations need no
 * `@types/express` (the handlers are the MCP SDK's express middleware: mount them with `app.use` / `app.post`).
 */
export type Middleware = (req: IncomingMessage & { auth?: AuthInfo }, res: ServerResponse, next: (err?: unknown) => void) => void;

export interface McpResourceServer {
  /** The RFC 9728 document: `resource`, `authorization_servers: [issuer]`, `bearer_methods_supported: ['header']`, ... */
  readonly metadata: Readonly<OAuthProtectedResourceMetadata>;
  /** Where RFC 9728 §3.1 puts the document for this resource: `/.well-known/oauth-protected-resource/mcp`. */
  readonly metadataPath: string;
  /** The document's absolute URL, which every 401 names in `resource_metadata`. */
  readonly metadataUrl: string;
  /**
   * The SDK's metadata handler (GET, OPTIONS, CORS for any origin) for this document. It answers at the path it is
   * mounted on, so mount it at `metadataPath`: `app.use(rs.metadataPath, rs.metadataHandler())`.
   */
  metadataHandler(): Middleware;
  /**
   * Middleware for the MCP endpoint: 401 with `WWW-Authenticate: Bearer error="invalid_token", error_description=...,
   * resource_metadata="<metadataUrl>"` without a token or with one that is not valid here; else sets `req.auth`.
   */
  requireToken(): Middleware;
  /** The verifier behind `requireToken` (the SDK's `OAuthTokenVerifier`): a token → its `AuthInfo`, or a refusal. */
  verifyAccessToken(token: string): Promise<AuthInfo>;
}

/** What `authInfo.extra` holds for a token of ours. */
export interface AgentPdpAuthExtra {
  /** The agent the token was issued for (`sub`). */
  agentId: string;
  /** The registered task it was issued under (`task_id`). */
  taskId: string;
  /** The decision it redeems (`decision_id`). */
  decisionId: string;
  /** The token's id (`jti`). */
  jti: string;
  /** The integration of its grant (`authorization_details[0].type`). */
  integration: string;
}

/** Generic on purpose: a 5xx concerns this server and the PDP, not the caller's token. */
const UNCHECKED = 'the access token could not be checked; nothing was allowed';

export function mcpResourceServer(options: McpResourceServerOptions): McpResourceServer {
  const { resource, issuer, pdp, introspect = false } = options ?? ({} as McpResourceServerOptions);
  const resourceUrl = checkResource(resource);
  if (typeof issuer !== 'string' || issuer === '') throw new TypeError('mcpResourceServer: "issuer" must be a non-empty string');
  if (introspect && pdp === undefined) throw new TypeError('mcpResourceServer: "introspect" needs "pdp" (a PdpClient with a resource_server key)');
  const jwks = keyResolver(options);

  const metadata = Object.freeze(
    checkMetadata({
      resource,
      authorization_servers: [issuer],
      bearer_methods_supported: ['header'],
      ...(options.scopesSupported === undefined ? {} : { scopes_supported: [...options.scopesSupported] }),
      ...(options.resourceName === undefined ? {} : { resource_name: options.resourceName }),
      ...(options.resourceDocumentation === undefined ? {} : { resource_documentation: options.resourceDocumentation }),
    }),
  );
  const metadataUrl = getOAuthProtectedResourceMetadataUrl(resourceUrl);
  const metadataPath = new URL(metadataUrl).pathname;

  const sessions = new SessionBindings(options.maxSessions ?? 100_000);

  async function verify(token: string): Promise<AuthInfo> {
    let claims: AccessTokenClaims;
    try {
      claims = await verifyResourceToken(token, { jwks, issuer, audience: resource });
    } catch (err) {
      if (!isTokenVerificationError(err)) throw err;
      if (err.status === 503) throw new ServerError(UNCHECKED);
      throw new InvalidTokenError(`${headerSafe(err.message)} (${err.code})`);
    }
    if (introspect && pdp !== undefined) {
      let active: boolean;
      try {
        const state = await pdp.introspect(token);
        active = state.active && state.jti === claims.jti;
      } catch (err) {
        if (isPepError(err)) throw new ServerError(UNCHECKED);
        throw err;
      }
      if (!active) throw new InvalidTokenError('the access token has been revoked or its task is closed (token_inactive)');
    }
    return authInfo(token, claims);
  }

  return {
    metadata,
    metadataPath,
    metadataUrl,
    metadataHandler: () => metadataHandler(metadata) as unknown as Middleware,
    requireToken: () => {
      // `expectedResource` repeats the audience check in the SDK's looser form (a trailing slash aside); ours is exact.
      const bearer = requireBearerAuth({ verifier: { verifyAccessToken: verify } satisfies OAuthTokenVerifier, resourceMetadataUrl: metadataUrl, expectedResource: resourceUrl }) as unknown as Middleware;
      return (req, res, next) => {
        // The header is read as the proxy and the resource-server middleware read it: the SDK would take `Bearer a b`
        // as token a, and the first of several Authorization headers.
        const header = readBearer(req.headers.authorization, authorizationHeaders(req.rawHeaders ?? []));
        if ('malformed' in header) return void malformedBearer(res, metadataUrl);
        return bearer(req, res, (err) => (err === undefined ? sessions.check(req, res, next) : next(err)));
      };
    },
    verifyAccessToken: verify,
  };
}

/** A 401 as the SDK's bearer middleware writes one (challenge with the metadata URL, OAuth error body). */
function malformedBearer(res: ServerResponse, metadataUrl: string): void {
  const error = new InvalidTokenError('the request must carry one Authorization header: "Bearer" and one token (token_malformed)');
  res.statusCode = 401;
  res.setHeader('www-authenticate', `Bearer error="${error.errorCode}", error_description="${error.message.replace(/"/g, "'")}", resource_metadata="${metadataUrl}"`);
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(error.toResponseObject()));
}

/**
 * A stateful Streamable HTTP session belongs to the agent and task whose token opened it. The transport only
 * compares session ids, so without this any valid token for this server could use another agent's session id:
 * read its SSE stream, replay its events, answer its server-to-client requests. A session id is bound when the
 * transport answers the request that created it (the `Mcp-Session-Id` header of that answer); a request naming a
 * session bound to another agent or task, or one this server never saw start, is answered as an unknown session
 * is (404, JSON-RPC -32001), saying nothing about whose it is. Stateless servers send no session id: nothing to bind.
 */
class SessionBindings {
  readonly #owners = new Map<string, string>();
  constructor(readonly max: number) {}

  check(req: IncomingMessage & { auth?: AuthInfo }, res: ServerResponse, next: (err?: unknown) => void): void {
    const extra = req.auth?.extra as Partial<AgentPdpAuthExtra> | undefined;
    const owner = JSON.stringify([extra?.agentId ?? null, extra?.taskId ?? null]);
    const named = req.headers['mcp-session-id'];
    if (typeof named === 'string') {
      if (this.#owners.get(named) !== owner) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
        return;
      }
      if (req.method === 'DELETE') res.once('finish', () => res.statusCode < 300 && this.#owners.delete(named));
      next();
      return;
    }
    // No session named: this request may create one. Bind the id the transport answers with.
    const writeHead = res.writeHead;
    const bind = (id: unknown): void => {
      if (typeof id !== 'string' || id === '') return;
      this.#owners.delete(id);
      this.#owners.set(id, owner);
      if (this.#owners.size > this.max) this.#owners.delete(this.#owners.keys().next().value as string);
    };
    res.writeHead = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
      bind(res.getHeader('mcp-session-id') ?? sessionHeaderIn(args));
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse['writeHead'];
    next();
  }
}

/** `Mcp-Session-Id` among `writeHead`'s headers (an object, or a flat [name, value, ...] array), if there. */
function sessionHeaderIn(args: unknown[]): unknown {
  const headers = args.find((a, i) => i > 0 && typeof a === 'object' && a !== null);
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'mcp-session-id') return headers[i + 1];
    return undefined;
  }
  if (headers === undefined) return undefined;
  for (const [name, value] of Object.entries(headers as Record<string, unknown>)) if (name.toLowerCase() === 'mcp-session-id') return value;
  return undefined;
}

/** The `AuthInfo` of a verified token; the guard reads `extra` (`AgentPdpAuthExtra`). */
function authInfo(token: string, claims: AccessTokenClaims): AuthInfo {
  const extra: AgentPdpAuthExtra = {
    agentId: claims.sub,
    taskId: claims.task_id,
    decisionId: claims.decision_id,
    jti: claims.jti,
    integration: claims.authorization_details[0]!.type,
  };
  return {
    token,
    clientId: claims.client_id,
    scopes: claims.scope.split(' '),
    expiresAt: claims.exp,
    resource: new URL(claims.aud),
    extra: { ...extra },
  };
}

/** RFC 8707 §2: an absolute URI without a fragment; no query either, since RFC 9728 §3.1 paths could not carry it. */
function checkResource(resource: unknown): URL {
  if (typeof resource !== 'string' || resource === '') throw new TypeError('mcpResourceServer: "resource" must be a non-empty string');
  let url: URL;
  try {
    url = new URL(resource);
  } catch {
    throw new TypeError('mcpResourceServer: "resource" must be an absolute URL (the MCP endpoint, e.g. https://mcp.example.com/mcp)');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('mcpResourceServer: "resource" must be an http(s) URL');
  if (resource.includes('#') || resource.includes('?')) throw new TypeError('mcpResourceServer: "resource" must have no query and no fragment');
  return url;
}

/** The SDK's own schema of the document, so a bad `resourceName` or scope list fails here and not in a client. */
function checkMetadata(document: OAuthProtectedResourceMetadata): OAuthProtectedResourceMetadata {
  const parsed = OAuthProtectedResourceMetadataSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new TypeError(`mcpResourceServer: the protected-resource metadata is invalid at "${issue?.path.join('.') ?? ''}": ${issue?.message ?? ''}`);
  }
  return document;
}

function keyResolver(options: McpResourceServerOptions): JWTVerifyGetKey {
  const { jwks, jwksUri, pdp } = options;
  if (typeof jwks === 'function') return jwks;
  if (jwks !== undefined) {
    if (!Array.isArray((jwks as JSONWebKeySet | null)?.keys)) throw new TypeError('mcpResourceServer: "jwks" must be a JWKS ({ keys: [...] }) or a key resolver');
    return createLocalJWKSet(jwks);
  }
  const uri = jwksUri ?? pdp?.jwksUri;
  if (uri === undefined) throw new TypeError('mcpResourceServer: give "pdp", "jwksUri" or "jwks"');
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new TypeError('mcpResourceServer: "jwksUri" is not a URL');
  }
  return createRemoteJWKSet(url);
}

/** The SDK writes the message into a quoted-string of `WWW-Authenticate` unescaped: printable ASCII, no `"` or `\`. */
function headerSafe(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');
}
