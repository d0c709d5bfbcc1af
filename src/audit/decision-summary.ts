/**
 * A decision event as the audit console lists it (`DecisionSummaryV1`): read from the event's hashed fields and its
 * data (`{ input, result, policy_revision }`), never from a column stored beside it. A member the data lacks (an
 * older or hand-made event) is null or empty, not an error: a listing shows what the trail holds.
 */
import type { DecisionSummaryV1 } from '../wire/audit-console-v1.js';
import { RECORDED_OUTCOMES, type RecordedOutcome } from '../wire/evaluation-v1.js';
import type { AuditEventV1 } from './audit-event.js';
import { RawJson } from './canonical-json.js';
import { decisionReasonCodes } from './export-filter.js';

const OUTCOMES: ReadonlySet<string> = new Set(RECORDED_OUTCOMES);

/** The summary of a decision event. TypeError for any other event type. */
export function decisionSummary(event: AuditEventV1): DecisionSummaryV1 {
  if (event.type !== 'decision') throw new TypeError(`event ${event.seq} is a ${event.type} event, not a decision`);
  const data = objectOf(event.data instanceof RawJson ? parse(event.data.json) : event.data);
  const input = objectOf(data['input']);
  const result = objectOf(data['result']);
  const outcome = result['outcome'];
  return {
    seq: event.seq,
    time: event.time,
    decision_id: event.decision_id ?? stringOr(result['decision_id']) ?? '',
    agent_id: event.agent_id ?? stringOr(input['agent_id']),
    task_id: event.task_id ?? null,
    caller_id: event.caller_id ?? null,
    integration: stringOr(input['integration']) ?? stringOr(result['integration']),
    outcome: typeof outcome === 'string' && OUTCOMES.has(outcome) ? (outcome as RecordedOutcome) : null,
    allow: result['allow'] === true,
    requested_scopes: strings(input['scopes']),
    granted_scopes: strings(result['granted_scopes']),
    reasons: decisionReasonCodes(event),
    policy_revision: stringOr(data['policy_revision']) ?? stringOr(result['policy_revision']),
  };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function objectOf(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function stringOr(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
