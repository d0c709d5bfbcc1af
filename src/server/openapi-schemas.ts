import { AUDIT_EVENT_TYPES } from '../audit/index.js';
import { decisionRequestSchema, ID_PATTERN, resourceSchema, taskRegistrationSchema } from '../wire/decision-v1.js';
import {
  ACCESS_REQUEST_STATUSES,
  ELEVATION_END_REASONS,
  accessRequestApproveSchema,
  accessRequestDenySchema,
  accessRequestSubmissionSchema,
} from '../wire/access-request-v1.js';
import { DENIED_SCOPE_REASONS, OUTCOMES, RECORDED_OUTCOMES } from '../wire/evaluation-v1.js';
import { grantableScopesRequestSchema } from '../wire/grantable-scopes-v1.js';
import { tokenBodySchema, tokenFormSchema, tokenRequestSchema } from '../wire/token-v1.js';
import { ACTIVITY_DAYS_MAX, ACTIVITY_DAYS_MIN } from '../wire/agents-v1.js';

/**
 * `components.schemas` of the OpenAPI document. Request schemas are the very objects the server validates with
 * (`src/wire/`); response schemas are checked against real responses in the tests.
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

const sortedStrings = { type: 'array', items: { type: 'string' } };
const count = { type: 'integer', minimum: 0 };

/** The agents views of the web console (`src/wire/agents-v1.ts`, docs/compliance.md "Agents"). */
const AGENT_VIEW_SCHEMAS = {
  AgentListV1: {
    type: 'object',
    additionalProperties: false,
    required: ['policy_revision', 'agents', 'next_after'],
    properties: {
      policy_revision: { type: 'string', description: 'the revision the ceilings are read from' },
      next_after: { type: ['string', 'null'], description: 'with limit: the after of the next page; null on the last page, and always without limit' },
      agents: {
        type: 'array',
        description: 'every agent the policy in force names, by id',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['agent_id', 'roles', 'task_restricted', 'task_types', 'integrations'],
          properties: {
            agent_id: { type: 'string' },
            roles: { ...sortedStrings, description: 'the roles its policy names, as written ([] for a compiled bundle that does not record them)' },
            task_restricted: { type: 'boolean', description: 'task types narrow these ceilings further per task (per_task_downscope)' },
            task_types: { ...sortedStrings, description: 'its task types, own and inherited, sorted' },
            integrations: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['integration', 'max_scope', 'deny_scope', 'token_ttl_seconds', 'requestable'],
                properties: {
                  integration: { type: 'string' },
                  max_scope: { ...sortedStrings, description: 'effective ceiling after roles, minus denied (what a decision could at most grant, before task types)' },
                  deny_scope: { ...sortedStrings, description: "the agent's deny_scope united with its roles'" },
                  token_ttl_seconds: { type: 'integer', minimum: 1, description: "the agent's token lifetime cap (its own token_ttl or a role's, the smaller)" },
                  requestable: { ...sortedStrings, description: 'scopes above max_scope an approver may grant (break-glass)' },
                },
              },
            },
          },
        },
      },
    },
  },
  AgentActivityV1: {
    type: 'object',
    additionalProperties: false,
    required: ['agent_id', 'in_policy', 'since', 'until', 'days', 'scopes'],
    properties: {
      agent_id: { type: 'string' },
      in_policy: { type: 'boolean', description: 'whether the policy in force names the agent' },
      since: { type: 'string', format: 'date-time', description: 'midnight UTC, days - 1 days before today' },
      until: { type: 'string', format: 'date-time', description: 'now (exclusive)' },
      days: {
        type: 'array',
        minItems: ACTIVITY_DAYS_MIN,
        maxItems: ACTIVITY_DAYS_MAX,
        description: 'every UTC day of the window, oldest first',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['day', 'decisions', 'denials'],
          properties: {
            day: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' },
            decisions: { ...count, description: 'scopes asked for in decisions that day (a decision asking for n scopes counts n)' },
            denials: {
              ...count,
              description:
                'scopes decisions refused by name that day (denied_scopes); a decision refused as a whole before any scope is judged (unknown agent, task denial, extension rule, approval needed) counts in decisions only',
            },
          },
        },
      },
      scopes: {
        type: 'array',
        description: 'per integration and scope, over the window, by integration then scope',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['integration', 'scope', 'granted', 'used', 'requested', 'denied'],
          properties: {
            integration: { type: 'string' },
            scope: { type: 'string' },
            granted: { ...count, description: 'tokens issued carrying the scope' },
            used: { ...count, description: 'uses observed: calls the enforcement proxy forwarded plus requests resource servers reported (never introspections)' },
            requested: { ...count, description: 'decisions that asked for it' },
            denied: { ...count, description: 'decisions that refused it by name' },
          },
        },
      },
    },
  },
};
/** A count per recorded outcome. */
const outcomeCounts = Object.fromEntries(RECORDED_OUTCOMES.map((o) => [o, { type: 'integer', minimum: 0 }]));

