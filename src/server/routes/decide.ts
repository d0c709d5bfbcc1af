import type { Decider } from '../../pdp/decider.js';
import type { DecisionRequestV1 } from '../../wire/decision-v1.js';
import { parseDecisionRequest } from '../../wire/request-parsers.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

const traceparent = { name: 'traceparent', in: 'header', required: false, schema: { type: 'string' }, description: 'W3C Trace Context; kept with the decision and echoed' };

/** POST /v1/decide (role pep): 200 for allow, deny and undefined alike; errors are 4xx/503. */
export function decideRoutes(decider: Decider): Route[] {
  return [
    route<DecisionRequestV1>({
      method: 'POST',
      path: '/v1/decide',
      roles: ['pep'],
      body: { media: ['json'], parse: parseDecisionRequest },
      async handle({ caller, body, traceId, log }) {
        log.agentId = body.agent_id;
        const response = await decider.decide(caller, body, traceId);
        log.decisionId = response.decision_id;
        return { status: 200, json: response };
      },
      openapi: {
        operationId: 'decide',
        summary: 'Decide one tool call',
        parameters: [traceparent],
        requestBody: { required: true, content: json('DecisionRequestV1') },
        responses: { '200': { description: 'allow, deny or undefined', content: json('DecisionResponseV1') }, ...errors(503) },
      },
    }),
  ];
}
