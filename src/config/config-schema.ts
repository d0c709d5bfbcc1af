import { Ajv, type ErrorObject } from 'ajv';
import { CALLER_ROLES, POLICY_SIGNING_ALGORITHM_PATTERN } from './config-types.js';
import { ENTRYPOINT_PATTERN } from '../wire/entrypoint.js';

/** An id of the config (a caller, an approver group, an integration, ...). */
export const CONFIG_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
/** An agent id, or a pattern where `*` stands for any run of characters (a caller's `agents`). */
export const AGENT_ID_PATTERN = '^[A-Za-z0-9*][A-Za-z0-9._*-]{0,127}$';
const id = { type: 'string', pattern: CONFIG_ID_PATTERN };
const envName = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]{0,127}$' };
const seconds = (max: number) => ({ type: 'integer', minimum: 1, maximum: max });

/** JSON Schema of the config file as written (before defaults). Unknown keys are errors: typos must not pass. */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['callers'],
  properties: {
    server: {
      type: 'object',
      additionalProperties: false,
      properties: {
        listen: { type: 'string', pattern: '^[^\\s:]+:[0-9]{1,5}$' },
        body_limit_bytes: { type: 'integer', minimum: 1024, maximum: 10485760 },
        workers: { anyOf: [{ type: 'integer', minimum: 1, maximum: 256 }, { const: 'auto' }] },
      },
    },
    policy: {
      type: 'object',
      additionalProperties: false,
      properties: {
        bundle: { type: 'string', minLength: 1 },
        agents: { type: 'string', minLength: 1 },
        watch: { type: 'boolean' },
        watch_interval_ms: { type: 'integer', minimum: 100, maximum: 600000 },
        allow_insecure_permissions: { type: 'boolean' },
        max_file_bytes: { type: 'integer', minimum: 1024, maximum: 67108864 },
        max_entries_per_file: { type: 'integer', minimum: 100, maximum: 10000000 },
        compiled: { type: 'string', minLength: 1 },
        service: {
          type: 'object',
          additionalProperties: false,
          required: ['url'],
          properties: {
            url: { type: 'string', pattern: '^https?://[^\\s@/]+(/\\S*)?$' },
            token_file: { type: 'string', minLength: 1 },
            min_delay_seconds: { type: 'integer', minimum: 1, maximum: 86400 },
            max_delay_seconds: { type: 'integer', minimum: 1, maximum: 86400 },
            timeout_seconds: { type: 'integer', minimum: 1, maximum: 600 },
            max_bytes: { type: 'integer', minimum: 1024, maximum: 4294967296 },
            persist: { type: 'string', minLength: 1 },
          },
        },
        verification: {
          type: 'object',
          additionalProperties: false,
          required: ['keys'],
          properties: {
            key_id: { type: 'string', minLength: 1 },
            scope: { type: 'string', minLength: 1 },
            keys: {
              type: 'object',
              minProperties: 1,
              additionalProperties: {
                type: 'object',
                additionalProperties: false,
                required: ['algorithm', 'key_file'],
                properties: {
                  algorithm: { type: 'string', pattern: POLICY_SIGNING_ALGORITHM_PATTERN },
                  key_file: { type: 'string', minLength: 1 },
                  scope: { type: 'string', minLength: 1 },
                },
              },
            },
          },
        },
      },
    },
    store: {
      type: 'object',
      additionalProperties: false,
      properties: {
        url: { type: 'string', pattern: '^(sqlite:.+|postgres(ql)?://.+)' },
        synchronous: { enum: ['normal', 'full'] },
        schema: { type: 'string', pattern: '^[a-z_][a-z0-9_]{0,62}$' },
        pool_size: { type: 'integer', minimum: 1, maximum: 100 },
      },
    },
    issuer: {
      type: 'object',
      additionalProperties: false,
      properties: {
        issuer: { type: 'string', pattern: '^https?://[^\\s]+$' },
        keys: { type: 'string', minLength: 1 },
        alg: { enum: ['EdDSA', 'ES256'] },
        redeem_window_seconds: seconds(3600),
        max_token_ttl_seconds: seconds(86400),
        audiences: { type: 'object', additionalProperties: { type: 'string', minLength: 1 } },
      },
    },
    tasks: {
      type: 'object',
      additionalProperties: false,
      properties: { default_ttl_seconds: seconds(604800), max_ttl_seconds: seconds(604800) },
    },
    audit: {
      type: 'object',
      additionalProperties: false,
      properties: {
        // Dotted paths; a segment is a field name, an array index, `*` (any one key) or `**` (any depth).
        mask: { type: 'array', items: { type: 'string', pattern: '^(\\*\\*|\\*|[A-Za-z0-9_-]+)(\\.(\\*\\*|\\*|[A-Za-z0-9_-]+))*$' } },
        mask_key_file: { type: 'string', minLength: 1 },
        retention_days: { anyOf: [{ type: 'integer', minimum: 1, maximum: 36500 }, { type: 'null' }] },
      },
    },
    console: {
      type: 'object',
      additionalProperties: false,
      properties: {
        enabled: { type: 'boolean' },
        session_idle_seconds: { type: 'integer', minimum: 60, maximum: 86400 },
        session_max_seconds: { type: 'integer', minimum: 60, maximum: 604800 },
        secure_cookie: { anyOf: [{ type: 'boolean' }, { const: 'auto' }] },
      },
    },
    authzen: {
      type: 'object',
      additionalProperties: false,
      properties: {
        pdp_url: { type: 'string', pattern: '^https?://[^/\\s?#]+/?$' },
        max_evaluations: { type: 'integer', minimum: 1, maximum: 1000 },
        max_page_size: { type: 'integer', minimum: 1, maximum: 1000 },
        subjects: {
          type: 'object',
          propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$' },
          additionalProperties: {
            type: 'object',
            additionalProperties: false,
            required: ['decision'],
            properties: {
              decision: { type: 'string', pattern: ENTRYPOINT_PATTERN },
              entities: { type: 'string', pattern: ENTRYPOINT_PATTERN },
            },
          },
        },
      },
    },
    escalation: {
      type: 'object',
      additionalProperties: false,
      properties: {
        public_url: { type: 'string', pattern: '^https?://[^\\s]+$' },
        request_window_seconds: seconds(86400),
        pending_ttl_seconds: seconds(604800),
        link_ttl_seconds: seconds(86400),
        link_key_file: { type: 'string', minLength: 1 },
        sweep_interval_ms: { type: 'integer', minimum: 50, maximum: 600000 },
        outbox: {
          type: 'object',
          additionalProperties: false,
          properties: {
            max_attempts: { type: 'integer', minimum: 1, maximum: 100 },
            initial_backoff_ms: { type: 'integer', minimum: 1, maximum: 3600000 },
            max_backoff_ms: { type: 'integer', minimum: 1, maximum: 86400000 },
            timeout_ms: { type: 'integer', minimum: 100, maximum: 120000 },
            concurrency: { type: 'integer', minimum: 1, maximum: 1024 },
          },
        },
        webhooks: {
          type: 'array',
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'groups', 'format'],
            properties: {
              id,
              groups: { type: 'array', minItems: 1, items: id },
              format: { enum: ['generic', 'slack', 'pagerduty'] },
              url: { type: 'string', pattern: '^https?://[^\\s]+$' },
              url_env: envName,
              url_file: { type: 'string', minLength: 1 },
              secret_env: envName,
              secret_file: { type: 'string', minLength: 1 },
              routing_key_env: envName,
              routing_key_file: { type: 'string', minLength: 1 },
            },
          },
        },
      },
    },
    suggestions: {
      type: 'object',
      additionalProperties: false,
      properties: {
        min_days: { type: 'integer', minimum: 1, maximum: 3650 },
        min_tokens: { type: 'integer', minimum: 1, maximum: 1000000000 },
        window_days: { type: 'integer', minimum: 1, maximum: 3650 },
        ttl_factor: { type: 'number', minimum: 2, maximum: 1000 },
        schedule: {
          type: 'object',
          additionalProperties: false,
          properties: {
            every_days: { type: 'integer', minimum: 1, maximum: 365 },
            at: { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' },
            notify: { type: 'array', uniqueItems: true, items: id },
          },
        },
      },
    },
    providers: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['integration', 'kind', 'credential'],
        properties: {
          integration: id,
          kind: { enum: ['aws', 'google_workspace', 'gcp_storage'] },
          role_arn: { type: 'string', pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$' },
          region: { type: 'string', pattern: '^[a-z]{2}(-[a-z]+)+-[0-9]$' },
          // No path, query, fragment or user info: the origin alone.
          endpoint: { type: 'string', pattern: '^https?://[^\\s/?#@]+$' },
          max_session_seconds: { type: 'integer', minimum: 900, maximum: 43200 },
          token_endpoint: { type: 'string', pattern: '^https?://[^\\s/?#@]+(/[^\\s?#]*)?$' },
          sts_endpoint: { type: 'string', pattern: '^https?://[^\\s/?#@]+(/[^\\s?#]*)?$' },
          timeout_ms: { type: 'integer', minimum: 100, maximum: 60000 },
          credential: {
            type: 'object',
            additionalProperties: false,
            properties: { env: envName, file: { type: 'string', minLength: 1 } },
          },
        },
      },
    },
    proxy: {
      type: 'object',
      additionalProperties: false,
      required: ['listen', 'upstreams'],
      properties: {
        listen: { type: 'string', pattern: '^[^\\s:]+:[0-9]{1,5}$' },
        serve: { type: 'boolean' },
        id,
        // At most 500: a poll must fit, with room for its reads, inside the revocation cache's 900 ms staleness bound.
        revocation_poll_ms: { type: 'integer', minimum: 50, maximum: 500 },
        token_cache_entries: { type: 'integer', minimum: 0, maximum: 1000000 },
        max_request_bytes: { type: 'integer', minimum: 1024, maximum: 1073741824 },
        max_response_bytes: { type: 'integer', minimum: 1024, maximum: 10737418240 },
        upstreams: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['integration', 'origin', 'credential'],
            properties: {
              integration: id,
              // No path, query, fragment or user info: the origin alone.
              origin: { type: 'string', pattern: '^https?://[^\\s/?#@]+$' },
              // Segments, none of them `.` or `..`.
              base_path: { type: 'string', pattern: '^(/(?!\\.\\.?(/|$))[A-Za-z0-9._~-]+)*$' },
              credential: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  header: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' },
                  prefix: { type: 'string', maxLength: 64, pattern: '^[\\x20-\\x7e]*$' },
                  env: envName,
                  file: { type: 'string', minLength: 1 },
                },
              },
              forward_headers: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z0-9-]{1,64}$' } },
              connect_timeout_ms: { type: 'integer', minimum: 100, maximum: 120000 },
              headers_timeout_ms: { type: 'integer', minimum: 100, maximum: 600000 },
              body_timeout_ms: { type: 'integer', minimum: 100, maximum: 600000 },
              connections: { type: 'integer', minimum: 1, maximum: 1024 },
            },
          },
        },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: { level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] } },
    },
    callers: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'role', 'key_sha256'],
        properties: {
          id,
          // One role, or several (`[pep, approver]`): the caller may do what any of them may.
          role: { anyOf: [{ enum: CALLER_ROLES }, { type: 'array', minItems: 1, uniqueItems: true, items: { enum: CALLER_ROLES } }] },
          approver_groups: { type: 'array', minItems: 1, uniqueItems: true, items: id },
          key_sha256: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' },
          // Agent ids, or patterns where `*` stands for any run of characters (`support-*`, `*`).
          agents: { type: 'array', items: { type: 'string', pattern: AGENT_ID_PATTERN } },
          may_assert_context: { type: 'boolean' },
        },
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
export const validateConfigShape = ajv.compile(configSchema);

export function describeAjvError(e: ErrorObject): { path: string; message: string } {
  const base = e.instancePath.replace(/^\//, '').replace(/\/(\d+)(?=\/|$)/g, '[$1]').replace(/\//g, '.');
  if (e.keyword === 'additionalProperties') {
    const key = (e.params as { additionalProperty: string }).additionalProperty;
    return { path: base ? `${base}.${key}` : key, message: 'unknown field' };
  }
  if (e.keyword === 'required') {
    const key = (e.params as { missingProperty: string }).missingProperty;
    return { path: base ? `${base}.${key}` : key, message: 'is required' };
  }
  return { path: base || '(root)', message: e.message ?? e.keyword };
}