export const COMPONENT_SCHEMAS = {
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
      outcome: { enum: [...OUTCOMES] },
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
            reason: { enum: [...DENIED_SCOPE_REASONS] },
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
      access_request: {
        type: 'object',
        additionalProperties: false,
        description: 'only on a deny an approver can lift (reason approval_required): submit `template` to `endpoint` before `expires_at`',
        required: ['endpoint', 'expires_at', 'template', 'scopes', 'max_duration_seconds', 'require_reason'],
        properties: {
          endpoint: { type: 'string', format: 'uri' },
          expires_at: { type: 'string', format: 'date-time' },
          template: { $ref: '#/components/schemas/AccessRequestSubmissionV1' },
          scopes: { type: 'array', items: { type: 'string' } },
          max_duration_seconds: { type: 'integer', minimum: 1 },
          require_reason: { type: 'boolean' },
        },
      },
      approval: {
        type: 'object',
        additionalProperties: false,
        description: 'only on an allow granted with an elevation: the access request, and the end of its window (no token outlives it)',
        required: ['id', 'approved_until'],
        properties: { id: { type: 'string' }, approved_until: { type: 'string', format: 'date-time' } },
      },
    },
  },
  Reason: reason,
  AuthzenEvaluationRequestV1: {
    type: 'object',
    description: 'AuthZEN Access Evaluation request (unknown members are ignored, as the spec requires)',
    required: ['subject', 'action', 'resource'],
    properties: {
      subject: { $ref: '#/components/schemas/AuthzenEntity' },
      action: { $ref: '#/components/schemas/AuthzenAction' },
      resource: { $ref: '#/components/schemas/AuthzenEntity' },
      context: { type: 'object', description: 'for an agent: `integration`, `task_id` or `task`, `ttl_seconds`' },
    },
  },
  AuthzenEntity: {
    type: 'object',
    required: ['type', 'id'],
    properties: {
      type: { type: 'string', minLength: 1, maxLength: 256 },
      id: { type: 'string', minLength: 1, maxLength: 256 },
      properties: { type: 'object' },
    },
  },
  AuthzenAction: {
    type: 'object',
    required: ['name'],
    properties: { name: { type: 'string', minLength: 1, maxLength: 256 }, properties: { type: 'object' } },
  },
  AuthzenDecisionV1: {
    type: 'object',
    required: ['decision'],
    properties: {
      decision: { type: 'boolean' },
      context: { type: 'object', description: 'for an agent: our answer (`decision_id`, `outcome`, `reasons`, `granted_scopes`, `denied_scopes`, `access_request`, ...); for a pack: its own context and the evaluation\'s `decision_id`; for a refused batch item: `error` (`status`, `code`, `message`)' },
    },
  },
  AuthzenEvaluationsRequestV1: {
    type: 'object',
    description: 'AuthZEN Access Evaluations request: top-level members are defaults for each item',
    properties: {
      subject: { $ref: '#/components/schemas/AuthzenEntity' },
      action: { $ref: '#/components/schemas/AuthzenAction' },
      resource: { $ref: '#/components/schemas/AuthzenEntity' },
      context: { type: 'object' },
      evaluations: { type: 'array', items: { type: 'object' } },
      options: { type: 'object', properties: { evaluations_semantic: { enum: ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] } } },
    },
  },
  AuthzenEvaluationsResponseV1: {
    description: 'with items: `evaluations` in request order; without: one decision',
    oneOf: [
      { type: 'object', required: ['evaluations'], properties: { evaluations: { type: 'array', items: { $ref: '#/components/schemas/AuthzenDecisionV1' } } } },
      { $ref: '#/components/schemas/AuthzenDecisionV1' },
    ],
  },
  AuthzenSearchRequestV1: {
    type: 'object',
    description: 'the searched-for entity needs its type only (an id is ignored); the action search has no action',
    required: ['subject', 'resource'],
    properties: {
      subject: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, id: { type: 'string' }, properties: { type: 'object' } } },
      action: { $ref: '#/components/schemas/AuthzenAction' },
      resource: { type: 'object', required: ['type'], properties: { type: { type: 'string' }, id: { type: 'string' }, properties: { type: 'object' } } },
      context: { type: 'object' },
      page: { type: 'object', properties: { token: { type: 'string' }, limit: { type: 'integer', minimum: 0 } } },
    },
  },
  AuthzenSearchResponseV1: {
    type: 'object',
    required: ['results'],
    properties: {
      page: { type: 'object', required: ['next_token'], properties: { next_token: { type: 'string' }, count: { type: 'integer' }, total: { type: 'integer' } } },
      context: { type: 'object' },
      results: { type: 'array', items: { type: 'object' } },
    },
  },
  AuthzenMetadataV1: {
    type: 'object',
    required: ['policy_decision_point', 'access_evaluation_endpoint'],
    properties: Object.fromEntries(
      ['policy_decision_point', 'access_evaluation_endpoint', 'access_evaluations_endpoint', 'search_subject_endpoint', 'search_resource_endpoint', 'search_action_endpoint'].map((k) => [k, { type: 'string', format: 'uri' }]),
    ),
  },
  GrantableScopesRequestV1: strip(grantableScopesRequestSchema),
  GrantableScopesResponseV1: {
    type: 'object',
    description: 'An upper bound read from the compiled policy, not a decision: nothing was evaluated or recorded',
    additionalProperties: false,
    required: ['agent_id', 'task_id', 'task_type', 'policy_revision', 'task_denial', 'integrations'],
    properties: {
      agent_id: { type: 'string' },
      task_id: { type: 'string' },
      task_type: { type: ['string', 'null'], description: "the task's type as a decision would see it (a registered task's own); null when it has none or on a task denial" },
      policy_revision: { type: 'string', description: 'the revision a decision made now would carry; cache the answer per revision' },
      task_denial: {
        type: ['string', 'null'],
        description: 'the reason code a decision for this task would be denied with before the policy is consulted (task_not_registered, task_agent_mismatch, task_completed, task_expired, task_context_mismatch); integrations is then {}',
      },
      integrations: {
        type: 'object',
        description: 'by integration name; {} for an unknown agent',
        additionalProperties: {
          type: 'object',
          additionalProperties: false,
          required: ['grantable', 'requestable', 'bound'],
          properties: {
            grantable: { type: 'array', items: { type: 'string' }, description: 'what a decision for this task could grant as asked, sorted; extension rules can still deny it' },
            requestable: { type: 'array', items: { type: 'string' }, description: 'scopes an approver could add (break-glass), not grantable already, sorted' },
            bound: { type: 'object', additionalProperties: { type: 'string' }, description: "grantable scope → the resource type it is bound to (only on the task's record)" },
          },
        },
      },
    },
  },
  AccessRequestSubmissionV1: { ...strip(accessRequestSubmissionSchema), properties: { ...accessRequestSubmissionSchema.properties, reason: { type: 'string', maxLength: 1000 } } },
  AccessRequestApproveV1: strip(accessRequestApproveSchema),
  AccessRequestDenyV1: strip(accessRequestDenySchema),
  AccessRequestV1: {
    type: 'object',
    additionalProperties: false,
    required: [
      'id', 'status', 'status_endpoint', 'expires_at', 'decision_id', 'requested_by', 'agent_id', 'task_id', 'integration', 'resource',
      'scopes', 'reason', 'duration_seconds', 'max_duration_seconds', 'approver_groups', 'policy_revision', 'created_at', 'decided_at',
      'decided_by', 'note', 'approved_until', 'ended_at', 'ended_reason',
    ],
    properties: {
      id: { type: 'string' },
      status: { enum: [...ACCESS_REQUEST_STATUSES] },
      status_endpoint: { type: 'string', format: 'uri' },
      expires_at: { type: 'string', format: 'date-time', description: 'pending until then' },
      decision_id: { type: 'string', description: 'the denial it asks to lift' },
      requested_by: { type: 'string', description: 'the PEP caller that submitted it' },
      agent_id: { type: 'string' },
      task_id: { type: 'string' },
      integration: { type: 'string' },
      resource: { oneOf: [{ $ref: '#/components/schemas/ResourceRef' }, { type: 'null' }] },
      scopes: { type: 'array', items: { type: 'string' } },
      reason: { type: ['string', 'null'] },
      duration_seconds: { type: 'integer', minimum: 1 },
      max_duration_seconds: { type: 'integer', minimum: 1 },
      approver_groups: { type: 'array', items: { type: 'string' } },
      policy_revision: { type: 'string' },
      created_at: { type: 'string', format: 'date-time' },
      decided_at: { type: ['string', 'null'], format: 'date-time' },
      decided_by: { type: ['string', 'null'] },
      note: { type: ['string', 'null'] },
      approved_until: { type: ['string', 'null'], format: 'date-time', description: 'approved: the end of the elevation window' },
      ended_at: { type: ['string', 'null'], format: 'date-time', description: 'approved: when the elevation ended (null while it runs)' },
      ended_reason: { oneOf: [{ enum: [...ELEVATION_END_REASONS] }, { type: 'null' }] },
      result: {
        type: 'object',
        description: 'approved: the AuthZEN profile\'s result. Decide again; the approval alone never allows',
        additionalProperties: false,
        required: ['mode', 'approval'],
        properties: {
          mode: { const: 'reevaluate' },
          approval: {
            type: 'object',
            additionalProperties: false,
            required: ['id', 'approved_at', 'approved_until'],
            properties: { id: { type: 'string' }, approved_at: { type: 'string', format: 'date-time' }, approved_until: { type: 'string', format: 'date-time' } },
          },
        },
      },
    },
  },
  NotificationListV1: {
    type: 'object',
    additionalProperties: false,
    required: ['counts', 'items'],
    properties: {
      counts: {
        type: 'object',
        additionalProperties: false,
        required: ['pending', 'delivered', 'dead'],
        properties: { pending: { type: 'integer' }, delivered: { type: 'integer' }, dead: { type: 'integer' } },
      },
      items: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'access_request_id', 'notification_id', 'destination', 'approver_group', 'status', 'attempts', 'next_attempt_at', 'last_error', 'last_status', 'created_at', 'delivered_at'],
          properties: {
            id: { type: 'string', description: 'the delivery id (`X-AgentPDP-Delivery`)' },
            access_request_id: { type: ['string', 'null'], description: 'the access request notified; null for a notification of the PDP\'s own' },
            notification_id: { type: ['string', 'null'], description: 'the PDP\'s own notification (the scheduled suggestion run\'s new suggestions); null for an access request\'s' },
            destination: { type: 'string', description: 'the webhook id in the config (never its URL)' },
            approver_group: { type: 'string', description: 'the group the webhook serves this delivery for' },
            status: { enum: ['pending', 'delivered', 'dead'] },
            attempts: { type: 'integer', minimum: 0 },
            next_attempt_at: { type: 'string', format: 'date-time' },
            last_error: { type: ['string', 'null'] },
            last_status: { type: ['integer', 'null'] },
            created_at: { type: 'string', format: 'date-time' },
            delivered_at: { type: ['string', 'null'], format: 'date-time' },
          },
        },
      },
    },
  },
  AccessRequestListV1: {
    type: 'object',
    additionalProperties: false,
    required: ['items', 'next_after'],
    properties: {
      items: { type: 'array', items: { $ref: '#/components/schemas/AccessRequestV1' } },
      next_after: { type: ['string', 'null'] },
    },
  },
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
      policy_on_disk: {
        enum: ['loaded', 'refused'],
        description: 'refused: the files on disk were refused at the last reload; the active (older) revision keeps serving',
      },
      refused: {
        type: 'object',
        additionalProperties: false,
        required: ['code', 'first_error', 'since'],
        properties: {
          code: { type: 'string' },
          first_error: {
            type: ['string', 'null'],
            description: 'the first error in a policy file: `file:line path: message` (file relative to the policy folder); null for other refusals (permissions, the bundle), which the log details',
          },
          since: { type: 'string', format: 'date-time', description: 'when the files on disk were first refused' },
        },
      },
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
  TokenRequest: strip(tokenRequestSchema),
  TokenForm: strip(tokenFormSchema),
  OpaError: {
    type: 'object',
    description: "OPA's REST API error (the routes of OPA's data API): OPA's code and message, our error whole in pdp_error",
    additionalProperties: false,
    required: ['code', 'message', 'pdp_error'],
    properties: {
      code: { enum: ['invalid_parameter', 'unauthorized', 'resource_not_found', 'undefined_document', 'internal_error'] },
      message: { type: 'string' },
      errors: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
      pdp_error: { $ref: '#/components/schemas/Error/properties/error' },
    },
  },
  OAuthError: {
    type: 'object',
    description: 'RFC 6749 §5.2 error: the answer to a form-encoded (OAuth client) request to the token, introspection and revocation endpoints',
    additionalProperties: false,
    required: ['error', 'error_description', 'pdp_error'],
    properties: {
      error: { enum: ['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_target', 'server_error', 'temporarily_unavailable'] },
      error_description: { type: 'string' },
      pdp_error: { $ref: '#/components/schemas/Error/properties/error' },
    },
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
      provider_credential: { $ref: '#/components/schemas/ProviderCredential' },
    },
  },
  ProviderCredential: {
    type: 'object',
    description:
      'For an integration minted by a provider (docs/providers.md): its own credential, narrowed to the same grant (AWS: STS AssumeRole with a session ' +
      'policy from the granted scopes and the bound record), expiring no later than the token. Secret; it cannot be revoked, only expire.',
    oneOf: [
      { $ref: '#/components/schemas/AwsProviderCredential' },
      { $ref: '#/components/schemas/GoogleWorkspaceCredential' },
      { $ref: '#/components/schemas/GcsCredential' },
    ],
  },
  GcsCredential: {
    type: 'object',
    description: 'A Google access token downscoped by a Credential Access Boundary (RFC 8693 exchange at Google STS): the mapped buckets, role and object prefix of the grant only.',
    additionalProperties: false,
    required: ['provider', 'integration', 'expires_at', 'google'],
    properties: {
      provider: { const: 'gcp_storage' },
      integration: { type: 'string' },
      expires_at: { type: 'string', format: 'date-time' },
      google: {
        type: 'object',
        additionalProperties: false,
        required: ['access_token', 'token_type'],
        properties: { access_token: { type: 'string' }, token_type: { const: 'Bearer' } },
      },
    },
  },
  GoogleWorkspaceCredential: {
    type: 'object',
    description: 'A Google access token from a service account with domain-wide delegation (RFC 7523), for the task\'s user and exactly the granted Google scopes; Google fixes its lifetime at an hour.',
    additionalProperties: false,
    required: ['provider', 'integration', 'expires_at', 'google'],
    properties: {
      provider: { const: 'google_workspace' },
      integration: { type: 'string' },
      expires_at: { type: 'string', format: 'date-time' },
      google: {
        type: 'object',
        additionalProperties: false,
        required: ['access_token', 'token_type', 'subject', 'scopes'],
        properties: {
          access_token: { type: 'string' },
          token_type: { const: 'Bearer' },
          subject: { type: 'string' },
          scopes: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
  AwsProviderCredential: {
    type: 'object',
    description: 'STS temporary credentials from AssumeRole with a session policy built from the granted scopes and the bound record.',
    additionalProperties: false,
    required: ['provider', 'integration', 'expires_at', 'aws'],
    properties: {
      provider: { const: 'aws' },
      integration: { type: 'string' },
      expires_at: { type: 'string', format: 'date-time' },
      aws: {
        type: 'object',
        additionalProperties: false,
        required: ['access_key_id', 'secret_access_key', 'session_token', 'expiration', 'region'],
        properties: {
          access_key_id: { type: 'string' },
          secret_access_key: { type: 'string' },
          session_token: { type: 'string' },
          expiration: { type: 'string', format: 'date-time' },
          region: { type: 'string' },
        },
      },
    },
  },
  TokenBody: strip(tokenBodySchema),
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
  AuditEventV1: {
    type: 'object',
    description: 'One event of the tamper-evident audit trail (docs/audit-events.md)',
    additionalProperties: false,
    required: ['v', 'seq', 'time', 'type', 'data', 'prev_hash', 'hash'],
    properties: {
      v: { const: 1 },
      seq: { type: 'integer', minimum: 1 },
      time: { type: 'string', format: 'date-time' },
      type: { enum: Object.keys(AUDIT_EVENT_TYPES) },
      decision_id: { type: 'string', minLength: 1 },
      jti: { type: 'string', minLength: 1 },
      task_id: { type: 'string', minLength: 1 },
      agent_id: { type: 'string', minLength: 1 },
      caller_id: { type: 'string', minLength: 1 },
      trace_id: { type: 'string', minLength: 1 },
      data: {},
      prev_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    },
  },
  DecisionChainV1: {
    type: 'object',
    additionalProperties: false,
    required: ['decision_id', 'events'],
    properties: {
      decision_id: { type: 'string' },
      events: { type: 'array', items: { $ref: '#/components/schemas/AuditEventV1' } },
    },
  },
  ConsoleSessionV1: {
    type: 'object',
    additionalProperties: false,
    required: ['caller_id', 'roles', 'approver_groups', 'csrf_token', 'idle_timeout_seconds', 'expires_at'],
    properties: {
      caller_id: { type: 'string' },
      roles: { type: 'array', items: { enum: ['auditor', 'approver', 'admin'] }, description: "the caller's console roles: the session acts with these only" },
      approver_groups: { type: 'array', items: { type: 'string' } },
      csrf_token: { type: 'string', description: 'send as X-CSRF-Token with every state change made with the session' },
      idle_timeout_seconds: { type: 'integer', minimum: 1 },
      expires_at: { type: 'string', format: 'date-time', description: 'the absolute end of the session' },
    },
  },
  ...AGENT_VIEW_SCHEMAS,
  // The audit console's reads (src/wire/audit-console-v1.ts).
  DecisionSummaryV1: {
    type: 'object',
    additionalProperties: false,
    required: ['seq', 'time', 'decision_id', 'agent_id', 'task_id', 'caller_id', 'integration', 'outcome', 'allow', 'requested_scopes', 'granted_scopes', 'reasons', 'policy_revision'],
    properties: {
      seq: { type: 'integer', minimum: 1 },
      time: { type: 'string' },
      decision_id: { type: 'string' },
      agent_id: { type: ['string', 'null'] },
      task_id: { type: ['string', 'null'] },
      caller_id: { type: ['string', 'null'] },
      integration: { type: ['string', 'null'] },
      outcome: { enum: [...RECORDED_OUTCOMES, null] },
      allow: { type: 'boolean' },
      requested_scopes: { type: 'array', items: { type: 'string' } },
      granted_scopes: { type: 'array', items: { type: 'string' } },
      reasons: { type: 'array', items: { type: 'string' }, description: 'reason codes, in order' },
      policy_revision: { type: ['string', 'null'] },
    },
  },
  DecisionSearchV1: {
    type: 'object',
    additionalProperties: false,
    required: ['decisions', 'next_cursor', 'scanned_through_seq'],
    properties: {
      decisions: { type: 'array', items: { $ref: '#/components/schemas/DecisionSummaryV1' } },
      next_cursor: { type: ['string', 'null'], description: 'the next (older) page; null: nothing older' },
      scanned_through_seq: { type: ['integer', 'null'], description: 'the lowest seq this page examined' },
    },
  },
  VerificationV1: {
    type: 'object',
    additionalProperties: false,
    required: ['ok', 'verified', 'from_seq', 'to_seq', 'started_at', 'finished_at', 'by'],
    properties: {
      ok: { type: 'boolean' },
      verified: { type: 'integer', minimum: 0 },
      from_seq: { type: 'integer', minimum: 1 },
      to_seq: { type: 'integer', minimum: 0 },
      started_at: { type: 'string' },
      finished_at: { type: 'string' },
      by: { type: 'string', description: 'the caller id that asked for it' },
      first_bad_seq: { type: 'integer', minimum: 0, description: 'the first seq at which the chain departs from the original' },
      error: { type: 'string' },
    },
  },
  AuditIntegrityV1: {
    type: 'object',
    additionalProperties: false,
    required: ['head', 'start', 'last_verification'],
    properties: {
      head: {
        oneOf: [
          { type: 'null' },
          {
            type: 'object',
            additionalProperties: false,
            required: ['seq', 'hash', 'time'],
            properties: { seq: { type: 'integer', minimum: 1 }, hash: { type: 'string' }, time: { type: 'string' } },
          },
        ],
      },
      start: {
        type: 'object',
        additionalProperties: false,
        required: ['start_seq', 'start_prev_hash'],
        properties: { start_seq: { type: 'integer', minimum: 1 }, start_prev_hash: { type: 'string' } },
      },
      last_verification: { oneOf: [{ type: 'null' }, { $ref: '#/components/schemas/VerificationV1' }], description: 'kept in memory by this PDP process' },
    },
  },
  AuditOverviewV1: {
    type: 'object',
    additionalProperties: false,
    required: ['since', 'until', 'per_minute', 'by_outcome', 'decisions_per_second', 'top_denial_reasons', 'truncated'],
    properties: {
      since: { type: 'string' },
      until: { type: 'string' },
      per_minute: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['minute', ...RECORDED_OUTCOMES],
          properties: { minute: { type: 'string' }, ...outcomeCounts },
        },
      },
      by_outcome: { type: 'object', additionalProperties: false, required: [...RECORDED_OUTCOMES], properties: outcomeCounts },
      decisions_per_second: { type: 'number', minimum: 0 },
      top_denial_reasons: {
        type: 'array',
        items: { type: 'object', additionalProperties: false, required: ['code', 'count'], properties: { code: { type: 'string' }, count: { type: 'integer', minimum: 1 } } },
      },
      truncated: { type: 'boolean', description: 'the window held more decisions than one overview reads: the counts are of the newest ones' },
    },
  },
};
