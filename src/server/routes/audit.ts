import {
  EXPORT_FORMATS,
  EXPORT_MEDIA_TYPES,
  decisionCursor,
  decisionSummary,
  exportLines,
  inChunks,
  parseDecisionSearchQuery,
  parseExportQuery,
  planExport,
  writeChunks,
} from '../../audit/index.js';
import { PdpError } from '../../errors/pdp-error.js';
import type { AuditOverview } from '../../pdp/audit-overview.js';
import type { AuditVerification } from '../../pdp/audit-verification.js';
import type { Store } from '../../store/index.js';
import { DECISION_SEARCH_DEFAULT_LIMIT, DECISION_SEARCH_MAX_LIMIT, OVERVIEW_MAX_MINUTES } from '../../wire/audit-console-v1.js';
import type { AuditIntegrityV1, DecisionSearchV1 } from '../../wire/audit-console-v1.js';
import { RECORDED_OUTCOMES } from '../../wire/evaluation-v1.js';
import { errors, json } from '../openapi.js';
import { route, type Route } from '../route.js';

/** The audit console's services (src/pdp/, wired by main.ts): verifications of the stored chain, the overview. */
export interface AuditConsoleServices {
  verification: AuditVerification;
  overview: AuditOverview;
}

/** What the audit routes read from the store; they never write. */
export type AuditStore = Pick<Store, 'decisionChain' | 'getDecision' | 'chainStart' | 'chainHead' | 'iterateEvents' | 'searchDecisions'>;

const text = { schema: { type: 'string' } };
const queryParameter = (name: string, schema: object, description?: string): object => ({
  name,
  in: 'query',
  required: false,
  schema,
  ...(description ? { description } : {}),
});

/**
 * The audit trail over HTTP, role auditor (the overview: auditor or admin):
 * - GET /v1/audit/decisions/{decision_id}: the decision event and everything that followed from it, in order;
 * - GET /v1/audit/export: the trail (or a range / filtered part of it) as JSON Lines, CSV or OPA decision logs,
 *   streamed from the store page by page with backpressure;
 * - GET /v1/audit/decisions: the audit console's decision search, newest first, keyset-paged;
 * - GET /v1/audit/integrity, POST /v1/audit/verify: the chain's head and start, the last verification of this
 *   process, and a verification streamed as NDJSON progress lines and a result line;
 * - GET /v1/audit/overview: decisions per minute of the last N minutes.
 */
