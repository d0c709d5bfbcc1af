import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { CallerConfig, CallerRole } from '../config/config-types.js';
import type { BodyMedia } from './body-reader.js';

/**
 * One row of the route table (`route-table.ts`): everything the request pipeline needs to serve a route and
 * everything the OpenAPI document says about it. The router and the document are both built from these rows,
 * so a served route is a documented route by construction.
 */
export type Route = AuthenticatedRoute<never> | PublicRoute;

interface RouteBase {
  method: 'GET' | 'POST';
  /** Path template, OpenAPI style: `/v1/tasks/{id}`. Matched literally, case-sensitively, without a trailing slash. */
  path: string;
  /**
   * The template's last parameter takes the rest of the path, slashes included (`/v1/data/{path}` matches
   * `/v1/data/a/b/c`, and `/v1/data` with an empty one), handed over raw: not percent-decoded and with any empty
   * segment kept, since decoding would turn an encoded slash into a real one. The route validates it. Default: a
   * parameter is one non-empty segment, percent-decoded.
   */
  tail?: true;
  /** The operation object of the OpenAPI document, minus what the pipeline adds (security, common errors). */
  openapi: OperationDoc;
}

/** A route any caller with a configured API key of one of `roles` may use. */
export interface AuthenticatedRoute<B> extends RouteBase {
  roles: readonly CallerRole[];
  /**
   * An OAuth endpoint (token, introspection, revocation): the client authenticates as RFC 6749 §2.3.1 allows (the
   * API key as a bearer credential, `client_secret_basic` or `client_secret_post`, so the body is read before the
   * role gate); a form-encoded request is answered in the OAuth dialect (RFC 6749 §5.2 errors) and its unknown
   * parameters are ignored. A JSON request keeps our API's shapes.
   */
  oauth?: true;
  /**
   * The API key comes in the form body's `api_key` field (an HTML form cannot set `Authorization`): the body is read
   * (within the same limits) before the caller, and a request with an `Authorization` header is refused as
   * malformed (one credential per request). Only the approval page's POST uses it.
   */
  formKey?: true;
  /**
   * The error dialect of a route that speaks another API's protocol. `authzen`: our error body with the AuthZEN
   * HTTPS binding's statuses (a body that is not JSON is a 400, not a 415). `opa`: OPA's REST API error body (`{
   * code, message, errors? }`, OPA's codes) with ours kept whole in `pdp_error`, so OPA clients read the refusal.
   * Default: ours alone.
   */
  errors?: 'authzen' | 'opa';
  /**
   * A route a browser form posts to (the approval page's): its refusals (4xx), those of the pipeline included (the
   * key, the role, a malformed form), are answered as the page this renders, with its headers, rather than as JSON.
   */
  errorPage?: (status: number, code: string, message: string) => { text: string; contentType: string; headers: Record<string, string> };
  /** Reads a body (after the role gate, or before it on an OAuth endpoint) and validates it; absent when the route takes none. */
  body?: BodySpec<B>;
  handle(ctx: RequestContext<B>): Promise<Reply> | Reply;
}

/** A route served without credentials (discovery, health, the OpenAPI document). */
export interface PublicRoute extends RouteBase {
  roles: 'public';
  handle(ctx: PublicContext): Promise<Reply> | Reply;
}

export interface BodySpec<B> {
  /** The media types read; any other reads as no body, which `parse` refuses as missing. */
  media: readonly BodyMedia[];
  /** Validates the parsed body, throwing `invalid_request` naming each offending field. */
  parse(body: unknown): B;
  /** Validates a form body when it has rules of its own (an OAuth request: unknown parameters ignored). Default `parse`. */
  parseForm?(fields: unknown): B;
  /**
   * The body may be left out, meaning its defaults. A body sent in another media type is then refused (415), never
   * read as none: `{"dry_run":true}` sent as a form would otherwise be a real apply.
   */
  optional?: boolean;
}

/**
 * What every route is handed. The pipeline builds an authenticated route's context as `{ caller, body, dialect,
 * credential, ..., ...base }` (the spread last: docs/architecture.md, "Following one request"), so this type must
 * never have a key of those names: it would override the authenticated caller.
 */
export interface PublicContext {
  requestId: string;
  /** The trace id of a valid W3C `traceparent` header, else null. */
  traceId: string | null;
  /** Path parameters, percent-decoded. */
  params: Readonly<Record<string, string>>;
  /** Query parameters; a repeated one is an array. */
  query: Readonly<Record<string, string | string[]>>;
  /** The peer's address, when known (a console sign-in records it). */
  ip?: string;
  /** The request's headers (lower-case names), for the few a route reads itself (`Idempotency-Key`). */
  headers: Readonly<IncomingHttpHeaders>;
  /** What the access log line (and an authorisation refusal's audit event) of this request names besides the basics. */
  log: { decisionId?: string; agentId?: string };
}

export interface RequestContext<B> extends PublicContext {
  caller: CallerConfig;
  body: B;
  /** `oauth` for a form-encoded request to an OAuth endpoint (RFC 6749 answers), else `pdp` (our API's). */
  dialect: 'pdp' | 'oauth';
  /**
   * How the caller authenticated: its API key, or a web console session's cookie (src/console/; the caller's roles
   * then narrowed to the console's, and a POST checked against the session's CSRF token).
   */
  credential: 'api_key' | 'session';
  /** The console session, when `credential` is `session`: its id (the cookie's value), CSRF token and end. */
  session?: { id: string; csrfToken: string; expiresAt: string };
}

/** What a handler answers. A thrown error becomes the Error body of `error-writer.ts` instead. */
export type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | { status: number; text: string; contentType: string; headers?: Record<string, string> }
  | { status: number; bytes: Buffer; contentType: string; headers?: Record<string, string> }
  | { status: number; empty: true; headers?: Record<string, string> }
  | {
      status: number;
      headers: Record<string, string>;
      /** Writes the body (with backpressure) and ends it; a failure after the first byte cuts the response. */
      stream(res: ServerResponse): Promise<void>;
    };

/** The parts of an OpenAPI 3.1 operation a route declares. */
export interface OperationDoc {
  operationId: string;
  summary: string;
  description?: string;
  parameters?: readonly object[];
  requestBody?: object;
  responses: Record<string, object>;
}

/** Declares an authenticated route with its body type checked against its handler. */
export function route<B = undefined>(r: AuthenticatedRoute<B>): Route {
  return r as unknown as Route;
}

export function publicRoute(r: Omit<PublicRoute, 'roles'>): Route {
  return { ...r, roles: 'public' };
}

/**
 * A JSON body that may be left out (its defaults: `parse({})`); one sent in another media type is a 415, never read
 * as left out.
 */
export function optionalJsonBody<B>(parse: (body: unknown) => B): BodySpec<B> {
  return { media: ['json'], optional: true, parse: (body) => parse(body ?? {}) };
}
