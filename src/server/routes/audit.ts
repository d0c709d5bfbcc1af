import { Router } from 'express';
import {
  AUDIT_EVENT_TYPES,
  EXPORT_FORMATS,
  EXPORT_MEDIA_TYPES,
  exportLines,
  inChunks,
  isAuditEventType,
  planExport,
  writeChunks,
} from '../../audit/index.js';
import type { AuditEventType, ExportFormat, ExportRequest } from '../../audit/index.js';
import { PdpError, type ErrorDetail } from '../../errors/pdp-error.js';
import type { Store } from '../../store/index.js';
import { requireRole } from '../authenticate.js';

/** What the audit routes read from the store; they never write. */
export type AuditStore = Pick<Store, 'decisionChain' | 'getDecision' | 'chainStart' | 'chainHead' | 'iterateEvents'>;

/** A parsed export query: the format and what to export (query parameters of GET /v1/audit/export). */
export interface ExportQuery {
  format: ExportFormat;
  request: ExportRequest;
}

/**
 * The audit trail over HTTP, role auditor only:
 * - GET /v1/audit/decisions/{decision_id}: the decision event and everything that followed from it, in order;
 * - GET /v1/audit/export: the trail (or a range / filtered part of it) as JSON Lines, CSV or OPA decision logs,
 *   streamed from the store page by page with backpressure.
 */
export function auditRoutes(store: AuditStore, now: () => Date = () => new Date()): Router {
  const router = Router();
  router.get('/v1/audit/decisions/:decision_id', requireRole('auditor'), async (req, res) => {
    const decisionId = String(req.params['decision_id']);
    const events = await store.decisionChain(decisionId);
    if (events.length === 0 && (await store.getDecision(decisionId)) === undefined) {
      throw new PdpError('decision_not_found', `decision ${decisionId} does not exist`);
    }
    res.setHeader('cache-control', 'no-store');
    res.json({ decision_id: decisionId, events });
  });
  router.get('/v1/audit/export', requireRole('auditor'), async (req, res) => {
    const { format, request } = parseExportQuery(req.query as Record<string, unknown>);
    const exportedAt = now();
    const plan = await planExport(store, request);
    const stamp = exportedAt.toISOString().replace(/[:.]/g, '-');
    res.status(200);
    res.setHeader('content-type', EXPORT_MEDIA_TYPES[format]);
    res.setHeader('content-disposition', `attachment; filename="agent-pdp-audit-${stamp}.${format === 'csv' ? 'csv' : 'jsonl'}"`);
    res.setHeader('cache-control', 'no-store');
    res.setHeader('x-content-type-options', 'nosniff');
    const lines = exportLines(store, plan, format, { exported_at: exportedAt.toISOString() });
    // A client that goes away stops the export; a store failure half-way cuts the response short, which a JSON
    // Lines reader detects (no trailer) and the error handler logs.
    if (await writeChunks(inChunks(lines), res)) res.end();
  });
  return router;
}

const QUERY_KEYS = new Set(['format', 'since', 'until', 'from_seq', 'to_seq', 'agent_id', 'task_id', 'outcome', 'type']);
const OUTCOMES = new Set(['allow', 'deny', 'undefined', 'error']);
const ID = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$/;
const TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/**
 * Parses and validates the export query (HTTP query parameters, or the CLI's options under the same names).
 * invalid_request naming each offending parameter; an unknown parameter is an error, not ignored.
 */
