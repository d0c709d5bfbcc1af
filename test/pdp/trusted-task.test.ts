import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CallerConfig } from '../../src/config/config-types.js';
import { PdpError } from '../../src/errors/pdp-error.js';
import { resolveTask } from '../../src/pdp/trusted-task.js';
import type { RegisterTaskInput, Store } from '../../src/store/index.js';
import type { DecisionRequestV1 } from '../../src/wire/decision-v1.js';
import { CALLERS, T0, at, memoryStore, taskRegistration } from './pdp-fixtures.js';

type RequestTask = DecisionRequestV1['task'];

interface Row {
  note: string;
  caller: CallerConfig;
  /** The task registered before the request (id `task-1`); none when absent. */
  registered?: Partial<RegisterTaskInput>;
  completed?: boolean;
  /** Seconds after T0 at which the request is resolved. Default 10. */
  now?: number;
  task: RequestTask;
  denial?: string;
  /** The task the policy would see. */
  input: Record<string, unknown>;
}

const REGISTERED_INPUT = { id: 'task-1', type: 'complaint_resolution', context: { customer_id: '1234' }, registered: true };

const ROWS: Row[] = [
  // Unregistered tasks: only a caller trusted to assert context gets its assertion evaluated.
  {
    note: 'unregistered, trusted caller asserts type and context: evaluated as asserted',
    caller: CALLERS.trusted,
    task: { id: 'adhoc', type: 'triage', context: { customer_id: 42 } },
    input: { id: 'adhoc', type: 'triage', context: { customer_id: 42 }, registered: false },
  },
  {
    note: 'unregistered, trusted caller asserts nothing: empty context, no type',
    caller: CALLERS.trusted,
    task: { id: 'adhoc' },
    input: { id: 'adhoc', context: {}, registered: false },
  },
  {
    note: 'unregistered, strict caller asserts nothing: task_not_registered',
    caller: CALLERS.strict,
    task: { id: 'adhoc' },
    denial: 'task_not_registered',
    input: { id: 'adhoc', context: {}, registered: false },
  },
  // Registered tasks: the registration is what the policy sees.
  {
    note: 'registered, strict caller names it only',
    caller: CALLERS.strict,
    registered: {},
    task: { id: 'task-1' },
    input: REGISTERED_INPUT,
  },
  {
    note: 'registered, strict caller restates the same type and context: no assertion privilege needed',
    caller: CALLERS.strict,
    registered: {},
    task: { id: 'task-1', type: 'complaint_resolution', context: { customer_id: '1234' } },
    input: REGISTERED_INPUT,
  },
  {
    note: 'registered, trusted caller names it only: the registered context, not an empty one',
    caller: CALLERS.trusted,
    registered: {},
    task: { id: 'task-1' },
    input: REGISTERED_INPUT,
  },
  {
    note: 'registered for another agent',
    caller: CALLERS.trusted,
    registered: { agent_id: 'code-review-agent' },
    task: { id: 'task-1' },
    denial: 'task_agent_mismatch',
    input: REGISTERED_INPUT,
  },
  {
    note: 'registered for another agent and completed: the agent is checked first',
    caller: CALLERS.trusted,
    registered: { agent_id: 'code-review-agent' },
    completed: true,
    task: { id: 'task-1' },
    denial: 'task_agent_mismatch',
    input: REGISTERED_INPUT,
  },
  {
    note: 'completed',
    caller: CALLERS.strict,
    registered: {},
    completed: true,
    task: { id: 'task-1' },
    denial: 'task_completed',
    input: REGISTERED_INPUT,
  },
  {
    note: 'one millisecond before its expiry',
    caller: CALLERS.strict,
    registered: { expires_at: at(60) },
    now: 59.999,
    task: { id: 'task-1' },
    input: REGISTERED_INPUT,
  },
  {
    note: 'at exactly its expiry',
    caller: CALLERS.strict,
    registered: { expires_at: at(60) },
    now: 60,
    task: { id: 'task-1' },
    denial: 'task_expired',
    input: REGISTERED_INPUT,
  },
  {
    note: 'asserts another type',
    caller: CALLERS.trusted,
    registered: {},
    task: { id: 'task-1', type: 'triage' },
    denial: 'task_context_mismatch',
    input: REGISTERED_INPUT,
  },
  {
    note: 'asserts another context value',
    caller: CALLERS.trusted,
    registered: {},
    task: { id: 'task-1', context: { customer_id: '5678' } },
    denial: 'task_context_mismatch',
    input: REGISTERED_INPUT,
  },
  {
    note: 'asserts the number 1234 where the string "1234" is registered',
    caller: CALLERS.trusted,
    registered: {},
    task: { id: 'task-1', context: { customer_id: 1234 } },
    denial: 'task_context_mismatch',
    input: REGISTERED_INPUT,
  },
  {
    note: 'asserts the string "1234" where the number 1234 is registered',
    caller: CALLERS.trusted,
    registered: { context: { customer_id: 1234 } },
    task: { id: 'task-1', context: { customer_id: '1234' } },
    denial: 'task_context_mismatch',
    input: { ...REGISTERED_INPUT, context: { customer_id: 1234 } },
  },
  {
    note: 'asserts a context with an extra key',
    caller: CALLERS.trusted,
    registered: {},
    task: { id: 'task-1', context: { customer_id: '1234', region: 'eu' } },
    denial: 'task_context_mismatch',
    input: REGISTERED_INPUT,
  },
  {
    note: 'asserts an empty context',
    caller: CALLERS.trusted,
    registered: {},
    task: { id: 'task-1', context: {} },
    denial: 'task_context_mismatch',
    input: REGISTERED_INPUT,
  },
  {
    note: 'strict caller asserts another context: a denial, not a refusal (the task is registered)',
    caller: CALLERS.strict,
    registered: {},
    task: { id: 'task-1', context: { customer_id: '5678' } },
    denial: 'task_context_mismatch',
    input: REGISTERED_INPUT,
  },
];

describe('resolveTask: the task context a decision trusts', () => {
  let store: Store;
  beforeEach(async () => {
    store = await memoryStore();
  });
  afterEach(async () => {
    await store.close();
  });

  const request = (agent: string, task: RequestTask): DecisionRequestV1 => ({ agent_id: agent, task, integration: 'crm', scopes: ['tickets:read'] });

  it.each(ROWS)('$note', async (row) => {
    if (row.registered) await store.registerTask(taskRegistration('task-1', row.registered));
    if (row.completed) await store.completeTask({ task_id: 'task-1', by: 'orchestrator', at: at(1) });
    const now = new Date(T0 + (row.now ?? 10) * 1000);

    const resolved = await resolveTask(store, row.caller, request('support-resolver', row.task), now);

    expect(resolved.input).toStrictEqual(row.input);
    if (row.denial === undefined) expect(resolved.denial).toBeUndefined();
    else expect(resolved.denial).toEqual({ code: row.denial, message: expect.any(String) });
  });

  it.each<{ note: string; task: RequestTask }>([
    { note: 'a context', task: { id: 'adhoc', context: { customer_id: '1234' } } },
    { note: 'a type only', task: { id: 'adhoc', type: 'triage' } },
    { note: 'an empty context', task: { id: 'adhoc', context: {} } },
  ])('refuses (403 context_assertion_forbidden) a strict caller asserting $note for an unregistered task', async ({ task }) => {
    const refusal = await resolveTask(store, CALLERS.strict, request('support-resolver', task), new Date(T0)).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(PdpError);
    expect(refusal).toMatchObject({ code: 'context_assertion_forbidden', status: 403 });
  });
});
