import { COMPONENT_SCHEMAS } from './openapi-schemas.js';
import type { OperationDoc, Route } from './route.js';

/**
 * The OpenAPI 3.1 document of the whole HTTP API, served at GET /openapi.json, built from the route table: each
 * route contributes its own operation; this adds what the pipeline does to every route alike (security, the
 * errors of authentication, roles, bodies and path or query parameters).
 */
export function openApiDocument(serverUrl: string, routes: readonly Route[]): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const route of routes) {
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'agent-pdp',
      version: '1',
      description:
        'Policy decision point and scoped-token broker for AI agents. Every decision is durably recorded before it is returned. ' +
        'Every answer carries an `X-Request-ID` header: the request\'s own when it sent one (up to 256 printable ASCII characters; AuthZEN requires the echo), else a new UUID.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'API key of a configured caller' },
        consoleSession: {
          type: 'apiKey',
          in: 'cookie',
          name: 'agentpdp_console',
          description:
            "A web console session (POST /console/session), sent without an Authorization header: the caller's auditor, approver and admin roles only; a state change must also send X-CSRF-Token. Named __Host-agentpdp_console when served over TLS (docs/console.md).",
        },
        clientSecretBasic: {
          type: 'http',
          scheme: 'basic',
          description: 'OAuth endpoints: RFC 6749 §2.3.1 client_secret_basic (client id = caller id, secret = its API key); client_secret_post (the same two in the form body) is accepted too',
        },
      },
      schemas: COMPONENT_SCHEMAS,
    },
    paths,
  };
}

function operation(route: Route): OperationDoc & { security: object[] } {
  const doc = route.openapi;
  if (route.roles === 'public') return { ...doc, security: [] };
  const pipeline: Record<string, object> = { '401': errorResponse(401), '403': errorResponse(403) };
  const parameters = (doc.parameters ?? []) as Array<{ in?: string }>;
  if (route.body !== undefined || parameters.some((p) => p.in === 'path' || p.in === 'query')) pipeline['400'] = errorResponse(400);
  // AuthZEN's binding answers a body of another media type with a 400 (which is documented already).
  if (route.body !== undefined && route.errors !== 'authzen') pipeline['415'] = errorResponse(415);
  const responses = sortedByStatus({ ...pipeline, ...doc.responses });
  if (route.errors === 'opa') {
    // OPA's data API answers OPA's error body (ours inside it, as pdp_error).
    for (const [status, response] of Object.entries(responses)) {
      if (Number(status) >= 400) responses[status] = { ...response, content: { 'application/json': { schema: ref('OpaError') } } };
    }
  }
  if (route.errorPage !== undefined) {
    // A route a browser form posts to answers every refusal (4xx) as its page; a 5xx stays our Error body.
    for (const [status, response] of Object.entries(responses)) {
      const code = Number(status);
      if (code >= 400 && code < 500) responses[status] = { ...response, content: { 'text/html': { schema: { type: 'string' } } } };
    }
  }
  if (route.oauth) {
    // A form-encoded (OAuth client's) request gets RFC 6749 §5.2 errors instead: either body, by request.
    for (const [status, response] of Object.entries(responses)) {
      if (Number(status) >= 400) responses[status] = { ...response, content: { 'application/json': { schema: { oneOf: [ref('Error'), ref('OAuthError')] } } } };
    }
  }
  return {
    ...doc,
    summary: `${doc.summary} (role ${route.roles.join(', ')})`,
    // A formKey route's credential is a form field (no security scheme of OpenAPI's describes it): none here, its
    // description says so.
    security: route.oauth ? [{ apiKey: [] }, { clientSecretBasic: [] }] : route.formKey ? [] : [{ apiKey: [] }, { consoleSession: [] }],
    responses,
  };
}

function sortedByStatus(responses: Record<string, object>): Record<string, object> {
  return Object.fromEntries(Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)));
}

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });

/** `content` of a JSON response or request body whose schema is a component. */
export const json = (ref: string): Record<string, { schema: { $ref: string } }> => ({
  'application/json': { schema: { $ref: `#/components/schemas/${ref}` } },
});

const ERROR_TEXT: Record<number, string> = {
  400: 'malformed request: code invalid_request or body_too_large, details name the offending fields',
  401: 'no or unknown API key (code unauthenticated)',
  403: 'role or agent not permitted (forbidden_role, forbidden_agent, context_assertion_forbidden, decision_wrong_caller; csrf_failed for a console session without its CSRF token)',
  404: 'not found',
  409: 'conflict with the current state',
  415: 'unsupported body encoding or charset (code unsupported_media_type)',
  422: 'policy set refused (policy_invalid) or config refused (config_refused)',
  502: 'a provider integration\'s provider could not mint its credential (provider_failed): nothing was issued, the decision stays unredeemed',
  503: 'no policy, evaluation failure or store failure: nothing was allowed',
};

/** An error response: the Error body, with a description (default: what the status means here). */
export function errorResponse(status: number, description?: string): object {
  return { description: description ?? ERROR_TEXT[status] ?? 'error', content: json('Error') };
}

/** The error responses of these statuses, keyed by status. */
export function errors(...statuses: number[]): Record<string, object> {
  return Object.fromEntries(statuses.map((s) => [String(s), errorResponse(s)]));
}

export const NO_STORE_HEADER = { 'cache-control': { description: 'no-store', schema: { type: 'string' } }, pragma: { description: 'no-cache (RFC 6749 §5.1)', schema: { type: 'string' } } };
