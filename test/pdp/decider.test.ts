import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CallerConfig } from '../../src/config/config-types.js';
import { PdpError } from '../../src/errors/pdp-error.js';
import { Decider, NO_POLICY_REVISION, type DecisionObserver, type DecisionStore } from '../../src/pdp/decider.js';
import { buildEvaluationInput } from '../../src/pdp/evaluation-input.js';
import { PolicyEngine } from '../../src/pdp/policy-engine.js';
import type { Evaluation } from '../../src/policy/decision-types.js';
import type { Store } from '../../src/store/index.js';
import type { DecisionRequestV1 } from '../../src/wire/decision-v1.js';
import {
  CALLERS,
  allEvents,
  at,
  closedStore,
  frozenClock,
  loadEngine,
  memoryStore,
  removeTempDirs,
  taskRegistration,
  ticketRequest,
  type Clock,
} from './pdp-fixtures.js';

const WINDOW = 60;

/** Writes down what the decider tells its observer. */
function recordingObserver(): DecisionObserver & { calls: Array<[string, ...unknown[]]> } {
  const calls: Array<[string, ...unknown[]]> = [];
  return {
    calls,
    decided: (outcome, reasons) => void calls.push(['decided', outcome, reasons.map((r) => r.code)]),
    failed: (code) => void calls.push(['failed', code]),
  };
}

let engine: PolicyEngine;
beforeAll(async () => {
  engine = await loadEngine();
});
afterAll(removeTempDirs);

