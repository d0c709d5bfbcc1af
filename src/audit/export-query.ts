/**
 * The query of an audit export (`GET /v1/audit/export`'s parameters, or the CLI's options under the same names):
 * parsed and validated in one place for both.
 */
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { ID_PATTERN } from '../wire/decision-v1.js';
import { RECORDED_OUTCOMES, type RecordedOutcome } from '../wire/evaluation-v1.js';
import { AUDIT_EVENT_TYPES, isAuditEventType, type AuditEventType } from './audit-event.js';
import { EXPORT_FORMATS, type ExportFormat, type ExportRequest } from './export-plan.js';

/** A parsed export query: the format and what to export. */
export interface ExportQuery {
  format: ExportFormat;
  request: ExportRequest;
}

const QUERY_KEYS = new Set(['format', 'since', 'until', 'from_seq', 'to_seq', 'agent_id', 'task_id', 'decision_id', 'outcome', 'reason', 'type']);
const OUTCOMES: ReadonlySet<string> = new Set(RECORDED_OUTCOMES);
const ID = new RegExp(ID_PATTERN);
/** A reason code (`reasons[].code`): the core's (CORE_REASON_CODES) or an extension rule's. */
export const REASON_CODE = /^[A-Za-z0-9_.:-]{1,128}$/;
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
  for (const name of ['agent_id', 'task_id', 'decision_id'] as const) {
    const text = one(name);
    if (text === undefined) continue;
    if (!ID.test(text)) bad(name, 'is not a valid id');
    else request[name] = text;
  }
  const outcome = one('outcome');
  if (outcome !== undefined) {
    if (!OUTCOMES.has(outcome)) bad('outcome', `must be one of ${RECORDED_OUTCOMES.join(', ')}`);
    else request.outcome = outcome as RecordedOutcome;
  }
  const reason = one('reason');
  if (reason !== undefined) {
    if (!REASON_CODE.test(reason)) bad('reason', 'must be a reason code (letters, digits, _ . : -)');
    else request.reason = reason;
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
  if (format === 'opa' && request.types !== undefined && !request.types.every((t) => t === 'decision' || t === 'evaluation')) {
    bad('type', 'format opa holds decision and evaluation events only');
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
