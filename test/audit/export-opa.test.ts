import { describe, expect, it } from 'vitest';
import { GENESIS_HEAD, OPA_DECISION_PATH, exportOpa, rfc3339Nano, sealEvent, toOpaEvent } from '../../src/audit/index.js';
import type { AuditEventV1, NewAuditEvent } from '../../src/audit/index.js';
import { eventV1Problems } from './opa-event-v1.js';

const decision: NewAuditEvent = {
  type: 'decision',
  time: '2026-01-31T12:00:00.120Z',
  decision_id: 'd-1',
  agent_id: 'support-resolver',
  caller_id: 'pep-1',
  task_id: 't-1',
  trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
  data: { input: { agent_id: 'support-resolver', scopes: ['tickets:write'] }, result: { outcome: 'deny', granted_scopes: [] }, policy_revision: 'b1.p1' },
};
const sealed = (e: NewAuditEvent): AuditEventV1 => sealEvent(GENESIS_HEAD, e);

describe('decision events as OPA decision-log events (EventV1)', () => {
  it('maps the decision: id, input as evaluated, result, policy revision, caller, time, and its place in the chain', () => {
    const event = sealed(decision);
    expect(toOpaEvent(event)).toEqual({
      labels: { app: 'agent-pdp', audit_seq: '1', audit_hash: event.hash },
      decision_id: 'd-1',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      bundles: { 'agent-pdp': { revision: 'b1.p1' } },
      path: OPA_DECISION_PATH,
      input: { agent_id: 'support-resolver', scopes: ['tickets:write'] },
      result: { outcome: 'deny', granted_scopes: [] },
      requested_by: 'pep-1',
      timestamp: '2026-01-31T12:00:00.12Z',
    });
  });

  it.each([
    { note: 'a full decision', event: decision },
    { note: 'no trace id', event: { ...decision, trace_id: undefined } },
    { note: 'no caller (never for decisions, still valid)', event: { ...decision, caller_id: undefined } },
  ])('writes EventV1 field names and types exactly: $note', ({ event }) => {
    const opa = JSON.parse(JSON.stringify(toOpaEvent(sealed(event)))) as Record<string, unknown>;
    expect(eventV1Problems(opa)).toEqual([]);
  });

  it('omits trace_id when there is none, as omitempty does', () => {
    expect(toOpaEvent(sealed({ ...decision, trace_id: undefined }))).not.toHaveProperty('trace_id');
  });

  it.each(['token.issued', 'token.used', 'task.registered', 'policy.loaded', 'auth.failed'] as const)(
    'has no OPA counterpart for %s events and writes none',
    async (type) => {
      const event = sealed({ type, time: decision.time, data: {} });
      expect(toOpaEvent(event)).toBeUndefined();
      const lines: string[] = [];
      for await (const line of exportOpa([event, sealed(decision)])) lines.push(line);
      expect(lines.map((l) => (JSON.parse(l) as { decision_id: string }).decision_id)).toEqual(['d-1']);
    },
  );

  it.each([
    { iso: '2026-01-31T12:00:00.123Z', go: '2026-01-31T12:00:00.123Z' },
    { iso: '2026-01-31T12:00:00.120Z', go: '2026-01-31T12:00:00.12Z' },
    { iso: '2026-01-31T12:00:00.100Z', go: '2026-01-31T12:00:00.1Z' },
    { iso: '2026-01-31T12:00:00.000Z', go: '2026-01-31T12:00:00Z' },
    { iso: '2026-01-31T12:00:10.000Z', go: '2026-01-31T12:00:10Z' },
  ])('formats $iso as Go time.RFC3339Nano does: $go', ({ iso, go }) => {
    expect(rfc3339Nano(iso)).toBe(go);
  });
});
