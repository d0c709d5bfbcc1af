import type { UsageService } from '../../pdp/usage-service.js';
import { parseUsageBatch } from '../../wire/request-parsers.js';
import { USAGE_REJECTION_CODES, usageBatchSchema, type UsageBatchV1 } from '../../wire/usage-v1.js';
import { errors } from '../openapi.js';
import { route, type Route } from '../route.js';

const { $id: _id, ...requestSchema } = usageBatchSchema;

/** The `202` answer, documented here (its only route). */
const answerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['accepted', 'unknown', 'rejected'],
  properties: {
    accepted: { type: 'integer', minimum: 0, description: 'reports recorded as token.used events, committed before this answer' },
    unknown: { type: 'integer', minimum: 0, description: 'reports whose jti is no token this PDP issued: skipped' },
    rejected: {
      type: 'array',
      description: 'reports refused (not recorded), by their index in reports',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['index', 'code'],
        properties: { index: { type: 'integer', minimum: 0 }, code: { enum: [...USAGE_REJECTION_CODES] } },
      },
    },
  },
};

/** A resource server's usage reports: the requests its middleware let through, as evidence of the scopes used. */
export function usageRoutes(usage: UsageService): Route[] {
  return [
    route<UsageBatchV1>({
      method: 'POST',
      path: '/v1/usage',
      roles: ['resource_server'],
      body: { media: ['json'], parse: parseUsageBatch },
      async handle({ caller, body, traceId }) {
        return { status: 202, json: await usage.record(caller, body.reports, traceId) };
      },
      openapi: {
        operationId: 'reportUsage',
        summary: 'Report the requests a resource server let through with a token (1 to 500), as evidence of the scopes used',
        description:
          'Each report naming a token this PDP issued, for its integration, a scope it grants, its bound record (if any) and a time within its life, ' +
          'is recorded as a token.used event (action resource_server) in one transaction before the answer. ' +
          'A jti the PDP does not know is counted in unknown; a report the token contradicts is refused by index with a code. Not retried by the SDK once sent: a repeat records twice.',
        requestBody: { required: true, content: { 'application/json': { schema: requestSchema } } },
        responses: {
          '202': { description: 'recorded (accepted), skipped (unknown) and refused (rejected) reports', content: { 'application/json': { schema: answerSchema } } },
          ...errors(503),
        },
      },
    }),
  ];
}
