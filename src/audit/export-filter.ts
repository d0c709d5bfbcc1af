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
  /** Decision events with this outcome. */
  outcome?: RecordedOutcome;
  types?: AuditEventType[];
}

/** True when `event` passes every member of `filter`. */
export function matchesFilter(event: AuditEventV1, filter: ExportFilterV1): boolean {
  if (filter.agent_id !== undefined && event.agent_id !== filter.agent_id) return false;
  if (filter.task_id !== undefined && event.task_id !== filter.task_id) return false;
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false;
  if (filter.outcome !== undefined && decisionOutcome(event) !== filter.outcome) return false;
  return true;
}

/**
 * The outcome a decision event records (`data.result.outcome`), or undefined for any other event. The data may be
 * parsed JSON or the stored text (RawJson).
 */
export function decisionOutcome(event: Pick<AuditEventV1, 'type' | 'data'>): string | undefined {
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
  const outcome = isObject(result) ? result['outcome'] : undefined;
  return typeof outcome === 'string' ? outcome : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
