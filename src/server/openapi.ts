import { decisionRequestSchema, ID_PATTERN, resourceSchema, taskRegistrationSchema } from '../wire/decision-v1.js';
import { AUDIT_OPENAPI } from './routes/audit.js';

/**
 * The OpenAPI 3.1 document of the whole HTTP API, served at GET /openapi.json. Request schemas are the very
 * objects the server validates with; response schemas are checked against real responses in the tests.
 */
const strip = <T extends object>(schema: T): Omit<T, '$id'> => {
  const { $id: _id, ...rest } = schema as T & { $id?: string };
  return rest;
};

const reason = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'message'],
  properties: { code: { type: 'string' }, message: { type: 'string' } },
};

const schemas = {
  DecisionRequestV1: strip(decisionRequestSchema),
  DecisionResponseV1: {
    type: 'object',
    additionalProperties: false,
    required: [
      'decision_id', 'allow', 'outcome', 'agent_id', 'integration', 'granted_scopes', 'denied_scopes', 'reasons',
      'token_ttl_seconds', 'resource', 'task_id', 'policy_revision', 'redeemable_until',
    ],
    properties: {
      decision_id: { type: 'string', description: 'a UUIDv7 (RFC 9562): time-ordered, otherwise opaque to callers' },
      allow: { type: 'boolean', description: 'true only when outcome is allow' },
      outcome: { enum: ['allow', 'deny', 'undefined'] },
      agent_id: { type: 'string' },
      integration: { type: 'string' },
      granted_scopes: { type: 'array', items: { type: 'string' } },
      denied_scopes: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['scope', 'reason'],
          properties: {
            scope: { type: 'string' },
            reason: { enum: ['deny_scope', 'capped', 'above_ceiling', 'task_type', 'record_binding'] },
            granted_instead: { type: 'array', items: { type: 'string' } },
          },
        },
      },
      reasons: { type: 'array', items: { $ref: '#/components/schemas/Reason' } },
      token_ttl_seconds: { type: 'integer', minimum: 0 },
      resource: { oneOf: [{ $ref: '#/components/schemas/ResourceRef' }, { type: 'null' }] },
      task_id: { type: 'string' },
      policy_revision: { type: 'string', description: '<bundle revision>.<agent-policy revision>' },
      redeemable_until: { type: ['string', 'null'], format: 'date-time' },
    },
  },
  Reason: reason,
  ResourceRef: resourceSchema,
  TaskRegistrationV1: strip(taskRegistrationSchema),
  TaskV1: {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'agent_id', 'type', 'context', 'status', 'registered_by', 'registered_at', 'expires_at', 'completed_at'],
    properties: {
      id: { type: 'string', pattern: ID_PATTERN },
      agent_id: { type: 'string' },
      type: { type: 'string' },
      context: { type: 'object' },
      status: { enum: ['active', 'completed', 'expired'] },
      registered_by: { type: 'string' },
      registered_at: { type: 'string', format: 'date-time' },
      expires_at: { type: 'string', format: 'date-time' },
      completed_at: { type: ['string', 'null'], format: 'date-time' },
      revoked_tokens: { type: 'integer', minimum: 0 },
    },
  },
  Error: {
    type: 'object',
    additionalProperties: false,
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'message', 'details'],
        properties: {
          code: { type: 'string' },
          message: { type: 'string' },
          details: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['path', 'message'],
              properties: {
                path: { type: 'string', description: 'the offending field, dotted (`task.context.customer_id`), or `(body)`' },
                message: { type: 'string' },
                file: { type: 'string', description: 'policy errors: the file, relative to the policy folder' },
                line: { type: 'integer', minimum: 1 },
                column: { type: 'integer', minimum: 1 },
              },
            },
          },
        },
      },
    },
  },
  Ready: {
    type: 'object',
    required: ['status'],
    properties: {
      status: { enum: ['ready', 'not_ready'] },
      policy_revision: { type: 'string' },
      bundle_revision: { type: 'string' },
      policies_revision: { type: 'string' },
      agents: { type: 'integer' },
      loaded_at: { type: 'string', format: 'date-time' },
      reason: { type: 'string' },
    },
  },
  Health: {
    type: 'object',
    additionalProperties: false,
    required: ['status'],
    properties: { status: { const: 'ok' } },
  },
  Reloaded: {
    type: 'object',
    additionalProperties: false,
    required: ['status', 'policy_revision', 'loaded_at'],
    properties: {
      status: { const: 'loaded' },
      policy_revision: { type: 'string' },
      loaded_at: { type: 'string', format: 'date-time' },
    },
  },
  TokenRequest: {
    type: 'object',
    additionalProperties: false,
    required: ['decision_id'],
    properties: { decision_id: { type: 'string', minLength: 1, maxLength: 128, description: 'an allowed, unredeemed decision of this caller' } },
  },
  AuthorizationDetail: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'actions'],
    properties: {
      type: { type: 'string', description: 'the integration' },
      actions: { type: 'array', items: { type: 'string' } },
      identifier: { type: 'string' },
      resource_type: { type: 'string' },
    },
  },
  TokenResponse: {
    type: 'object',
    additionalProperties: false,
    required: ['access_token', 'token_type', 'expires_in', 'scope', 'authorization_details', 'jti'],
    properties: {
      access_token: { type: 'string', description: 'RFC 9068 JWT' },
      token_type: { const: 'Bearer' },
      expires_in: { type: 'integer', minimum: 1 },
      scope: { type: 'string' },
      authorization_details: { type: 'array', items: { $ref: '#/components/schemas/AuthorizationDetail' } },
      jti: { type: 'string' },
    },
  },
  TokenBody: {
    type: 'object',
    additionalProperties: false,
    required: ['token'],
    properties: { token: { type: 'string', minLength: 1, maxLength: 8192 }, token_type_hint: { type: 'string', maxLength: 64 } },
  },
  Introspection: {
    oneOf: [
      { type: 'object', additionalProperties: false, required: ['active'], properties: { active: { const: false } } },
      {
        type: 'object',
        additionalProperties: false,
        required: ['active', 'token_type', 'iss', 'sub', 'aud', 'client_id', 'iat', 'exp', 'jti', 'scope', 'authorization_details', 'task_id', 'decision_id'],
        properties: {
          active: { const: true },
          token_type: { const: 'Bearer' },
          iss: { type: 'string' },
          sub: { type: 'string' },
          aud: { type: 'string' },
          client_id: { type: 'string' },
          iat: { type: 'integer' },
          exp: { type: 'integer' },
          jti: { type: 'string' },
          scope: { type: 'string' },
          authorization_details: { type: 'array', items: { $ref: '#/components/schemas/AuthorizationDetail' } },
          task_id: { type: 'string' },
          decision_id: { type: 'string' },
        },
      },
    ],
  },
  Jwks: {
    type: 'object',
    additionalProperties: false,
    required: ['keys'],
    properties: {
      keys: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['kty', 'crv', 'x', 'kid', 'alg', 'use'],
          properties: {
            kty: { enum: ['OKP', 'EC'] },
            crv: { enum: ['Ed25519', 'P-256'] },
            x: { type: 'string' },
            y: { type: 'string' },
            kid: { type: 'string' },
            alg: { enum: ['EdDSA', 'ES256'] },
            use: { const: 'sig' },
          },
        },
      },
    },
  },
  AuthorizationServerMetadata: {
    type: 'object',
    required: ['issuer', 'jwks_uri', 'token_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'grant_types_supported', 'authorization_details_types_supported'],
    properties: {
      issuer: { type: 'string' },
      jwks_uri: { type: 'string' },
      token_endpoint: { type: 'string' },
      introspection_endpoint: { type: 'string' },
      revocation_endpoint: { type: 'string' },
      response_types_supported: { type: 'array', items: { type: 'string' } },
      grant_types_supported: { type: 'array', items: { type: 'string' } },
      token_endpoint_auth_methods_supported: { type: 'array', items: { type: 'string' } },
      introspection_endpoint_auth_methods_supported: { type: 'array', items: { type: 'string' } },
      revocation_endpoint_auth_methods_supported: { type: 'array', items: { type: 'string' } },
      authorization_details_types_supported: { type: 'array', items: { type: 'string' } },
    },
  },
};

