/**
 * Decision events in OPA's decision-log event format (EventV1 of open-policy-agent/opa v1/plugins/logs/plugin.go),
 * so that a pipeline built for OPA decision logs ingests agent-pdp decisions unchanged. One event per line (JSON
 * Lines, as OPA's console decision logger and log shippers handle them); OPA's upload API takes a JSON array of
 * the same objects.
 *
 * Field names, types and omission rules are EventV1's JSON tags: `labels` and `decision_id` and `timestamp` are
 * always present, the others are omitted when empty. `decision` events (path `agentpdp/decision`) and `evaluation`
 * events (OPA's data API, AuthZEN requests routed to a Rego pack: their own path) map to EventV1; other event types
 * have no OPA counterpart and are not written.
 */
import type { AuditEventV1 } from './audit-event.js';

/** OPA EventV1, as much of it as agent-pdp fills, with OPA's JSON field names and types. */
export interface OpaDecisionLogEventV1 {
  /** `map[string]string`, always present. agent-pdp: `app`, and the event's place in the audit chain. */
  labels: Record<string, string>;
  decision_id: string;
  trace_id?: string;
  /** `map[string]BundleInfoV1`: bundle name → `{ revision }`. agent-pdp reports its policy revision. */
  bundles?: Record<string, { revision?: string }>;
  /** The queried rule as a slash-separated data path without `data/`. */
  path?: string;
  input?: unknown;
  result?: unknown;
  /** OPA writes the client address; agent-pdp the authenticated caller. */
  requested_by?: string;
  /** RFC 3339 with nanoseconds, trailing zeros dropped (Go's time.RFC3339Nano, as time.Time marshals). */
  timestamp: string;
}

/** The rule agent-pdp evaluates for a decision (policy/bundle-reader.ts DECISION_ENTRYPOINT). */
export const OPA_DECISION_PATH = 'agentpdp/decision';
/** The key under `bundles`: one policy revision covers the Rego bundle and the YAML agent policies together. */
export const OPA_BUNDLE_NAME = 'agent-pdp';

/** The OPA event of a decision or evaluation event; undefined for any other event type. */
export function toOpaEvent(event: AuditEventV1): OpaDecisionLogEventV1 | undefined {
  if ((event.type !== 'decision' && event.type !== 'evaluation') || event.decision_id === undefined) return undefined;
  const data = (typeof event.data === 'object' && event.data !== null ? event.data : {}) as Record<string, unknown>;
  const path = event.type === 'evaluation' && typeof data['path'] === 'string' ? data['path'] : OPA_DECISION_PATH;
  const revision = data['policy_revision'];
  // Built in EventV1's field order, so a line reads like one OPA wrote.
  const out: Record<string, unknown> = {
    labels: { app: 'agent-pdp', audit_seq: String(event.seq), audit_hash: event.hash },
    decision_id: event.decision_id,
  };
  if (event.trace_id !== undefined) out['trace_id'] = event.trace_id;
  if (typeof revision === 'string' && revision !== '') out['bundles'] = { [OPA_BUNDLE_NAME]: { revision } };
  out['path'] = path;
  if (data['input'] !== undefined) out['input'] = data['input'];
  if (data['result'] !== undefined) out['result'] = data['result'];
  if (event.caller_id !== undefined) out['requested_by'] = event.caller_id;
  out['timestamp'] = rfc3339Nano(event.time);
  return out as unknown as OpaDecisionLogEventV1;
}

/** `2026-01-31T12:00:00.120Z` → `2026-01-31T12:00:00.12Z`; `...:00.000Z` → `...:00Z` (Go's RFC3339Nano). */
export function rfc3339Nano(isoTime: string): string {
  return isoTime.replace(/\.(\d*?)0*Z$/, (_m, digits: string) => (digits === '' ? 'Z' : `.${digits}Z`));
}

/** The lines of an OPA-format export: one EventV1 per decision event. */
export async function* exportOpa(events: AsyncIterable<AuditEventV1> | Iterable<AuditEventV1>): AsyncGenerator<string> {
  for await (const event of events) {
    const opa = toOpaEvent(event);
    if (opa !== undefined) yield JSON.stringify(opa) + '\n';
  }
}
