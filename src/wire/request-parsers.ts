/**
 * The request bodies of the HTTP API, validated against the JSON Schemas of this folder (the same objects the
 * OpenAPI document publishes). Used by the server's route table and by the CLI, which read the same formats.
 */
import {
  accessRequestApproveSchema,
  accessRequestDenySchema,
  accessRequestSubmissionSchema,
  type AccessRequestApproveV1,
  type AccessRequestDenyV1,
  type AccessRequestSubmissionV1,
} from './access-request-v1.js';
import { decisionRequestSchema, taskRegistrationSchema, type DecisionRequestV1, type TaskRegistrationV1 } from './decision-v1.js';
import { PdpError } from '../errors/pdp-error.js';
import { grantableScopesRequestSchema, type GrantableScopesRequestV1 } from './grantable-scopes-v1.js';
import { DECISION_GRANT_TYPE, tokenBodySchema, tokenFormSchema, tokenRequestSchema, type TokenBodyV1, type TokenRequestV1 } from './token-v1.js';
import { usageBatchSchema, type UsageBatchV1 } from './usage-v1.js';
import { bodyValidator } from './validate-body.js';

export const parseDecisionRequest = bodyValidator<DecisionRequestV1>(decisionRequestSchema);
export const parseGrantableScopesRequest = bodyValidator<GrantableScopesRequestV1>(grantableScopesRequestSchema);
export const parseTaskRegistration = bodyValidator<TaskRegistrationV1>(taskRegistrationSchema);
export const parseTokenRequest = bodyValidator<TokenRequestV1>(tokenRequestSchema);
export const parseTokenBody = bodyValidator<TokenBodyV1>(tokenBodySchema);

/**
 * Only these members of a form body are read: RFC 6749 §3.1/§3.2 say the others are ignored, not refused, and a
 * parameter sent without a value (`resource=`) is treated as if it were omitted.
 */
function known<K extends string>(fields: unknown, names: readonly K[]): Partial<Record<K, unknown>> {
  if (typeof fields !== 'object' || fields === null) return {};
  const out: Partial<Record<K, unknown>> = {};
  for (const name of names) {
    const value = Object.hasOwn(fields, name) ? (fields as Record<string, unknown>)[name] : undefined;
    if (value !== undefined && value !== '') out[name] = value;
  }
  return out;
}

const parseTokenFormFields = bodyValidator<{ grant_type: string; decision_id: string; resource?: string }>(tokenFormSchema);

/** The decision grant as an RFC 6749 form request: `grant_type` must be DECISION_GRANT_TYPE. */
export function parseTokenForm(fields: unknown): TokenRequestV1 {
  const form = parseTokenFormFields(known(fields, ['grant_type', 'decision_id', 'resource']));
  if (form.grant_type !== DECISION_GRANT_TYPE) {
    throw new PdpError('unsupported_grant_type', `grant_type must be ${DECISION_GRANT_TYPE}`, { details: [{ path: 'grant_type', message: 'unsupported' }] });
  }
  return { decision_id: form.decision_id, ...(form.resource === undefined ? {} : { resource: form.resource }) };
}

/** RFC 7662 / RFC 7009 form bodies: `token` and `token_type_hint` are read, anything else ignored. */
export function parseTokenBodyForm(fields: unknown): TokenBodyV1 {
  return parseTokenBody(known(fields, ['token', 'token_type_hint']));
}

const parseUsageFields = bodyValidator<UsageBatchV1>(usageBatchSchema);

/**
 * `POST /v1/usage`: the schema, then each `used_at` must name a real instant (no 30 February, no 24:00); it is
 * returned as `Date.prototype.toISOString` writes it (milliseconds, `Z`), the one time format of the trail.
 */
export function parseUsageBatch(body: unknown): UsageBatchV1 {
  const batch = parseUsageFields(body);
  const details = batch.reports.flatMap((report, index) =>
    normalTime(report.used_at) === undefined ? [{ path: `reports[${index}].used_at`, message: 'must be a real UTC time' }] : [],
  );
  if (details.length > 0) {
    throw new PdpError('invalid_request', `invalid request: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details: details.slice(0, 20) });
  }
  return { reports: batch.reports.map((report) => ({ ...report, used_at: normalTime(report.used_at) as string })) };
}

/** The instant as `toISOString` writes it, or undefined when the text does not name it exactly (a day or hour out of range). */
function normalTime(text: string): string | undefined {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) return undefined;
  const iso = new Date(ms).toISOString();
  return iso.slice(0, 19) === text.slice(0, 19) ? iso : undefined;
}

export const parseAccessRequestSubmission = bodyValidator<AccessRequestSubmissionV1>(accessRequestSubmissionSchema);
export const parseAccessRequestApprove = bodyValidator<AccessRequestApproveV1>(accessRequestApproveSchema);
export const parseAccessRequestDeny = bodyValidator<AccessRequestDenyV1>(accessRequestDenySchema);

/** The approval page's form (`GET /v1/access-requests/{id}/review` renders it): the link, the verdict and its terms. */
export interface ReviewFormV1 {
  /** The approval link's token (`t` of the link). */
  t: string;
  action: 'approve' | 'deny';
  duration_seconds?: number;
  note?: string;
}

const parseReviewFields = bodyValidator<{ t: string; action: 'approve' | 'deny'; duration_seconds?: string; note?: string }>({
  $id: 'ReviewFormV1',
  type: 'object',
  additionalProperties: false,
  required: ['t', 'action'],
  properties: {
    t: { type: 'string', minLength: 1, maxLength: 512 },
    action: { enum: ['approve', 'deny'] },
    duration_seconds: { type: 'string', pattern: '^([1-9][0-9]{0,5})?$' },
    note: { type: 'string', maxLength: 1000 },
  },
});

/** The review form: the approver's key (`api_key`) is the pipeline's to read, every other member is ignored. */
export function parseReviewForm(fields: unknown): ReviewFormV1 {
  const form = parseReviewFields(known(fields, ['t', 'action', 'duration_seconds', 'note']));
  return {
    t: form.t,
    action: form.action,
    ...(form.duration_seconds ? { duration_seconds: Number(form.duration_seconds) } : {}),
    ...(form.note ? { note: form.note } : {}),
  };
}
