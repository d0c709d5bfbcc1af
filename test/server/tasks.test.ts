import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskRegistrationV1 } from '../../src/wire/decision-v1.js';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * Tasks carry the context decisions trust: registered by an orchestrator, read back, completed; and decisions
 * for a task that is completed, expired, unknown, someone else's or contradicted are denied, and say why.
 */

const DEFAULT_TTL_SECONDS = 3600;
const MAX_TTL_SECONDS = 86400;

let t: TestPdp;
let api: OpenApiChecker;
let seq = 0;

beforeAll(async () => {
  t = await startTestPdp();
  api = await OpenApiChecker.fetch(t.url);
});
afterAll(async () => {
  await t.close();
});

const uniqueId = (prefix: string): string => `${prefix}-${++seq}`;
const at = (secondsFromNow: number): string => new Date(t.clock.now.getTime() + secondsFromNow * 1000).toISOString();

async function register(task: Omit<TaskRegistrationV1, 'id'> & { id?: string }): Promise<string> {
  const id = task.id ?? uniqueId('task');
  const res = await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ ...task, id }).expect(201);
  api.expectResponse(res);
  return id;
}

const complaint = (context: Record<string, string | number | boolean> = { customer_id: '1234' }) => ({
  agent_id: 'support-resolver',
  type: 'complaint_resolution',
  context,
});

describe('task registration, reading and completion', () => {
  it('registers with the default lifetime and reads back the same task', async () => {
    const id = uniqueId('life');
    const res = await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, ...complaint() }).expect(201);
    api.expectResponse(res);
    const expected = {
      id,
      agent_id: 'support-resolver',
      type: 'complaint_resolution',
      context: { customer_id: '1234' },
      status: 'active',
      registered_by: 'orchestrator',
      registered_at: at(0),
      expires_at: at(DEFAULT_TTL_SECONDS),
      completed_at: null,
    };
    expect(res.body).toEqual(expected);
    for (const key of [KEYS.orchestrator, KEYS.auditor, KEYS.admin]) {
      const read = await request(t.url).get(`/v1/tasks/${id}`).set(auth(key)).expect(200);
      api.expectResponse(read);
      expect(read.body).toEqual(expected);
    }
  });

  it('an id with a slash is read back through its percent-encoded path', async () => {
    const id = await register({ id: uniqueId('team/a'), ...complaint() });
    const read = await request(t.url).get(`/v1/tasks/${encodeURIComponent(id)}`).set(auth(KEYS.auditor)).expect(200);
    expect(read.body.id).toBe(id);
  });

  it.each([
    { note: 'a short lifetime', expires_in_seconds: 60 },
    { note: 'exactly the configured maximum', expires_in_seconds: MAX_TTL_SECONDS },
  ])('honours expires_in_seconds: $note', async ({ expires_in_seconds }) => {
    const res = await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id: uniqueId('ttl'), ...complaint(), expires_in_seconds }).expect(201);
    expect(res.body.expires_at).toBe(at(expires_in_seconds));
  });

  it('refuses a lifetime above the configured maximum → 400 naming expires_in_seconds', async () => {
    const res = await request(t.url)
      .post('/v1/tasks')
      .set(auth(KEYS.orchestrator))
      .send({ id: uniqueId('ttl'), ...complaint(), expires_in_seconds: MAX_TTL_SECONDS + 1 })
      .expect(400);
    api.expectResponse(res);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', details: [{ path: 'expires_in_seconds', message: `must be at most ${MAX_TTL_SECONDS}` }] });
  });

  it('a second registration of one id → 409 task_exists, and the first one stands', async () => {
    const id = await register(complaint({ customer_id: '1234' }));
    const res = await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, ...complaint({ customer_id: '9999' }) }).expect(409);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('task_exists');
    const read = await request(t.url).get(`/v1/tasks/${id}`).set(auth(KEYS.orchestrator)).expect(200);
    expect(read.body.context).toEqual({ customer_id: '1234' });
  });

  it('completes once: 200 with the completion, then 409 task_not_active', async () => {
    const id = await register(complaint());
    t.clock.advance(5);
    const done = await request(t.url).post(`/v1/tasks/${id}/complete`).set(auth(KEYS.orchestrator)).expect(200);
    api.expectResponse(done);
    expect(done.body).toMatchObject({ id, status: 'completed', completed_at: at(0), revoked_tokens: 0 });
    const again = await request(t.url).post(`/v1/tasks/${id}/complete`).set(auth(KEYS.orchestrator)).expect(409);
    api.expectResponse(again);
    expect(again.body.error.code).toBe('task_not_active');
    const read = await request(t.url).get(`/v1/tasks/${id}`).set(auth(KEYS.auditor)).expect(200);
    expect(read.body).toMatchObject({ status: 'completed', completed_at: done.body.completed_at });
  });

  it.each([
    { note: 'read', method: 'get', path: '/v1/tasks/no-such-task' },
    { note: 'complete', method: 'post', path: '/v1/tasks/no-such-task/complete' },
  ] as const)('an unknown task → 404 task_not_found ($note)', async ({ method, path }) => {
    const res = await request(t.url)[method](path).set(auth(KEYS.orchestrator)).expect(404);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('task_not_found');
  });

  it('reads as expired once its lifetime has passed', async () => {
    const id = await register({ ...complaint(), expires_in_seconds: 30 });
    t.clock.advance(31);
    const read = await request(t.url).get(`/v1/tasks/${id}`).set(auth(KEYS.orchestrator)).expect(200);
    api.expectResponse(read);
    expect(read.body.status).toBe('expired');
  });
});