const json = (ref: string) => ({ 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } });
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), { description: ERROR_TEXT[s] ?? 'error', content: json('Error') }]));
const ERROR_TEXT: Record<number, string> = {
  400: 'malformed request: code invalid_request or body_too_large, details name the offending fields',
  415: 'unsupported body encoding or charset (code unsupported_media_type)',
  401: 'no or unknown API key (code unauthenticated)',
  403: 'role or agent not permitted (forbidden_role, forbidden_agent, context_assertion_forbidden, decision_wrong_caller)',
  404: 'not found',
  409: 'conflict with the current state',
  422: 'policy set refused',
  503: 'no policy, evaluation failure or store failure: nothing was allowed',
};
const noStore = { 'cache-control': { description: 'no-store', schema: { type: 'string' } } };
const security = [{ apiKey: [] }];

export function openApiDocument(serverUrl: string): object {
  return {
    openapi: '3.1.0',
    info: {
      title: 'agent-pdp',
      version: '1',
      description:
        'Policy decision point and scoped-token broker for AI agents. Every decision is durably recorded before it is returned.',
    },
    servers: [{ url: serverUrl }],
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'API key of a configured caller' } },
      schemas: { ...schemas, ...AUDIT_OPENAPI.schemas },
    },
    paths: {
      '/v1/decide': {
        post: {
          summary: 'Decide one tool call (role pep)',
          security,
          parameters: [{ name: 'traceparent', in: 'header', required: false, schema: { type: 'string' } }],
          requestBody: { required: true, content: json('DecisionRequestV1') },
          responses: { '200': { description: 'allow, deny or undefined', content: json('DecisionResponseV1') }, ...errors(400, 401, 403, 415, 503) },
        },
      },
      '/v1/tasks': {
        post: {
          summary: 'Register a task with its trusted context (role orchestrator)',
          security,
          requestBody: { required: true, content: json('TaskRegistrationV1') },
          responses: { '201': { description: 'registered', content: json('TaskV1') }, ...errors(400, 401, 403, 409, 415, 503) },
        },
      },
      '/v1/tasks/{id}': {
        get: {
          summary: 'Read a task (roles orchestrator, auditor, admin)',
          security,
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'the task', content: json('TaskV1') }, ...errors(401, 403, 404, 503) },
        },
      },
      '/v1/tasks/{id}/complete': {
        post: {
          summary: 'Complete a task; revokes every token issued for it (role orchestrator)',
          security,
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
          responses: { '200': { description: 'completed', content: json('TaskV1') }, ...errors(400, 401, 403, 404, 409, 415, 503) },
        },
      },
      '/v1/admin/reload': {
        post: {
          summary: 'Reload the bundle and agent policies now (role admin); SIGHUP does the same',
          security,
          responses: { '200': { description: 'loaded', content: json('Reloaded') }, ...errors(400, 401, 403, 415, 422) },
        },
      },
      '/v1/tokens': {
        post: {
          summary: 'Redeem an allowed decision for an access token, once, within its window (role pep)',
          security,
          requestBody: { required: true, content: json('TokenRequest') },
          responses: {
            '201': { description: 'the token; its record committed before it was signed', headers: noStore, content: json('TokenResponse') },
            ...errors(400, 401, 403, 404, 409, 415, 503),
          },
        },
      },
      '/v1/introspect': {
        post: {
          summary: 'RFC 7662 token introspection (roles resource_server, pep)',
          security,
          requestBody: {
            required: true,
            content: { 'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenBody' } }, ...json('TokenBody') },
          },
          responses: { '200': { description: 'active with its claims, or just inactive', headers: noStore, content: json('Introspection') }, ...errors(400, 401, 403, 415, 503) },
        },
      },
      '/v1/revoke': {
        post: {
          summary: 'RFC 7009 token revocation by the caller it was issued to (roles pep, resource_server)',
          security,
          requestBody: {
            required: true,
            content: { 'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenBody' } }, ...json('TokenBody') },
          },
          responses: { '200': { description: 'revoked, or nothing to revoke (RFC 7009 §2.2), empty body' }, ...errors(400, 401, 403, 415, 503) },
        },
      },
      '/.well-known/jwks.json': {
        get: { summary: 'Public signing keys (JWKS)', responses: { '200': { description: 'the key set', content: json('Jwks') } } },
      },
      '/.well-known/oauth-authorization-server': {
        get: { summary: 'RFC 8414 authorization server metadata', responses: { '200': { description: 'metadata', content: json('AuthorizationServerMetadata') } } },
      },
      ...AUDIT_OPENAPI.paths,
      '/healthz': { get: { summary: 'Liveness', responses: { '200': { description: 'alive', content: json('Health') } } } },
      '/readyz': {
        get: {
          summary: 'Readiness and the active policy revision',
          responses: { '200': { description: 'ready', content: json('Ready') }, '503': { description: 'no policy loaded', content: json('Ready') } },
        },
      },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition format' } } } },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1' } } } },
    },
  };
}
