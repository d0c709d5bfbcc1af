import { describe, expect, it } from 'vitest';
import { buildEvaluationInput, unregisteredTask } from '../../src/pdp/evaluation-input.js';
import type { DecisionRequestV1 } from '../../src/wire/decision-v1.js';

const base: DecisionRequestV1 = { agent_id: 'support-resolver', task: { id: 'task-1' }, integration: 'crm', scopes: ['tickets:read'] };
const TASK = { id: 'task-1', type: 'triage', context: { customer_id: '1234' }, registered: true };

describe('buildEvaluationInput (the one builder of EvaluationInputV1)', () => {
  it.each([
    {
      note: 'minimal request: no resource, no ttl_seconds keys at all',
      request: base,
      expected: { agent_id: 'support-resolver', caller_id: 'pep-1', task: TASK, integration: 'crm', scopes: ['tickets:read'] },
    },
    {
      note: 'resource and ttl_seconds are carried',
      request: { ...base, resource: { type: 'customer', id: '1234' }, ttl_seconds: 300 },
      expected: { agent_id: 'support-resolver', caller_id: 'pep-1', task: TASK, integration: 'crm', scopes: ['tickets:read'], resource: { type: 'customer', id: '1234' }, ttl_seconds: 300 },
    },
    {
      note: 'ttl_seconds 0 is a value, not an absence (one rule: present when defined)',
      request: { ...base, ttl_seconds: 0 },
      expected: { agent_id: 'support-resolver', caller_id: 'pep-1', task: TASK, integration: 'crm', scopes: ['tickets:read'], ttl_seconds: 0 },
    },
    {
      note: 'scopes deduplicated, first occurrence order kept',
      request: { ...base, scopes: ['tickets:write', 'tickets:read', 'tickets:write'] },
      expected: { agent_id: 'support-resolver', caller_id: 'pep-1', task: TASK, integration: 'crm', scopes: ['tickets:write', 'tickets:read'] },
    },
    {
      note: 'the given task and caller, never the request task',
      request: { ...base, task: { id: 'task-1', type: 'complaint_resolution', context: { customer_id: '9999' } } },
      expected: { agent_id: 'support-resolver', caller_id: 'pep-1', task: TASK, integration: 'crm', scopes: ['tickets:read'] },
    },
  ])('$note', ({ request, expected }) => {
    expect(buildEvaluationInput(request, 'pep-1', TASK)).toStrictEqual(expected);
  });
});

describe('unregisteredTask', () => {
  it.each([
    { note: 'id only: empty context, no type key', task: { id: 'a' }, expected: { id: 'a', context: {}, registered: false } },
    {
      note: 'type and context as asserted',
      task: { id: 'a', type: 'triage', context: { customer_id: 1234 } },
      expected: { id: 'a', type: 'triage', context: { customer_id: 1234 }, registered: false },
    },
  ])('$note', ({ task, expected }) => {
    expect(unregisteredTask(task)).toStrictEqual(expected);
  });
});