describe('decisions against tasks', () => {
  /** What a pep that may assert context sends along with the id: the same type and context as registered. */
  const ECHO = { type: 'complaint_resolution', context: { customer_id: '1234' } };
  interface Case {
    note: string;
    setup: () => Promise<string>;
    key: string;
    task?: { type?: string; context?: Record<string, string | number | boolean> };
    agent?: string;
    reason: string;
  }

  const registered = (ctx?: Record<string, string | number | boolean>) => () => register(complaint(ctx));
  const completed = async (): Promise<string> => {
    const id = await register(complaint());
    await request(t.url).post(`/v1/tasks/${id}/complete`).set(auth(KEYS.orchestrator)).expect(200);
    return id;
  };
  const expired = async (): Promise<string> => {
    const id = await register({ ...complaint(), expires_in_seconds: 10 });
    t.clock.advance(10); // expires_at is now: a task is expired at its expiry instant, not after it
    return id;
  };
  const unregistered = async (): Promise<string> => uniqueId('never-registered');

  it.each<Case>([
    { note: 'completed task, strict pep', setup: completed, key: KEYS.strictPep, reason: 'task_completed' },
    { note: 'completed task, pep that echoes its context', setup: completed, key: KEYS.pep, task: ECHO, reason: 'task_completed' },
    { note: 'expired task (the sweep has not run yet)', setup: expired, key: KEYS.strictPep, reason: 'task_expired' },
    { note: 'expired task, pep that echoes its context', setup: expired, key: KEYS.pep, task: ECHO, reason: 'task_expired' },
    { note: 'unregistered task, strict pep names only its id', setup: unregistered, key: KEYS.strictPep, reason: 'task_not_registered' },
    {
      note: 'a task registered for another agent',
      setup: () => register({ agent_id: 'mailbox-summarizer', type: 'summarize', context: { mailbox: 'support' } }),
      key: KEYS.strictPep,
      reason: 'task_agent_mismatch',
    },
    {
      note: 'another agent, even when the pep also asserts the context',
      setup: () => register({ agent_id: 'code-review-agent', type: 'complaint_resolution', context: { customer_id: '1234' } }),
      key: KEYS.pep,
      task: ECHO,
      reason: 'task_agent_mismatch',
    },
    { note: 'asserted context names another customer', setup: registered(), key: KEYS.pep, task: { context: { customer_id: '5678' } }, reason: 'task_context_mismatch' },
    { note: 'asserted context adds a key', setup: registered(), key: KEYS.pep, task: { context: { customer_id: '1234', vip: true } }, reason: 'task_context_mismatch' },
    { note: 'asserted context drops a key', setup: registered({ customer_id: '1234', region: 'eu' }), key: KEYS.pep, task: { context: { customer_id: '1234' } }, reason: 'task_context_mismatch' },
    { note: 'asserted context: a number is not its string', setup: registered(), key: KEYS.pep, task: { context: { customer_id: 1234 } }, reason: 'task_context_mismatch' },
    { note: 'asserted type differs', setup: registered(), key: KEYS.pep, task: { type: 'triage' }, reason: 'task_context_mismatch' },
    { note: 'a strict pep contradicting the registration is denied too', setup: registered(), key: KEYS.strictPep, task: { context: { customer_id: '5678' } }, reason: 'task_context_mismatch' },
  ])('denied: $note → $reason', async ({ setup, key, task, agent, reason }) => {
    const id = await setup();
    const res = await request(t.url)
      .post('/v1/decide')
      .set(auth(key))
      .send({ agent_id: agent ?? 'support-resolver', task: { id, ...task }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } })
      .expect(200);
    api.expectResponse(res);
    expect(res.body).toMatchObject({
      allow: false,
      outcome: 'deny',
      granted_scopes: [],
      denied_scopes: [],
      reasons: [{ code: reason }],
      token_ttl_seconds: 0,
      task_id: id,
      redeemable_until: null,
      policy_revision: t.pdp.engine.active?.revision,
    });
    expect(await t.pdp.store.getDecision(res.body.decision_id)).toMatchObject({ outcome: 'deny', task_id: id });
  });

  it.each<Omit<Case, 'reason'> & { resource: string; outcome: string; granted: string[] }>([
    { note: 'strict pep, task id only: the registered context decides', setup: registered(), key: KEYS.strictPep, resource: '1234', outcome: 'allow', granted: ['tickets:write'] },
    { note: 'the registered customer binds the record', setup: registered(), key: KEYS.strictPep, resource: '5678', outcome: 'deny', granted: [] },
    { note: 'echoing the registered context is not a mismatch', setup: registered(), key: KEYS.pep, task: ECHO, resource: '1234', outcome: 'allow', granted: ['tickets:write'] },
    { note: 'a numeric registered id matches its decimal resource id', setup: registered({ customer_id: 1234 }), key: KEYS.strictPep, resource: '1234', outcome: 'allow', granted: ['tickets:write'] },
    {
      note: 'the registered type decides: triage caps write to read',
      setup: () => register({ agent_id: 'support-resolver', type: 'triage', context: { customer_id: '1234' } }),
      key: KEYS.strictPep,
      resource: '1234',
      outcome: 'allow',
      granted: ['tickets:read'],
    },
    { note: 'an unregistered task with context, from a pep trusted to assert it', setup: unregistered, key: KEYS.pep, task: ECHO, resource: '1234', outcome: 'allow', granted: ['tickets:write'] },
  ])('evaluated: $note', async ({ setup, key, task, resource, outcome, granted }) => {
    const id = await setup();
    const res = await request(t.url)
      .post('/v1/decide')
      .set(auth(key))
      .send({ agent_id: 'support-resolver', task: { id, ...task }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: resource } })
      .expect(200);
    api.expectResponse(res);
    expect(res.body).toMatchObject({ outcome, allow: outcome === 'allow', granted_scopes: granted, task_id: id });
  });

  it('the evaluation sees the registered task, not what the request claims', async () => {
    const id = await register(complaint({ customer_id: '1234' }));
    const res = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.strictPep))
      .send({ agent_id: 'support-resolver', task: { id }, integration: 'crm', scopes: ['tickets:read'] })
      .expect(200);
    const [event] = await t.pdp.store.decisionChain(res.body.decision_id);
    expect(event?.data).toMatchObject({
      input: { task: { id, type: 'complaint_resolution', context: { customer_id: '1234' }, registered: true }, caller_id: 'pep-strict' },
    });
  });

  it('completing a task turns its next decision from allow into task_completed', async () => {
    const id = await register(complaint());
    const ask = () =>
      request(t.url)
        .post('/v1/decide')
        .set(auth(KEYS.strictPep))
        .send({ agent_id: 'support-resolver', task: { id }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } })
        .expect(200);
    expect((await ask()).body.outcome).toBe('allow');
    await request(t.url).post(`/v1/tasks/${id}/complete`).set(auth(KEYS.orchestrator)).expect(200);
    expect((await ask()).body).toMatchObject({ outcome: 'deny', reasons: [{ code: 'task_completed' }] });
  });
});
