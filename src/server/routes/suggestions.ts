import { SUGGESTION_NOTE_MAX } from '../../audit/index.js';
import { isPdpError, PdpError, type ErrorDetail } from '../../errors/pdp-error.js';
import type { SuggestionRecord, SuggestionStatus } from '../../store/index.js';
import { ID_PATTERN } from '../../wire/decision-v1.js';
import { bodyValidator } from '../../wire/validate-body.js';
import { errors } from '../openapi.js';
import { optionalJsonBody, route, type Route } from '../route.js';

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

/** What `POST /v1/suggestions/{id}/apply` gets from src/suggest/'s `SuggestionActions` (the CLI's too). */
export interface AppliedSuggestion {
  suggestion: SuggestionRecord;
  file: string;
  diff: string;
  sha256_before: string;
  sha256_after: string;
  written: boolean;
  revision_before: string;
  revision_after: string;
  new_warnings: ErrorDetail[];
}

/**
 * Applying and dismissing (src/suggest/suggestion-actions.ts, wired by main.ts: the same code as `agent-pdp suggest
 * apply | dismiss`), and what the apply route does after a real apply: reload the server's policy.
 */
export interface SuggestionDecisions {
  /** Refusals are PdpErrors; a file rewritten whose decision was not recorded too, its message saying so. */
  actions: {
    apply(id: string, request: { by: string; note: string | null; dryRun: boolean }): Promise<AppliedSuggestion>;
    dismiss(id: string, request: { by: string; note: string | null }): Promise<SuggestionRecord>;
  };
  /** The server's reload (RouteDeps.reload: `POST /v1/admin/reload`'s, the other workers' too). */
  reload(): Promise<void>;
  /** Whether the server serves the policy folder (false: a compiled bundle or a bundle server; a real apply is refused). */
  servesFolder: boolean;
  /** The policies revision the server serves now. */
  servedRevision(): string | null;
}

interface ApplyBodyV1 {
  dry_run?: boolean;
  note?: string;
}

interface DismissBodyV1 {
  note?: string;
}

const noteSchema = { type: 'string', maxLength: SUGGESTION_NOTE_MAX, description: "recorded in the audit event's data (the change ticket, say)" };
const applyBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: { dry_run: { type: 'boolean', default: false, description: 'compute and check the change; write and record nothing' }, note: noteSchema },
};
const dismissBodySchema = { type: 'object', additionalProperties: false, properties: { note: noteSchema } };
const parseApplyBody = bodyValidator<ApplyBodyV1>(applyBodySchema);
const parseDismissBody = bodyValidator<DismissBodyV1>(dismissBodySchema);

/** The HTML report loads nothing and runs nothing; it says so itself too (a meta tag), for a copy saved to disk. */
const HTML_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

const text = { schema: { type: 'string' } };
const nullable = (schema: object): object => ({ oneOf: [schema, { type: 'null' }] });
const stringOrNull = { type: ['string', 'null'] };

/** A stored suggestion (SuggestionRecord). */
const suggestionSchema = {
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
};

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
    suggestions: { type: 'array', items: suggestionSchema },
    agents: { type: 'array', items: { type: 'object' }, description: 'a CLI run\'s per-agent analysis; [] here' },
  },
};

const errorSchema = { type: 'object', additionalProperties: false, required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } };

const appliedSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['suggestion', 'file', 'diff', 'sha256_before', 'sha256_after', 'written', 'revision_before', 'revision_after', 'new_warnings', 'reloaded', 'reload_error', 'policy_revision'],
  properties: {
    suggestion: { ...suggestionSchema, description: 'as stored after the apply (a dry run: as it is, open)' },
    file: { type: 'string', description: "the agent's policy file, relative to the policy folder" },
    diff: { type: 'string', description: 'unified diff of the change' },
    sha256_before: { type: 'string', description: "the file's SHA-256 before the change (the one the suggestion was made on)" },
    sha256_after: { type: 'string', description: 'and with it (what the audit event records)' },
    written: { type: 'boolean', description: 'false on a dry run' },
    revision_before: { type: 'string', description: 'the policies revision of the folder before the change' },
    revision_after: { type: 'string', description: 'and with it' },
    new_warnings: {
      type: 'array',
      description: 'compile warnings the changed file has that it did not have before',
      items: {
        type: 'object',
        required: ['path', 'message'],
        properties: { path: { type: 'string' }, message: { type: 'string' }, file: { type: 'string' }, line: { type: 'integer' }, column: { type: 'integer' } },
      },
    },
    reloaded: { type: 'boolean', description: 'the server reloaded its policy after writing the file (false on a dry run, or when the reload failed)' },
    reload_error: nullable({ ...errorSchema, description: 'why the reload failed: the file is written and the suggestion applied, the previous policy stays in force until a reload succeeds' }),
    policy_revision: { ...nullable({ type: 'string' }), description: 'the policies revision the server serves now (revision_after once reloaded)' },
  },
};

