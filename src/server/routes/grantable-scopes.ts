import type { GrantableScopes } from '../../pdp/grantable-scopes.js';
import type { GrantableScopesRequestV1 } from '../../wire/grantable-scopes-v1.js';
import { parseGrantableScopesRequest } from '../../wire/request-parsers.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

/** POST /v1/grantable-scopes (role pep): the upper bound of what decisions for a task could grant; not a decision. */
export function grantableScopesRoutes(grantable: GrantableScopes): Route[] {
  return [
    route<GrantableScopesRequestV1>({
      method: 'POST',
      path: '/v1/grantable-scopes',
      roles: ['pep'],
      body: { media: ['json'], parse: parseGrantableScopesRequest },
      async handle({ caller, body, log }) {
        log.agentId = body.agent_id;
        return { status: 200, json: await grantable.answer(caller, body) };
      },
      openapi: {
        operationId: 'grantableScopes',
        summary: 'The scopes an agent could at most be granted for a task, per integration',
        description:
          'An upper bound for a convenience filter (hide the tools an agent can never use), read from the compiled policy ' +
          'in force: not a decision. No policy is evaluated, nothing is recorded (no decision record, no audit event) and ' +
          'no token can be redeemed from it; only POST /v1/decide allows. `grantable` is what a decision for this task ' +
          'could grant as asked (a `bound` scope only on its record); extension rules can still deny any of it, as they ' +
          'can only deny. The caller and task are checked as for a decision: 403 forbidden_agent and ' +
          'context_assertion_forbidden alike, and a task a decision would deny before consulting the policy answers ' +
          '`task_denial` with no integrations. The answer holds until `policy_revision` changes or the task does.',
        requestBody: { required: true, content: json('GrantableScopesRequestV1') },
        responses: { '200': { description: 'the bound, per integration (`{}` for an unknown agent or a task denial)', content: json('GrantableScopesResponseV1') }, ...errors(503) },
      },
    }),
  ];
}
