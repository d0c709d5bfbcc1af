/**
 * The query of a decision search (`GET /v1/audit/decisions`'s parameters): parsed and validated in one place, the
 * export's rules for the parameters they share (export-query.ts), and the page cursor.
 *
 * The cursor is opaque to clients: `d1.` and the base64url of the seq the next page stays below. It names no
 * filter (a client that changes its filters starts again without one); a cursor that does not decode is a 400.
 */
import { PdpError, type ErrorDetail } from '../errors/pdp-error.js';
import { DECISION_SEARCH_DEFAULT_LIMIT, DECISION_SEARCH_MAX_LIMIT } from '../wire/audit-console-v1.js';
import { ID_PATTERN } from '../wire/decision-v1.js';
import { RECORDED_OUTCOMES, type RecordedOutcome } from '../wire/evaluation-v1.js';
import { REASON_CODE, parseAuditTime } from './export-query.js';

/** A parsed search: the store's DecisionSearchQuery (store.ts) takes exactly these. */
export interface DecisionSearchRequest {
  agent_id?: string;
  task_id?: string;
  decision_id?: string;
  since?: string;
  until?: string;
  outcome?: RecordedOutcome;
  reason?: string;
  before_seq?: number;
  limit: number;
}

const QUERY_KEYS = new Set(['agent_id', 'task_id', 'decision_id', 'outcome', 'reason', 'since', 'until', 'limit', 'cursor']);
const OUTCOMES: ReadonlySet<string> = new Set(RECORDED_OUTCOMES);
const ID = new RegExp(ID_PATTERN);
const CURSOR_PREFIX = 'd1.';

/** The cursor of the page that continues below `seq`. */
export function decisionCursor(seq: number): string {
  return `${CURSOR_PREFIX}${Buffer.from(String(seq), 'utf8').toString('base64url')}`;
}

/** The seq a cursor stands for, or undefined when it is not one of ours. */
export function seqOfDecisionCursor(cursor: string): number | undefined {
  if (!cursor.startsWith(CURSOR_PREFIX)) return undefined;
  const body = cursor.slice(CURSOR_PREFIX.length);
  if (!/^[A-Za-z0-9_-]{1,24}$/.test(body)) return undefined;
  const text = Buffer.from(body, 'base64url').toString('utf8');
  if (!/^[1-9][0-9]{0,15}$/.test(text) || decisionCursor(Number(text)) !== cursor) return undefined;
  const seq = Number(text);
  return Number.isSafeInteger(seq) ? seq : undefined;
}

/**
 * Parses and validates a decision search query. invalid_request naming each offending parameter (`query.NAME`;
 * the cursor as `cursor`); an unknown parameter is an error, not ignored.
 */
export function parseDecisionSearchQuery(query: Record<string, unknown>): DecisionSearchRequest {
  const details: ErrorDetail[] = [];
  const bad = (path: string, message: string): undefined => {
    details.push({ path, message });
    return undefined;
  };
  const one = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') return bad(`query.${name}`, 'must be given once');
    return value;
  };
  for (const key of Object.keys(query)) if (!QUERY_KEYS.has(key)) bad(`query.${key}`, 'unknown parameter');

  const request: DecisionSearchRequest = { limit: DECISION_SEARCH_DEFAULT_LIMIT };
  for (const name of ['agent_id', 'task_id', 'decision_id'] as const) {
    const text = one(name);
    if (text === undefined) continue;
    if (!ID.test(text)) bad(`query.${name}`, 'is not a valid id');
    else request[name] = text;
  }
  const outcome = one('outcome');
  if (outcome !== undefined) {
    if (!OUTCOMES.has(outcome)) bad('query.outcome', `must be one of ${RECORDED_OUTCOMES.join(', ')}`);
    else request.outcome = outcome as RecordedOutcome;
  }
  const reason = one('reason');
  if (reason !== undefined) {
    if (!REASON_CODE.test(reason)) bad('query.reason', 'must be a reason code (letters, digits, _ . : -)');
    else request.reason = reason;
  }
  for (const name of ['since', 'until'] as const) {
    const text = one(name);
    if (text === undefined) continue;
    const time = parseAuditTime(text);
    if (time === undefined) bad(`query.${name}`, 'must be an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)');
    else request[name] = time;
  }
  if (request.since !== undefined && request.until !== undefined && request.since >= request.until) bad('query.until', 'must be after since');
  const limit = one('limit');
  if (limit !== undefined) {
    const n = /^[1-9][0-9]{0,3}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= DECISION_SEARCH_MAX_LIMIT)) bad('query.limit', `must be an integer from 1 to ${DECISION_SEARCH_MAX_LIMIT}`);
    else request.limit = n;
  }
  const cursor = one('cursor');
  if (cursor !== undefined) {
    const seq = seqOfDecisionCursor(cursor);
    if (seq === undefined) bad('cursor', 'is not a cursor of this search: pass next_cursor as it came, or none');
    else request.before_seq = seq;
  }
  if (details.length > 0) {
    throw new PdpError('invalid_request', `invalid decision search: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`, { details });
  }
  return request;
}