const idParameter = { name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'the suggestion id (`sg_…`)' };

/** Stored policy suggestions (docs/suggestions.md), for auditors and admins; applied or dismissed by admins. */
export function suggestionRoutes(reporter: SuggestionReporter, decisions: SuggestionDecisions): Route[] {
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
        const headers: Record<string, string> = { 'cache-control': 'no-store', ...(format === 'html' ? HTML_HEADERS : {}) };
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
    route<ApplyBodyV1>({
      method: 'POST',
      path: '/v1/suggestions/{id}/apply',
      roles: ['admin'],
      body: optionalJsonBody(parseApplyBody),
      async handle({ caller, params, body }) {
        const id = params['id'] ?? '';
        const dryRun = body.dry_run === true;
        if (!dryRun && !decisions.servesFolder) {
          throw new PdpError('invalid_request', 'this server serves a compiled bundle (policy.compiled or policy.service), not the policy folder: apply the suggestion where the bundle is built (agent-pdp suggest apply), or ask for a dry run', {
            details: [{ path: 'dry_run', message: 'only a dry run on a server that does not serve the policy folder' }],
          });
        }
        // A file rewritten whose decision the store did not record answers an error saying so (SuggestionNotRecorded).
        const applied = await decisions.actions.apply(id, { by: caller.id, note: body.note ?? null, dryRun });
        let reloadError: { code: string; message: string } | null = null;
        if (applied.written) {
          await decisions.reload().catch((err: unknown) => {
            reloadError = isPdpError(err) && err.expose
              ? { code: err.code, message: `${applied.file} is written and the suggestion applied, but the reload was refused (the previous policy stays in force): ${err.message}` }
              : { code: isPdpError(err) ? err.code : 'internal', message: `${applied.file} is written and the suggestion applied, but the reload failed (the previous policy stays in force); POST /v1/admin/reload says why` };
          });
        }
        const json = { ...applied, reloaded: applied.written && reloadError === null, reload_error: reloadError, policy_revision: decisions.servedRevision() };
        return { status: 200, json, headers: { 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'applySuggestion',
        summary: "Apply an open suggestion to its agent's policy file (or, dry_run, show the diff), then reload the policy",
        description:
          'As `agent-pdp suggest apply` does it: the suggestion must be open (409 suggestion_decided once applied or dismissed, suggestion_stale once withdrawn) and still hold on the evidence up to now, ' +
          "the file must be the one it was made on (409 suggestion_stale, nothing written), and the folder must compile with the change (422 policy_invalid). " +
          'Records `policy.suggestion.applied` with the caller as actor, then reloads the policy: the next decision uses the narrowed one. ' +
          'A failed reload does not undo the apply: `reloaded` is false and `reload_error` says why.',
        parameters: [idParameter],
        requestBody: { required: false, content: { 'application/json': { schema: applyBodySchema } } },
        responses: { '200': { description: 'applied (or the dry run)', content: { 'application/json': { schema: appliedSchema } } }, ...errors(400, 404, 409, 422, 503) },
      },
    }),
    route<DismissBodyV1>({
      method: 'POST',
      path: '/v1/suggestions/{id}/dismiss',
      roles: ['admin'],
      body: optionalJsonBody(parseDismissBody),
      async handle({ caller, params, body }) {
        const suggestion = await decisions.actions.dismiss(params['id'] ?? '', { by: caller.id, note: body.note ?? null });
        return { status: 200, json: { suggestion }, headers: { 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'dismissSuggestion',
        summary: 'Dismiss an open suggestion: it comes back only when its evidence changes',
        description: 'As `agent-pdp suggest dismiss` does it: records `policy.suggestion.dismissed` with the caller as actor. 409 suggestion_decided once applied or dismissed, suggestion_stale once withdrawn.',
        parameters: [idParameter],
        requestBody: { required: false, content: { 'application/json': { schema: dismissBodySchema } } },
        responses: {
          '200': {
            description: 'dismissed',
            content: { 'application/json': { schema: { type: 'object', additionalProperties: false, required: ['suggestion'], properties: { suggestion: suggestionSchema } } } },
          },
          ...errors(400, 404, 409, 503),
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