export function parseExportQuery(query: Record<string, unknown>): ExportQuery {
  const details: ErrorDetail[] = [];
  const bad = (name: string, message: string): undefined => {
    details.push({ path: `query.${name}`, message });
    return undefined;
  };
  const one = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') return bad(name, 'must be given once');
    return value;
  };
  for (const key of Object.keys(query)) if (!QUERY_KEYS.has(key)) bad(key, 'unknown parameter');

  const formatText = one('format') ?? 'jsonl';
  const format = (EXPORT_FORMATS as readonly string[]).includes(formatText) ? (formatText as ExportFormat) : undefined;
  if (format === undefined) bad('format', `must be one of ${EXPORT_FORMATS.join(', ')}`);

  const request: ExportRequest = {};
  for (const name of ['since', 'until'] as const) {
    const text = one(name);
    if (text === undefined) continue;
    const time = parseAuditTime(text);
    if (time === undefined) bad(name, 'must be an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)');
    else request[name] = time;
  }
  for (const name of ['from_seq', 'to_seq'] as const) {
    const text = one(name);
    if (text === undefined) continue;
    const seq = /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(seq)) bad(name, 'must be an integer >= 1');
    else request[name] = seq;
  }
  for (const name of ['agent_id', 'task_id'] as const) {
    const text = one(name);
    if (text === undefined) continue;
    if (!ID.test(text)) bad(name, 'is not a valid id');
    else request[name] = text;
  }
  const outcome = one('outcome');
  if (outcome !== undefined) {
    if (!OUTCOMES.has(outcome)) bad('outcome', 'must be one of allow, deny, undefined, error');
    else request.outcome = outcome as ExportRequest['outcome'];
  }
  const types = typesOf(query['type']);
  if (types !== undefined) {
    const unknown = types.filter((t) => !isAuditEventType(t));
    if (unknown.length > 0 || types.length === 0) {
      bad('type', `must name event types (${Object.keys(AUDIT_EVENT_TYPES).join(', ')})`);
    } else {
      request.types = types as AuditEventType[];
    }
  }
  if (request.since !== undefined && request.until !== undefined && request.since >= request.until) {
    bad('until', 'must be after since');
  }
  if (request.from_seq !== undefined && request.to_seq !== undefined && request.from_seq > request.to_seq) {
    bad('to_seq', 'must be at least from_seq');
  }
  if (format === 'opa' && request.types !== undefined && !(request.types.length === 1 && request.types[0] === 'decision')) {
    bad('type', 'format opa holds decision events only');
  }
  if (details.length > 0 || format === undefined) {
    throw new PdpError('invalid_request', `invalid export query: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  }
  return { format, request };
}

/** RFC 3339 (any offset, any fraction) or a date, as the store's time format: ISO 8601 UTC with milliseconds. */
export function parseAuditTime(text: string): string | undefined {
  if (!TIME.test(text)) return undefined;
  const ms = Date.parse(text.length === 10 ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(ms)) return undefined;
  const iso = new Date(ms).toISOString();
  return /^\d{4}-/.test(iso) ? iso : undefined;
}

/** `type=a,b` or `type=a&type=b`. */
function typesOf(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  const parts = Array.isArray(value) ? value : [value];
  return parts.flatMap((p) => (typeof p === 'string' ? p.split(',') : [String(p)])).map((t) => t.trim());
}

const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
const error = (description: string) => ({ description, content: errorContent });
const ERRORS = {
  '401': error('no or unknown API key (code unauthenticated)'),
  '403': error('role or agent not permitted (forbidden_role, forbidden_agent, context_assertion_forbidden, decision_wrong_caller)'),
  '503': error('no policy, evaluation failure or store failure: nothing was allowed'),
};
const text = { schema: { type: 'string' } };

/**
 * The OpenAPI 3.1 description of these routes, for `src/server/openapi.ts` to spread into its document:
 * `...AUDIT_OPENAPI.schemas` into `components.schemas` and `...AUDIT_OPENAPI.paths` into `paths`.
 */
export const AUDIT_OPENAPI = {
  schemas: {
    AuditEventV1: {
      type: 'object',
      description: 'One event of the tamper-evident audit trail (docs/audit-events.md)',
      additionalProperties: false,
      required: ['v', 'seq', 'time', 'type', 'data', 'prev_hash', 'hash'],
      properties: {
        v: { const: 1 },
        seq: { type: 'integer', minimum: 1 },
        time: { type: 'string', format: 'date-time' },
        type: { enum: Object.keys(AUDIT_EVENT_TYPES) },
        decision_id: { type: 'string', minLength: 1 },
        jti: { type: 'string', minLength: 1 },
        task_id: { type: 'string', minLength: 1 },
        agent_id: { type: 'string', minLength: 1 },
        caller_id: { type: 'string', minLength: 1 },
        trace_id: { type: 'string', minLength: 1 },
        data: {},
        prev_hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
        hash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      },
    },
    DecisionChainV1: {
      type: 'object',
      additionalProperties: false,
      required: ['decision_id', 'events'],
      properties: {
        decision_id: { type: 'string' },
        events: { type: 'array', items: { $ref: '#/components/schemas/AuditEventV1' } },
      },
    },
  },
  paths: {
    '/v1/audit/decisions/{decision_id}': {
      get: {
        summary: 'A decision and everything that followed from it, in order: its token, the token\'s uses and revocation, the completion of its task (role auditor)',
        security: [{ apiKey: [] }],
        parameters: [{ name: 'decision_id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the chain of events', content: { 'application/json': { schema: { $ref: '#/components/schemas/DecisionChainV1' } } } },
          ...ERRORS,
          '404': error('no such decision (code decision_not_found)'),
        },
      },
    },
    '/v1/audit/export': {
      get: {
        summary: 'Export the audit trail, streamed: JSON Lines with hashes (verifiable on its own), CSV, or OPA decision logs (role auditor)',
        security: [{ apiKey: [] }],
        parameters: [
          { name: 'format', in: 'query', required: false, schema: { enum: [...EXPORT_FORMATS], default: 'jsonl' } },
          { name: 'since', in: 'query', required: false, description: 'from the first event at or after this time (RFC 3339 or a date)', schema: { type: 'string' } },
          { name: 'until', in: 'query', required: false, description: 'up to the last event before the first one at or after this time', schema: { type: 'string' } },
          { name: 'from_seq', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } },
          { name: 'to_seq', in: 'query', required: false, schema: { type: 'integer', minimum: 1 } },
          { name: 'agent_id', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'task_id', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'outcome', in: 'query', required: false, description: 'decision events with this outcome', schema: { enum: ['allow', 'deny', 'undefined', 'error'] } },
          { name: 'type', in: 'query', required: false, description: 'event types, comma-separated', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'the export; a JSON Lines export ends with a trailer line, so a cut-short response is detected',
            content: { 'application/x-ndjson': text, 'text/csv': text },
          },
          '400': error('malformed request: code invalid_request or body_too_large, details name the offending fields'),
          ...ERRORS,
        },
      },
    },
  },
} as const;
