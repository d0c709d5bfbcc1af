import { isAccessRefusalCode } from '../../audit/index.js';
import { isPdpError } from '../../errors/pdp-error.js';
import type { AuthzenService } from '../../pdp/authzen-service.js';
import {
  parseAuthzenEvaluation,
  parseAuthzenEvaluations,
  parseAuthzenSearch,
  type AuthzenEvaluationRequestV1,
  type AuthzenEvaluationsRequestV1,
  type AuthzenSearchRequestV1,
  type SearchKind,
} from '../../wire/authzen-v1.js';
import { errors, json } from '../openapi.js';
import { publicRoute, route, type Route } from '../route.js';
import type { RefusalReporter } from './access-requests.js';

const ROLES = ['pep'] as const;

const AGENT_MAPPING =
  'A subject of type `agent` is one of our agents: `action.name` is the one scope, `resource` the record (or `{ "type": ' +
  '"integration", "id": <integration> }` for a call on no record), `context.integration` the integration and ' +
  '`context.task_id` (or `context.task`, `{ id, type?, context? }`, as /v1/decide takes it) the task. It is decided ' +
  'exactly as POST /v1/decide decides it (a decision record, a decision id redeemable at POST /v1/tokens) and the ' +
  'decision is true only when that exact scope is granted; its `context` carries our answer (`decision_id`, `reasons`, ' +
  '`granted_scopes`, `denied_scopes`, the `access_request` hint). Other subject types go to the Rego pack configured for ' +
  'them (`authzen.subjects`), as an audited evaluation; an unknown type is `decision: false`.';

/**
 * The OpenID AuthZEN Authorization API 1.0 (docs/doors.md): access evaluation(s), the three searches, and the PDP
 * metadata. Role `pep`, like /v1/decide. Errors are ours (`{ error: { code, message, details } }`) with AuthZEN's
 * statuses: a body that is not JSON of the right media type is 400, not 415 (`errors: 'authzen'` on each row).
 */
export function authzenRoutes(service: AuthzenService, reportRefusal?: RefusalReporter): Route[] {
  const search = (kind: SearchKind, summary: string): Route =>
    route<AuthzenSearchRequestV1>({
      method: 'POST',
      path: `/access/v1/search/${kind}`,
      roles: ROLES,
      errors: 'authzen',
      body: { media: ['json'], parse: (raw) => parseAuthzenSearch(kind, raw) },
      async handle({ caller, body, traceId }) {
        return { status: 200, json: await service.search(caller, body, traceId) };
      },
      openapi: {
        operationId: `authzenSearch${kind[0]!.toUpperCase()}${kind.slice(1)}`,
        summary,
        description:
          'Candidates are enumerated and each is evaluated as an access evaluation would be; the answer is recorded once ' +
          '(an `evaluation` event; `context.decision_id`). For agents only the action search is answered: the scopes the ' +
          'agent may get on `context.integration` (or a resource of type `integration`) for `context.task_id`, on the ' +
          'resource as its record. Pages: `page.limit` (capped by `authzen.max_page_size`), `page.token` from the previous ' +
          "answer's `page.next_token` (an empty `next_token` ends the list); a token used with another request is a 400.",
        requestBody: { required: true, content: json('AuthzenSearchRequestV1') },
        responses: { '200': { description: 'the results', content: json('AuthzenSearchResponseV1') }, ...errors(503) },
      },
    });

  return [
    route<AuthzenEvaluationRequestV1>({
      method: 'POST',
      path: '/access/v1/evaluation',
      roles: ROLES,
      errors: 'authzen',
      body: { media: ['json'], parse: parseAuthzenEvaluation },
      async handle({ caller, body, traceId, log }) {
        if (body.subject.type === 'agent') log.agentId = body.subject.id;
        const decision = await service.evaluate(caller, body, traceId);
        const id = decision.context?.['decision_id'];
        if (typeof id === 'string') log.decisionId = id;
        return { status: 200, json: decision };
      },
      openapi: {
        operationId: 'authzenEvaluation',
        summary: 'AuthZEN Access Evaluation',
        description: `One decision. ${AGENT_MAPPING}`,
        requestBody: { required: true, content: json('AuthzenEvaluationRequestV1') },
        responses: { '200': { description: 'the decision', content: json('AuthzenDecisionV1') }, ...errors(503) },
      },
    }),
    route<AuthzenEvaluationsRequestV1>({
      method: 'POST',
      path: '/access/v1/evaluations',
      roles: ROLES,
      errors: 'authzen',
      body: { media: ['json'], parse: (raw) => parseAuthzenEvaluations(raw, service.maxEvaluations) },
      async handle({ caller, body, traceId }) {
        // A refused item is that item's deny, not the request's error: the pipeline never sees it, so it is audited
        // here, as the same refusal of a single evaluation is (an access.refused event, rate-bounded).
        const itemFailed = (err: unknown, agentId: string | undefined): void => {
          if (!isPdpError(err) || !isAccessRefusalCode(err.code)) return;
          reportRefusal?.({
            code: err.code,
            route: '/access/v1/evaluations',
            caller_id: caller.id,
            ...(agentId === undefined ? {} : { agent_id: agentId }),
            trace_id: traceId,
          });
        };
        return { status: 200, json: await service.evaluations(caller, body, traceId, itemFailed) };
      },
      openapi: {
        operationId: 'authzenEvaluations',
        summary: 'AuthZEN Access Evaluations (a batch)',
        description:
          'The top-level subject, action, resource and context are defaults each item may override (an item\'s entity ' +
          'replaces the default whole, but an identifier it lacks, `type`/`id` or an action\'s `name`, is the default\'s); without items (or ' +
          'with an empty list) the request is one evaluation and so is the answer. `options.evaluations_semantic`: ' +
          '`execute_all` (default: every item, answered in order), `deny_on_first_deny`, `permit_on_first_permit` (in ' +
          'order, stopping after the first deny or permit: the answer holds the items evaluated). An item that is ' +
          'incomplete, or refused (an agent this caller may not speak for), is `decision: false` with `context.error` ' +
          '(`status`, `code`, `message`) and says nothing of the others. At most `authzen.max_evaluations` items (400). ' +
          AGENT_MAPPING,
        requestBody: { required: true, content: json('AuthzenEvaluationsRequestV1') },
        responses: { '200': { description: 'the decisions, in request order', content: json('AuthzenEvaluationsResponseV1') }, ...errors(503) },
      },
    }),
    search('subject', 'AuthZEN Subject Search'),
    search('resource', 'AuthZEN Resource Search'),
    search('action', 'AuthZEN Action Search'),
    publicRoute({
      method: 'GET',
      path: '/.well-known/authzen-configuration',
      handle: () => ({ status: 200, json: service.metadata(), headers: { 'cache-control': 'public, max-age=300' } }),
      openapi: {
        operationId: 'getAuthzenConfiguration',
        summary: 'AuthZEN PDP metadata',
        description: '`policy_decision_point` is `authzen.pdp_url` (default: the origin of `escalation.public_url`, itself the issuer URL by default).',
        responses: { '200': { description: 'metadata', content: json('AuthzenMetadataV1') } },
      },
    }),
  ];
}
