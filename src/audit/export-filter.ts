/**
 * What a filtered export keeps, decided from the event itself: its hashed fields, never a column stored beside
 * it. An index or column outside the hash can be edited without breaking a single hash, so a filter that read
 * one would drop or add events silently; a filter that reads the event is bound to what the chain vouches for.
 */
import type { RecordedOutcome } from '../wire/evaluation-v1.js';
import type { AuditEventType, AuditEventV1 } from './audit-event.js';
import { RawJson } from './canonical-json.js';

/** The filters a filtered export applied (each narrows it). Absent from the header of an unfiltered export. */
export interface ExportFilterV1 {
  agent_id?: string;
  task_id?: string;
  /** The events of one decision (its decision event, its token and what followed that carries its id). */
  decision_id?: string;
  /** Decision events with this outcome. */
  outcome?: RecordedOutcome;
  /** Decision events with a reason of this code (`result.reasons[].code`). */
  reason?: string;
  types?: AuditEventType[];
}

/** True when `event` passes every member of `filter`. */
export function matchesFilter(event: AuditEventV1, filter: ExportFilterV1): boolean {
  if (filter.agent_id !== undefined && event.agent_id !== filter.agent_id) return false;
  if (filter.task_id !== undefined && event.task_id !== filter.task_id) return false;
  if (filter.decision_id !== undefined && event.decision_id !== filter.decision_id) return false;
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false;
  if (filter.outcome !== undefined && decisionOutcome(event) !== filter.outcome) return false;
  if (filter.reason !== undefined && !decisionReasonCodes(event).includes(filter.reason)) return false;
  return true;
}

/**
 * The outcome a decision event records (`data.result.outcome`), or undefined for any other event. The data may be
 * parsed JSON or the stored text (RawJson).
 */
export function decisionOutcome(event: Pick<AuditEventV1, 'type' | 'data'>): string | undefined {
  const result = decisionResult(event);
  const outcome = result === undefined ? undefined : result['outcome'];
  return typeof outcome === 'string' ? outcome : undefined;
}

/**
 * The reason codes a decision event records (`data.result.reasons[].code`, in order), or none for any other event.
 * The data may be parsed JSON or the stored text (RawJson).
 */
export function decisionReasonCodes(event: Pick<AuditEventV1, 'type' | 'data'>): string[] {
  const reasons = decisionResult(event)?.['reasons'];
  if (!Array.isArray(reasons)) return [];
  const codes: string[] = [];
  for (const reason of reasons) if (isObject(reason) && typeof reason['code'] === 'string') codes.push(reason['code']);
  return codes;
}

/** A decision event's `data.result` (parsing the stored text when the data is RawJson), or undefined. */
function decisionResult(event: Pick<AuditEventV1, 'type' | 'data'>): Record<string, unknown> | undefined {
  if (event.type !== 'decision') return undefined;
  let data = event.data;
  if (data instanceof RawJson) {
    try {
      data = JSON.parse(data.json) as unknown;
    } catch {
      return undefined;
    }
  }
  const result = isObject(data) ? data['result'] : undefined;
  return isObject(result) ? result : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
