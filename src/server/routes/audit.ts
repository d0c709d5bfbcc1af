import { EXPORT_FORMATS, EXPORT_MEDIA_TYPES, exportLines, inChunks, parseExportQuery, planExport, writeChunks } from '../../audit/index.js';
import { PdpError } from '../../errors/pdp-error.js';
import type { Store } from '../../store/index.js';
import { RECORDED_OUTCOMES } from '../../wire/evaluation-v1.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

/** What the audit routes read from the store; they never write. */
export type AuditStore = Pick<Store, 'decisionChain' | 'getDecision' | 'chainStart' | 'chainHead' | 'iterateEvents'>;

const text = { schema: { type: 'string' } };
const queryParameter = (name: string, schema: object, description?: string): object => ({
  name,
  in: 'query',
  required: false,
  schema,
  ...(description ? { description } : {}),
});

/**
 * The audit trail over HTTP, role auditor only:
 * - GET /v1/audit/decisions/{decision_id}: the decision event and everything that followed from it, in order;
 * - GET /v1/audit/export: the trail (or a range / filtered part of it) as JSON Lines, CSV or OPA decision logs,
 *   streamed from the store page by page with backpressure.
 */
export function auditRoutes(store: AuditStore, now: () => Date): Route[] {
  return [
    route({
      method: 'GET',
      path: '/v1/audit/decisions/{decision_id}',
      roles: ['auditor'],
      async handle({ params }) {
        const decisionId = params['decision_id'] ?? '';
        const events = await store.decisionChain(decisionId);
        if (events.length === 0 && (await store.getDecision(decisionId)) === undefined) {
          throw new PdpError('decision_not_found', `decision ${decisionId} does not exist`);
        }
        return { status: 200, json: { decision_id: decisionId, events }, headers: { 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'getDecisionChain',
        summary: "A decision and everything that followed from it, in order: its token, the token's uses and revocation, the completion of its task",
        parameters: [{ name: 'decision_id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: {
          '200': { description: 'the chain of events', content: json('DecisionChainV1') },
          ...errors(503),
          '404': { description: 'no such decision (code decision_not_found)', content: json('Error') },
        },
      },
    }),
    route({
      method: 'GET',
      path: '/v1/audit/export',
      roles: ['auditor'],
      async handle({ query }) {
        const { format, request } = parseExportQuery(query);
        const exportedAt = now();
        const plan = await planExport(store, request);
        const stamp = exportedAt.toISOString().replace(/[:.]/g, '-');
        return {
          status: 200,
          headers: {
            'content-type': EXPORT_MEDIA_TYPES[format],
            'content-disposition': `attachment; filename="agent-pdp-audit-${stamp}.${format === 'csv' ? 'csv' : 'jsonl'}"`,
            'cache-control': 'no-store',
            'x-content-type-options': 'nosniff',
          },
          async stream(res) {
            const lines = exportLines(store, plan, format, { exported_at: exportedAt.toISOString() });
            // A client that goes away stops the export; a store failure half-way cuts the response short, which a
            // JSON Lines reader detects (no trailer).
            if (await writeChunks(inChunks(lines), res)) res.end();
          },
        };
      },
      openapi: {
        operationId: 'exportAudit',
        summary: 'Export the audit trail, streamed: JSON Lines with hashes (verifiable on its own), CSV, or OPA decision logs',
        parameters: [
          queryParameter('format', { enum: [...EXPORT_FORMATS], default: 'jsonl' }),
          queryParameter('since', { type: 'string' }, 'from the first event at or after this time (RFC 3339 or a date)'),
          queryParameter('until', { type: 'string' }, 'up to the last event before the first one at or after this time'),
          queryParameter('from_seq', { type: 'integer', minimum: 1 }),
          queryParameter('to_seq', { type: 'integer', minimum: 1 }),
          queryParameter('agent_id', { type: 'string' }),
          queryParameter('task_id', { type: 'string' }),
          queryParameter('outcome', { enum: [...RECORDED_OUTCOMES] }, 'decision events with this outcome'),
          queryParameter('type', { type: 'string' }, 'event types, comma-separated'),
        ],
        responses: {
          '200': {
            description: 'the export; a JSON Lines export ends with a trailer line, so a cut-short response is detected',
            content: { 'application/x-ndjson': text, 'text/csv': text },
          },
          ...errors(503),
        },
      },
    }),
  ];
}