describe('Decider', () => {
  let store: Store;
  let clock: Clock;
  let observer: ReturnType<typeof recordingObserver>;
  let ids: number;

  const decider = (overrides: { engine?: PolicyEngine; store?: DecisionStore } = {}): Decider =>
    new Decider({
      engine: overrides.engine ?? engine,
      store: overrides.store ?? store,
      redeemWindowSeconds: WINDOW,
      observer,
      now: clock.read,
      newId: () => `dec-${++ids}`,
    });
  const decide = (caller: CallerConfig, request: DecisionRequestV1, d = decider()) => d.decide(caller, request, 'trace-1');
  const failure = (promise: Promise<unknown>): Promise<PdpError> =>
    promise.then(
      () => expect.unreachable('the decision must fail'),
      (err: unknown) => {
        expect(err).toBeInstanceOf(PdpError);
        return err as PdpError;
      },
    );

  beforeEach(async () => {
    store = await memoryStore();
    clock = frozenClock(10);
    observer = recordingObserver();
    ids = 0;
    await store.registerTask(taskRegistration('task-1'));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await store.close();
  });

  it('refuses (403 forbidden_agent) a caller asking for an agent it may not speak for, and records nothing', async () => {
    const err = await failure(decide(CALLERS.strict, { ...ticketRequest('task-1'), agent_id: 'code-review-agent' }));
    expect(err.code).toBe('forbidden_agent');
    expect((await allEvents(store)).map((e) => e.type)).toEqual(['task.registered']);
    expect(observer.calls).toEqual([]);
  });

  it('records an allow with its unmasked grant and a redeem window, and answers only after that', async () => {
    const request = ticketRequest('task-1', { scopes: ['tickets:write', 'tickets:write'], ttl_seconds: 300 });
    const response = await decide(CALLERS.strict, request);

    expect(response).toMatchObject({
      decision_id: 'dec-1',
      allow: true,
      outcome: 'allow',
      granted_scopes: ['tickets:write'],
      token_ttl_seconds: 300,
      task_id: 'task-1',
      redeemable_until: at(10 + WINDOW),
    });
    const record = await store.getDecision('dec-1');
    expect(record).toMatchObject({
      outcome: 'allow',
      caller_id: 'pep-strict',
      task_id: 'task-1',
      trace_id: 'trace-1',
      created_at: at(10),
      redeemable_until: at(10 + WINDOW),
      policy_revision: engine.active?.revision,
      result: response,
    });
    expect(record?.token_grant).toEqual({
      granted_scopes: ['tickets:write'],
      resource: { type: 'customer', id: '1234' },
      token_ttl_seconds: 300,
      task_id: 'task-1',
    });
    // The policy saw the registered task and the authenticated caller, built by the one input builder.
    const [event] = await store.decisionChain('dec-1');
    const trusted = { id: 'task-1', type: 'complaint_resolution', context: { customer_id: '1234' }, registered: true };
    expect((event?.data as { input: unknown }).input).toEqual(buildEvaluationInput(request, 'pep-strict', trusted, clock.read()));
    expect((event?.data as { input: { scopes: string[] } }).input.scopes).toEqual(['tickets:write']);
  });

  it('records a policy deny with no grant and no redeem window; the store will not redeem it', async () => {
    const response = await decide(CALLERS.strict, ticketRequest('task-1', { scopes: ['tickets:delete'] }));

    expect(response).toMatchObject({ allow: false, outcome: 'deny', granted_scopes: [], token_ttl_seconds: 0, redeemable_until: null });
    expect(response.reasons.map((r) => r.code)).toContain('deny_scope');
    expect(await store.getDecision(response.decision_id)).toMatchObject({ outcome: 'deny', token_grant: null, redeemable_until: null });
    const redeem = store.redeemDecision({ decision_id: response.decision_id, caller_id: 'pep-strict', now: at(11), makeToken: () => expect.unreachable() });
    expect((await failure(redeem)).code).toBe('decision_not_allowed');
  });

  // Each of these requests is allowed once its task is in order (previous test); the task alone denies it.
  it.each([
    { note: 'a strict caller names an unregistered task', code: 'task_not_registered', caller: CALLERS.strict, taskId: 'nowhere' },
    {
      note: 'the task belongs to another agent',
      code: 'task_agent_mismatch',
      caller: CALLERS.strict,
      setup: (s: Store) => s.registerTask(taskRegistration('task-2', { agent_id: 'code-review-agent' })),
    },
    {
      note: 'the task is completed',
      code: 'task_completed',
      caller: CALLERS.strict,
      setup: (s: Store) => s.registerTask(taskRegistration('task-2')).then(() => s.completeTask({ task_id: 'task-2', by: 'orchestrator', at: at(5) })),
    },
    {
      note: 'the task expires at the very moment of the decision',
      code: 'task_expired',
      caller: CALLERS.strict,
      setup: (s: Store) => s.registerTask(taskRegistration('task-2', { expires_at: at(10) })),
    },
    {
      note: 'a trusted caller asserts another customer than the registered one',
      code: 'task_context_mismatch',
      caller: CALLERS.trusted,
      setup: (s: Store) => s.registerTask(taskRegistration('task-2')),
      task: { id: 'task-2', context: { customer_id: '1234', region: 'eu' } },
    },
  ])('records a deny with reason $code when $note', async ({ code, caller, setup, taskId, task }) => {
    await setup?.(store);
    const evaluate = vi.spyOn(engine, 'evaluate');
    const response = await decide(caller, ticketRequest(taskId ?? 'task-2', task ? { task } : {}));

    expect(response).toMatchObject({ allow: false, outcome: 'deny', granted_scopes: [], denied_scopes: [], redeemable_until: null });
    expect(response.reasons).toEqual([{ code, message: expect.any(String) }]);
    expect(evaluate).not.toHaveBeenCalled();
    expect(await store.getDecision(response.decision_id)).toMatchObject({ outcome: 'deny', token_grant: null, redeemable_until: null });
    expect(observer.calls).toEqual([['decided', 'deny', [code]]]);
  });

  describe('an authorised request the PDP cannot evaluate', () => {
    const failingEvaluator = (): void => {
      vi.spyOn(engine.active!.evaluator, 'evaluate').mockImplementation(() => {
        throw new PdpError('evaluation_failed', 'policy evaluation failed: var assignment conflict');
      });
    };

    it.each([
      { note: 'the evaluator fails', code: 'evaluation_failed', caller: CALLERS.strict, loaded: true, revision: () => engine.active?.revision },
      { note: 'no policy is loaded', code: 'bundle_missing', caller: CALLERS.strict, loaded: false, revision: () => NO_POLICY_REVISION },
      {
        note: 'no policy is loaded and the task alone would deny',
        code: 'bundle_missing',
        caller: CALLERS.trusted,
        loaded: false,
        revision: () => NO_POLICY_REVISION,
        task: { id: 'task-1', type: 'triage' },
      },
    ] as const)('is recorded as outcome error ($note), then thrown; nothing is allowed', async ({ code, caller, loaded, revision, task }) => {
      if (loaded) failingEvaluator();
      const d = decider({ engine: loaded ? engine : new PolicyEngine({ bundlePath: '/nonexistent/bundle.tar.gz', policyDir: '/nonexistent' }) });

      const err = await failure(decide(caller, ticketRequest('task-1', task ? { task } : {}), d));

      expect(err.code).toBe(code);
      expect(err.status).toBe(503);
      const record = await store.getDecision('dec-1');
      expect(record).toMatchObject({ outcome: 'error', token_grant: null, redeemable_until: null, policy_revision: revision(), trace_id: 'trace-1' });
      expect(record?.result).toMatchObject({ allow: false, outcome: 'error', granted_scopes: [], token_ttl_seconds: 0, redeemable_until: null });
      expect((record?.result as { reasons: unknown }).reasons).toEqual([{ code, message: expect.any(String) }]);
      // Filterable in the trail, with the input the policy would have seen.
      const errors = [];
      for await (const event of store.iterateEvents({ outcome: 'error' })) errors.push(event);
      expect(errors.map((e) => e.decision_id)).toEqual(['dec-1']);
      expect((errors[0]?.data as { input: { task: { registered: boolean } } }).input.task.registered).toBe(true);
      const redeem = store.redeemDecision({ decision_id: 'dec-1', caller_id: caller.id, now: at(11), makeToken: () => expect.unreachable() });
      expect((await failure(redeem)).code).toBe('decision_not_allowed');
      expect(observer.calls).toEqual([['failed', code]]);
    });

    it('throws the evaluation error, not the store error, when recording it fails too', async () => {
      const broken = await closedStore();
      const d = decider({ store: { getTask: (id) => store.getTask(id), findElevations: (k) => store.findElevations(k), recordDecision: (r) => broken.recordDecision(r) } });
      failingEvaluator();

      const err = await failure(decide(CALLERS.strict, ticketRequest('task-1'), d));

      expect(err.code).toBe('evaluation_failed');
      expect(await store.getDecision('dec-1')).toBeUndefined();
      expect(observer.calls).toEqual([['failed', 'evaluation_failed']]);
    });
  });

  it('throws store_unavailable and answers nothing when an allow cannot be recorded', async () => {
    const broken = await closedStore();
    const d = decider({ store: { getTask: (id) => store.getTask(id), findElevations: (k) => store.findElevations(k), recordDecision: (r) => broken.recordDecision(r) } });

    const err = await failure(decide(CALLERS.strict, ticketRequest('task-1'), d));

    expect(err.code).toBe('store_unavailable');
    expect(err.status).toBe(503);
    expect(await store.getDecision('dec-1')).toBeUndefined();
    expect((await allEvents(store)).map((e) => e.type)).toEqual(['task.registered']);
    expect(observer.calls).toEqual([['failed', 'store_unavailable']]);
  });

  it('tells its observer every outcome: allow, deny, undefined and error', async () => {
    await decide(CALLERS.strict, ticketRequest('task-1'));
    await decide(CALLERS.strict, ticketRequest('task-1', { scopes: ['tickets:delete'] }));
    const undefinedEvaluation: Evaluation = {
      defined: false,
      outcome: 'undefined',
      granted_scopes: [],
      denied_scopes: [],
      reasons: [{ code: 'undefined', message: 'the policy produced no decision for this input' }],
      token_ttl_seconds: 0,
      elevated_scopes: [],
    };
    const evaluate = vi.spyOn(engine.active!.evaluator, 'evaluate').mockReturnValueOnce(undefinedEvaluation);
    const undecided = await decide(CALLERS.strict, ticketRequest('task-1'));
    evaluate.mockImplementationOnce(() => {
      throw new PdpError('evaluation_failed', 'policy evaluation failed');
    });
    await failure(decide(CALLERS.strict, ticketRequest('task-1')));
    // Refusals of the request itself are not outcomes.
    await failure(decide(CALLERS.strict, { ...ticketRequest('task-1'), agent_id: 'code-review-agent' }));
    await failure(decide(CALLERS.strict, ticketRequest('adhoc', { task: { id: 'adhoc', context: { customer_id: '1234' } } })));

    expect(observer.calls).toEqual([
      ['decided', 'allow', ['allowed']],
      ['decided', 'deny', ['deny_scope', 'no_scope_granted']],
      ['decided', 'undefined', ['undefined']],
      ['failed', 'evaluation_failed'],
    ]);
    expect(undecided).toMatchObject({ allow: false, outcome: 'undefined', redeemable_until: null });
    expect(await store.getDecision(undecided.decision_id)).toMatchObject({ outcome: 'undefined', token_grant: null });
    const outcomes = (await allEvents(store)).filter((e) => e.type === 'decision').map((e) => (e.data as { result: { outcome: string } }).result.outcome);
    expect(outcomes).toEqual(['allow', 'deny', 'undefined', 'error']);
  });
});
