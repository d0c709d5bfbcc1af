/**
 * Wire format v1 of `POST /v1/usage` (role `resource_server`): a resource server reports, in batches, the requests
 * its middleware let through with a token of ours, each with the one scope the request required. The PDP records
 * each report it can check against the token as a `token.used` event (`action: resource_server`), the evidence of
 * the scopes an agent actually used (docs/pep-integration.md, "Usage reports"). Types, the request schema and the
 * closed list of per-report refusals; imports nothing but its sibling wire files.
 */
import { ID_PATTERN, resourceSchema, SCOPE_PATTERN } from './decision-v1.js';
import type { ResourceRef } from './evaluation-v1.js';

/** Most reports in one `POST /v1/usage`; more is a 400. */
export const USAGE_REPORTS_MAX = 500;
/** Longest `route` of a report (a route template, never a concrete path), in UTF-16 code units. */
export const USAGE_ROUTE_MAX = 256;
/** Longest `record.id` of a report, as long as a decision's record id may be. */
export const USAGE_RECORD_ID_MAX = 256;

/** One request a resource server let through. */
export interface UsageReportV1 {
  /** The token's `jti`. */
  jti: string;
  /** The one scope the request required (what the middleware checked the token for). */
  scope: string;
  /** The integration of the route (the token's `authorization_details[].type`). */
  integration: string;
  /** The record the request touched, or null / absent for none. */
  record?: ResourceRef | null;
  /** The route template the resource server names (`/customers/:id`), never a concrete path; null / absent when unknown. */
  route?: string | null;
  /** When the middleware let the request through, by the resource server's clock: ISO 8601 UTC (`Z`). */
  used_at: string;
}

/** The body of `POST /v1/usage`. */
export interface UsageBatchV1 {
  reports: UsageReportV1[];
}

/**
 * Why one report of a batch was refused (never recorded as use):
 * - `integration_mismatch`: the report's integration is not the token's;
 * - `scope_not_granted`: the token does not grant the report's scope;
 * - `record_mismatch`: the token is bound to a record and the report names another one, or none;
 * - `outside_token_lifetime`: `used_at` is before the token was issued or after it expired (beyond the tolerance);
 * - `used_in_future`: `used_at` is later than the PDP's clock (beyond the tolerance).
 */
export const USAGE_REJECTION_CODES = [
  'integration_mismatch',
  'scope_not_granted',
  'record_mismatch',
  'outside_token_lifetime',
  'used_in_future',
] as const;
export type UsageRejectionCode = (typeof USAGE_REJECTION_CODES)[number];

/** `202` answer: how many reports were recorded, how many named a token the PDP does not know, which were refused. */
export interface UsageAnswerV1 {
  /** Reports recorded as `token.used` events, committed before this answer. */
  accepted: number;
  /** Reports whose `jti` is no token the PDP issued: skipped, not an error. */
  unknown: number;
  /** Reports refused, by their index in `reports`, in order. */
  rejected: Array<{ index: number; code: UsageRejectionCode }>;
}

/** ISO 8601 UTC with an optional fraction; the parser also checks that it names a real instant. */
export const USAGE_TIME_PATTERN = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z$';
/** A route template: starts with `/`, no control character. */
export const USAGE_ROUTE_PATTERN = `^/[^\\u0000-\\u001f\\u007f]{0,${USAGE_ROUTE_MAX - 1}}$`;

export const usageBatchSchema = {
  $id: 'UsageBatchV1',
  type: 'object',
  additionalProperties: false,
  required: ['reports'],
  properties: {
    reports: {
      type: 'array',
      minItems: 1,
      maxItems: USAGE_REPORTS_MAX,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['jti', 'scope', 'integration', 'used_at'],
        properties: {
          jti: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$', description: "the token's jti" },
          scope: { type: 'string', pattern: SCOPE_PATTERN, description: 'the one scope the request required' },
          integration: { type: 'string', pattern: ID_PATTERN, description: 'the integration of the route' },
          record: {
            oneOf: [{ ...resourceSchema, properties: { ...resourceSchema.properties, id: { type: 'string', minLength: 1, maxLength: USAGE_RECORD_ID_MAX } } }, { type: 'null' }],
            description: 'the record the request touched; null or absent for none',
          },
          route: {
            type: ['string', 'null'],
            pattern: USAGE_ROUTE_PATTERN,
            description: `the route template (at most ${USAGE_ROUTE_MAX} characters, starting with /), never a concrete path; null or absent when unknown`,
          },
          used_at: { type: 'string', pattern: USAGE_TIME_PATTERN, description: 'when the request was let through (the resource server clock), ISO 8601 UTC' },
        },
      },
    },
  },
} as const;