export function auditRoutes(store: AuditStore, now: () => Date, services: AuditConsoleServices): Route[] {
  const { verification, overview } = services;
  return [
    route({
      method: 'GET',
      path: '/v1/audit/decisions',
      roles: ['auditor'],
      async handle({ query }) {
        const request = parseDecisionSearchQuery(query);
        const page = await store.searchDecisions(request);
        const body: DecisionSearchV1 = {
          decisions: page.events.map((event) => decisionSummary(event)),
          next_cursor: page.next_before_seq === null ? null : decisionCursor(page.next_before_seq),
          scanned_through_seq: page.scanned_through_seq,
        };
        return { status: 200, json: body, headers: { 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'searchDecisions',
        summary: 'Search decision events, newest first: by agent, task, decision, outcome, reason code and time, keyset-paged',
        description:
          'Each page reads at most a bound of decision events (20,000): a rare outcome or reason over a long trail answers a short page (fewer than `limit`) whose `next_cursor` continues the search from where it stopped. `next_cursor` null: nothing older. The cursor is opaque.',
        parameters: [
          queryParameter('agent_id', { type: 'string' }),
          queryParameter('task_id', { type: 'string' }),
          queryParameter('decision_id', { type: 'string' }),
          queryParameter('outcome', { enum: [...RECORDED_OUTCOMES] }),
          queryParameter('reason', { type: 'string' }, 'decisions with a reason of this code'),
          queryParameter('since', { type: 'string' }, 'decisions at or after this time (RFC 3339 or a date)'),
          queryParameter('until', { type: 'string' }, 'decisions before this time'),
          queryParameter('limit', { type: 'integer', minimum: 1, maximum: DECISION_SEARCH_MAX_LIMIT, default: DECISION_SEARCH_DEFAULT_LIMIT }),
          queryParameter('cursor', { type: 'string' }, "the previous page's next_cursor"),
        ],
        responses: {
          '200': { description: 'a page of decisions', content: json('DecisionSearchV1') },
          ...errors(400, 503),
        },
      },
    }),
    route({
      method: 'GET',
      path: '/v1/audit/integrity',
      roles: ['auditor'],
      async handle() {
        const start = await store.chainStart();
        const head = await store.chainHead();
        // chainHead names the checkpoint (or genesis) when no event is stored: that is no head of events.
        let headEvent: AuditIntegrityV1['head'] = null;
        if (head.seq >= start.start_seq) {
          for await (const event of store.iterateEvents({ from_seq: head.seq, to_seq: head.seq })) headEvent = { seq: event.seq, hash: event.hash, time: event.time };
        }
        const body: AuditIntegrityV1 = {
          head: headEvent,
          start: { start_seq: start.start_seq, start_prev_hash: start.start_prev_hash },
          last_verification: verification.last,
        };
        return { status: 200, json: body, headers: { 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'getAuditIntegrity',
        summary: "The audit chain's head and start, and the last verification this PDP process ran (kept in memory, per process)",
        responses: {
          '200': { description: 'the chain and its last verification', content: json('AuditIntegrityV1') },
          ...errors(503),
        },
      },
    }),
    route({
      method: 'POST',
      path: '/v1/audit/verify',
      roles: ['auditor'],
      handle({ caller }) {
        const lines = verification.start(caller.id);
        return {
          status: 200,
          headers: { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-store' },
          async stream(res) {
            // A client that goes away stops reading; the verification runs to its end and is kept all the same.
            if (await writeChunks(ndjson(lines), res)) res.end();
          },
        };
      },
      openapi: {
        operationId: 'verifyAudit',
        summary: 'Verify the stored audit chain from its start, as `agent-pdp audit verify` does, streamed: progress lines, then the result',
        description:
          'NDJSON lines: `{"type":"progress","verified":n,"total":m}` then one `{"type":"result", ...VerificationV1}`. The result is kept as this process\'s last verification. One verification at a time per process: 409 `verification_running`.',
        responses: {
          '200': { description: 'the verification, streamed (VerifyLineV1 lines)', content: { 'application/x-ndjson': text } },
          ...errors(409, 503),
        },
      },
    }),
    route({
      method: 'GET',
      path: '/v1/audit/overview',
      roles: ['auditor', 'admin'],
      async handle({ query }) {
        const minutes = parseMinutes(query);
        return { status: 200, json: await overview.overview(minutes), headers: { 'cache-control': 'no-store' } };
      },
      openapi: {
        operationId: 'getAuditOverview',
        summary: 'Decisions of the last N minutes from the trail: per minute by outcome, totals, decisions per second, the top denial reasons',
        parameters: [queryParameter('minutes', { type: 'integer', minimum: 1, maximum: OVERVIEW_MAX_MINUTES, default: 60 })],
        responses: {
          '200': { description: 'the overview', content: json('AuditOverviewV1') },
          ...errors(400, 503),
        },
      },
    }),
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
          queryParameter('decision_id', { type: 'string' }, "one decision's events"),
          queryParameter('outcome', { enum: [...RECORDED_OUTCOMES] }, 'decision events with this outcome'),
          queryParameter('reason', { type: 'string' }, 'decision events with a reason of this code'),
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

/** `minutes` of the overview: 1..OVERVIEW_MAX_MINUTES, default 60; invalid_request naming it otherwise. */
function parseMinutes(query: Readonly<Record<string, string | string[]>>): number {
  const details = [];
  for (const key of Object.keys(query)) if (key !== 'minutes') details.push({ path: `query.${key}`, message: 'unknown parameter' });
  const value = query['minutes'];
  let minutes = 60;
  if (value !== undefined) {
    const n = typeof value === 'string' && /^[1-9][0-9]{0,3}$/.test(value) ? Number(value) : NaN;
    if (n >= 1 && n <= OVERVIEW_MAX_MINUTES) minutes = n;
    else details.push({ path: 'query.minutes', message: `must be an integer from 1 to ${OVERVIEW_MAX_MINUTES}` });
  }
  if (details.length > 0) throw new PdpError('invalid_request', `invalid overview query: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  return minutes;
}

async function* ndjson(lines: AsyncIterable<object>): AsyncGenerator<string> {
  for await (const line of lines) yield `${JSON.stringify(line)}\n`;
}
