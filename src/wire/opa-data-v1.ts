/**
 * Wire format of OPA's REST data API (`/v1/data/{path}`) as agent-pdp serves it (docs/pep-integration.md, "OPA's
 * data API"). The shapes are OPA's own (`DataRequestV1`, `DataResponseV1` of OPA's `server/types`), so an existing
 * OPA client talks to us unchanged; only the members we answer are listed.
 */
import { bodyValidator } from './validate-body.js';

/** `POST /v1/data/{path}` body. `input` may be any JSON value; absent, the rule sees no input (OPA warns then). */
export interface OpaDataRequestV1 {
  input?: unknown;
}

/** OPA's warning when a POST body has no `input` member: the request is still answered. */
export interface OpaWarningV1 {
  code: 'api_usage_warning';
  message: string;
}

/**
 * The answer: the rule's value in `result`, absent when the rule is undefined for the input (OPA's `{}`), and the
 * id of the audit event that recorded it (OPA's `decision_id`, which OPA sends when decision logging is on: ours is).
 */
export interface OpaDataResponseV1 {
  decision_id: string;
  result?: unknown;
  warning?: OpaWarningV1;
}

/** OPA's own text, so a client that reads it sees what OPA would have said. */
export const MISSING_INPUT_WARNING: OpaWarningV1 = { code: 'api_usage_warning', message: "'input' key missing from the request" };

/**
 * An object; members other than `input` are ignored, as OPA ignores them. No `additionalProperties: false`: an
 * OPA client may send what OPA accepts.
 */
export const opaDataRequestSchema = {
  type: 'object',
  properties: { input: {} },
} as const;

export const opaDataResponseSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['decision_id'],
  properties: {
    decision_id: { type: 'string', description: 'the id of the audit event of this answer (an `evaluation` event; a `decision` event for agentpdp/decision)' },
    result: { description: 'the rule\'s value; absent when the rule is undefined for this input' },
    warning: {
      type: 'object',
      additionalProperties: false,
      required: ['code', 'message'],
      properties: { code: { const: 'api_usage_warning' }, message: { type: 'string' } },
    },
  },
} as const;

export const parseOpaDataRequest = bodyValidator<OpaDataRequestV1>(opaDataRequestSchema);
