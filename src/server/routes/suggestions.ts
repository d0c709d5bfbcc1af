import { PdpError } from '../../errors/pdp-error.js';
import type { SuggestionStatus } from '../../store/index.js';
import { ID_PATTERN } from '../../wire/decision-v1.js';
import { errors } from '../openapi.js';
import { route, type Route } from '../route.js';

const FORMATS = ['json', 'md', 'html'] as const;
type Format = (typeof FORMATS)[number];
const STATUSES = ['open', 'applied', 'dismissed', 'withdrawn'] as const satisfies readonly SuggestionStatus[];
const AGENT_ID = new RegExp(ID_PATTERN);

/**
 * What the route asks of the PDP side (src/suggest/'s `SuggestionReports`, wired by main.ts): stored suggestions as
 * a report in one of the formats. The route parses the query and answers; it computes nothing.
 */
export interface SuggestionReporter {
  render(query: { agent_id?: string; status?: SuggestionStatus; format: Format }): Promise<{ contentType: string; body: string }>;
}

/** The HTML report loads nothing and runs nothing; it says so itself too (a meta tag), for a copy saved to disk. */
const HTML_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const text = { schema: { type: 'string' } };
const nullable = (schema: object): object => ({ oneOf: [schema, { type: 'null' }] });
const stringOrNull = { type: ['string', 'null'] };

/** `SuggestionReportV1` as a stored list has it (window, thresholds and revision are a CLI run's: null here). */
const reportSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'generated_at', 'window', 'thresholds', 'policy_revision', 'suggestions', 'agents'],
  properties: {
    version: { const: 1 },
    generated_at: { type: 'string' },
    window: nullable({ type: 'object' }),
    thresholds: nullable({ type: 'object' }),
    policy_revision: stringOrNull,
    suggestions: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'agent_id', 'integration', 'kind', 'target', 'proposal', 'evidence', 'evidence_hash', 'file', 'file_sha256', 'status', 'created_at', 'updated_at', 'decided_by', 'decided_at'],
        properties: {
          id: { type: 'string' },
          agent_id: { type: 'string' },
          integration: { type: 'string', description: '`*` for shorten_ttl (token_ttl is the agent\'s, every integration\'s)' },
          kind: { enum: ['remove_scope', 'move_to_task_type', 'shorten_ttl'] },
          target: { type: 'string', description: 'the scope, or `token_ttl`' },
          proposal: { type: 'object', description: 'summary, edits of the agent\'s file, unified diff (docs/suggestions.md)' },
          evidence: { type: 'object', description: 'window, confidence, sources, days, samples, the scope\'s counts, reasons (docs/suggestions.md)' },
          evidence_hash: { type: 'string' },
          file: stringOrNull,
          file_sha256: stringOrNull,
          status: { enum: [...STATUSES] },
          created_at: { type: 'string' },
          updated_at: { type: 'string' },
          decided_by: stringOrNull,
          decided_at: stringOrNull,
        },
      },
    },
    agents: { type: 'array', items: { type: 'object' }, description: 'a CLI run\'s per-agent analysis; [] here' },
  },
};

/** Stored policy suggestions (docs/suggestions.md), for auditors and admins. */
export function suggestionRoutes(reporter: SuggestionReporter): Route[] {
  return [
    route({
      method: 'GET',
      path: '/v1/suggestions',
      roles: ['auditor', 'admin'],
      async handle({ query }) {
        const format = oneOf('format', query['format'], FORMATS) ?? 'json';
        const status = oneOf('status', query['status'], STATUSES);
        const agent = single('agent', query['agent']);
        if (agent !== undefined && !AGENT_ID.test(agent)) throw new PdpError('invalid_request', 'agent must be an agent id', { details: [{ path: 'agent', message: 'is not an id' }] });
        const report = await reporter.render({ format, ...(status === undefined ? {} : { status }), ...(agent === undefined ? {} : { agent_id: agent }) });
        const headers: Record<string, string> = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...(format === 'html' ? HTML_HEADERS : {}) };
        return { status: 200, text: report.body, contentType: report.contentType, headers };
      },
      openapi: {
        operationId: 'listSuggestions',
        summary: 'Policy suggestions as stored (computed by agent-pdp suggest, never here), with their status: JSON, a Markdown summary, or a self-contained HTML report',
        description:
          'Each suggestion only narrows a policy (remove a scope of an agent\'s own max_scope, give a scope to one task type only, shorten token_ttl), with its evidence, confidence and the YAML diff it would make. ' +
          'The HTML report adds charts of granted vs used per scope over suggestions.window_days, loads nothing and runs no script.',
        parameters: [
          { name: 'agent', in: 'query', required: false, schema: { type: 'string', pattern: ID_PATTERN }, description: "only this agent's" },
          { name: 'status', in: 'query', required: false, schema: { enum: [...STATUSES] } },
          { name: 'format', in: 'query', required: false, schema: { enum: [...FORMATS], default: 'json' } },
        ],
        responses: {
          '200': { description: 'the report', content: { 'application/json': { schema: reportSchema }, 'text/markdown': text, 'text/html': text } },
          ...errors(503),
        },
      },
    }),
  ];
}

function single(name: string, value: string | string[] | undefined): string | undefined {
  if (Array.isArray(value)) throw new PdpError('invalid_request', `${name} is given more than once`, { details: [{ path: name, message: 'is given more than once' }] });
  return value;
}

function oneOf<T extends string>(name: string, value: string | string[] | undefined, allowed: readonly T[]): T | undefined {
  const v = single(name, value);
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new PdpError('invalid_request', `${name} must be one of ${allowed.join(', ')}`, { details: [{ path: name, message: `must be one of ${allowed.join(', ')}` }] });
  return v as T;
}
