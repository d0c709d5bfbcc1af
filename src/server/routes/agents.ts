import { PdpError } from '../../errors/pdp-error.js';
import type { AgentViews } from '../../pdp/agent-views.js';
import { ACTIVITY_DAYS_DEFAULT, ACTIVITY_DAYS_MAX, ACTIVITY_DAYS_MIN, AGENTS_PAGE_MAX } from '../../wire/agents-v1.js';
import { ID_PATTERN } from '../../wire/decision-v1.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

const AGENT_ID = new RegExp(ID_PATTERN);
const NO_STORE = { 'cache-control': 'no-store' };

/** The agents views of the web console (src/pdp/agent-views.ts), for auditors and admins: reads only. */
export function agentRoutes(views: AgentViews): Route[] {
  return [
    route({
      method: 'GET',
      path: '/v1/agents',
      roles: ['auditor', 'admin'],
      handle({ query }) {
        const limit = integerOf('limit', query['limit'], 1, AGENTS_PAGE_MAX);
        const after = single('after', query['after']);
        if (after !== undefined && !AGENT_ID.test(after)) throw invalid('after', 'is not an agent id');
        return { status: 200, json: views.list({ ...(limit === undefined ? {} : { limit }), ...(after === undefined ? {} : { after }) }), headers: NO_STORE };
      },
      openapi: {
        operationId: 'listAgents',
        summary: 'Every agent the policy in force names, with its roles and its effective ceiling per integration',
        description:
          'Read from the compiled policy the decisions are evaluated on, roles already applied (docs/policy-semantics.md C2–C6): ' +
          'max_scope is what a decision could at most grant on the integration before task types narrow it (task_restricted), ' +
          'deny_scope what is never granted, requestable what an approver may add. Holds until policy_revision changes. ' +
          'All agents at once, or pages of `limit` by id (`after` = the previous page\'s next_after), for a policy of many agents.',
        parameters: [
          { name: 'limit', in: 'query', required: false, schema: { type: 'integer', minimum: 1, maximum: AGENTS_PAGE_MAX }, description: 'at most this many agents (default: all)' },
          { name: 'after', in: 'query', required: false, schema: { type: 'string', pattern: ID_PATTERN }, description: 'only agents whose id sorts after this one' },
        ],
        responses: { '200': { description: 'the agents, by id', content: json('AgentListV1') }, ...errors(503) },
      },
    }),
    route({
      method: 'GET',
      path: '/v1/agents/{agent_id}/activity',
      roles: ['auditor', 'admin'],
      async handle({ params, query, log }) {
        const agentId = params['agent_id'] ?? '';
        if (!AGENT_ID.test(agentId)) throw invalid('agent_id', 'is not an agent id');
        log.agentId = agentId;
        return { status: 200, json: await views.activity(agentId, daysOf(query['days'])), headers: NO_STORE };
      },
      openapi: {
        operationId: 'agentActivity',
        summary: "An agent's decisions per UTC day, and its scopes granted vs used, over the last days",
        description:
          'From the usage aggregates folded from the audit trail (the trail is folded up to now first, never scanned per request). ' +
          'Per day, decisions counts the scopes decisions asked for and denials those refused by name (a decision asking for two scopes counts two; ' +
          'one refused as a whole before any scope is judged, such as an unregistered task, counts in decisions only). ' +
          'Per integration and scope: tokens granted, uses observed (proxy and resource-server reports; an introspection is no use), requested, denied. ' +
          'An agent the policy no longer names still answers with its history (in_policy false); an id nothing knows answers zeros, not 404.',
        parameters: [
          { name: 'agent_id', in: 'path', required: true, schema: { type: 'string', pattern: ID_PATTERN } },
          {
            name: 'days',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: ACTIVITY_DAYS_MIN, maximum: ACTIVITY_DAYS_MAX, default: ACTIVITY_DAYS_DEFAULT },
            description: 'UTC days, today included',
          },
        ],
        responses: { '200': { description: "the agent's activity", content: json('AgentActivityV1') }, ...errors(503) },
      },
    }),
  ];
}

function daysOf(value: string | string[] | undefined): number {
  return integerOf('days', value, ACTIVITY_DAYS_MIN, ACTIVITY_DAYS_MAX) ?? ACTIVITY_DAYS_DEFAULT;
}

/** A query parameter that is a decimal integer in [min, max]; undefined when absent. */
function integerOf(name: string, value: string | string[] | undefined, min: number, max: number): number | undefined {
  const text = single(name, value);
  if (text === undefined) return undefined;
  const n = /^[0-9]{1,9}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) throw invalid(name, `must be an integer from ${min} to ${max}`);
  return n;
}

function single(name: string, value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) throw invalid(name, 'is given more than once');
  return value;
}

function invalid(path: string, message: string): PdpError {
  return new PdpError('invalid_request', `${path} ${message}`, { details: [{ path, message }] });
}
