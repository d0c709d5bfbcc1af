import { join } from 'node:path';
import Database from 'better-sqlite3';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionRequestV1, DecisionResponseV1 } from '../../src/wire/decision-v1.js';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { sampleValue } from '../support/prometheus-text.js';
import { ALWAYS_UNDEFINED_REGO, buildTestBundle, OUTCOMES_REGO } from '../support/test-bundle.js';

/** POST /v1/decide: the four outcomes, fail-closed errors, trace context, readiness and metrics. */

const REDEEM_WINDOW_SECONDS = 60;
const VALID_TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

function decision(
  agent_id: string,
  integration: string,
  scopes: string[],
  extra: Partial<DecisionRequestV1> = {},
): DecisionRequestV1 {
  return { agent_id, task: { id: 'task-inline' }, integration, scopes, ...extra };
}

const post = (t: TestPdp, key: string, body: unknown) =>
  request(t.url).post('/v1/decide').set(auth(key)).send(body as object);

const metricsText = async (t: TestPdp): Promise<string> => (await request(t.url).get('/metrics').expect(200)).text;

describe('with the shipped bundle and policies', () => {
  let t: TestPdp;
  let api: OpenApiChecker;
  let startedAt: string;

  beforeAll(async () => {
    t = await startTestPdp();
    startedAt = t.clock.now.toISOString();
    api = await OpenApiChecker.fetch(t.url);
    await request(t.url)
      .post('/v1/tasks')
      .set(auth(KEYS.orchestrator))
      .send({ id: 'task-42', agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } })
      .expect(201);
  });
  afterAll(async () => {
    await t.close();
  });

  const complaint = { id: 'task-inline', type: 'complaint_resolution', context: { customer_id: '1234' } };

  it.each([
    {
      note: 'allow: reads within the ceiling',
      key: KEYS.pep,
      body: decision('code-review-agent', 'github', ['repo:read', 'pr:read']),
      outcome: 'allow',
      granted: ['pr:read', 'repo:read'],
      denied: [],
      reasons: ['allowed'],
      ttl: 3600,
    },
    {
      note: 'allow: issues:write is capped to the issues:read it implies',
      key: KEYS.pep,
      body: decision('code-review-agent', 'github', ['issues:write']),
      outcome: 'allow',
      granted: ['issues:read'],
      denied: [{ scope: 'issues:write', reason: 'capped', granted_instead: ['issues:read'] }],
      reasons: ['allowed', 'scopes_capped'],
      ttl: 3600,
    },
    {
      note: 'allow: the ttl is the smaller of the policy and the request',
      key: KEYS.pep,
      body: decision('code-review-agent', 'slack', ['chat:write'], { ttl_seconds: 120 }),
      outcome: 'allow',
      granted: ['chat:write'],
      denied: [],
      reasons: ['allowed'],
      ttl: 120,
    },
    {
      note: 'deny: one deny_scope refuses the whole request',
      key: KEYS.pep,
      body: decision('code-review-agent', 'github', ['repo:read', 'repo:write']),
      outcome: 'deny',
      granted: [],
      denied: [{ scope: 'repo:write', reason: 'deny_scope' }],
      reasons: ['deny_scope'],
      ttl: 0,
    },
    {
      note: 'deny: an integration the agent has no policy for',
      key: KEYS.pep,
      body: decision('code-review-agent', 'crm', ['tickets:read']),
      outcome: 'deny',
      granted: [],
      denied: [],
      reasons: ['integration_not_allowed'],
      ttl: 0,
    },
    {
      note: 'allow: registered task, its customer (strict pep sends only task.id)',
      key: KEYS.strictPep,
      body: decision('support-resolver', 'crm', ['tickets:write'], { task: { id: 'task-42' }, resource: { type: 'customer', id: '1234' } }),
      outcome: 'allow',
      granted: ['tickets:write'],
      denied: [],
      reasons: ['allowed'],
      ttl: 900,
    },
    {
      note: 'deny: registered task, another customer',
      key: KEYS.strictPep,
      body: decision('support-resolver', 'crm', ['tickets:write'], { task: { id: 'task-42' }, resource: { type: 'customer', id: '5678' } }),
      outcome: 'deny',
      granted: [],
      denied: [{ scope: 'tickets:write', reason: 'record_binding' }],
      reasons: ['record_binding_mismatch'],
      ttl: 0,
    },
    {
      note: 'allow: context asserted inline by a pep trusted to assert it',
      key: KEYS.pep,
      body: decision('support-resolver', 'crm', ['tickets:write'], { task: complaint, resource: { type: 'customer', id: '1234' } }),
      outcome: 'allow',
      granted: ['tickets:write'],
      denied: [],
      reasons: ['allowed'],
      ttl: 900,
    },
    {
      note: 'deny: a task type the agent does not declare',
      key: KEYS.pep,
      body: decision('support-resolver', 'crm', ['tickets:read'], { task: { id: 'task-inline', type: 'refund' } }),
      outcome: 'deny',
      granted: [],
      denied: [{ scope: 'tickets:read', reason: 'task_type' }],
      reasons: ['no_scope_granted', 'task_type_not_allowed'],
      ttl: 0,
    },
  ])('$note', async ({ key, body, outcome, granted, denied, reasons, ttl }) => {
    const res = await post(t, key, body).expect(200);
    api.expectResponse(res);
    const r = res.body as DecisionResponseV1;
    expect(r).toMatchObject({
      allow: outcome === 'allow',
      outcome,
      agent_id: body.agent_id,
      integration: body.integration,
      granted_scopes: granted,
      denied_scopes: denied,
      token_ttl_seconds: ttl,
      task_id: body.task.id,
      resource: body.resource ?? null,
    });
    expect(r.reasons.map((x) => x.code)).toEqual(reasons);
    const ready = await request(t.url).get('/readyz').expect(200);
    expect(r.policy_revision).toBe(ready.body.policy_revision);
    expect(r.redeemable_until).toBe(
      outcome === 'allow' ? new Date(t.clock.now.getTime() + REDEEM_WINDOW_SECONDS * 1000).toISOString() : null,
    );
    // A UUIDv7 stamped with the PDP's clock (time-ordered keys for the store's indexes).
    expect(r.decision_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(r.decision_id.replaceAll('-', '').slice(0, 12), 16)).toBe(t.clock.now.getTime());
    // Nothing reaches the caller before it is durably recorded.
    const stored = await t.pdp.store.getDecision(r.decision_id);
    expect(stored).toMatchObject({ outcome, agent_id: body.agent_id, policy_revision: r.policy_revision, result: r });
  });

  it('repeats a scope once in the evaluation input', async () => {
    const res = await post(t, KEYS.pep, decision('code-review-agent', 'github', ['repo:read', 'repo:read'])).expect(200);
    expect(res.body).toMatchObject({ outcome: 'allow', granted_scopes: ['repo:read'] });
  });

  it.each([
    { note: 'valid header: echoed and kept with the decision', header: VALID_TRACEPARENT, echoed: true, traceId: '4bf92f3577b34da6a3ce929d0e0e4736' },
    { note: 'not a traceparent at all', header: 'garbage', echoed: false, traceId: null },
    { note: 'all-zero trace id', header: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', echoed: false, traceId: null },
    { note: 'all-zero parent id', header: '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01', echoed: false, traceId: null },
    { note: 'upper-case hex', header: '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01', echoed: false, traceId: null },
    { note: 'trailing data', header: `${VALID_TRACEPARENT}-extra`, echoed: false, traceId: null },
    { note: 'short trace id', header: '00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01', echoed: false, traceId: null },
  ])('traceparent, $note', async ({ header, echoed, traceId }) => {
    const res = await post(t, KEYS.pep, decision('code-review-agent', 'github', ['repo:read'])).set('traceparent', header).expect(200);
    expect(res.headers['traceparent']).toBe(echoed ? header : undefined);
    const stored = await t.pdp.store.getDecision(res.body.decision_id);
    expect(stored?.trace_id).toBe(traceId);
  });

  it('GET /readyz names the active revision and when it was loaded', async () => {
    const res = await request(t.url).get('/readyz').expect(200);
    api.expectResponse(res);
    const active = t.pdp.engine.active;
    expect(res.body).toEqual({
      status: 'ready',
      policy_revision: `${active?.evaluator.revisions.bundle}.${active?.evaluator.revisions.policies}`,
      bundle_revision: active?.evaluator.revisions.bundle,
      policies_revision: active?.evaluator.revisions.policies,
      agents: 4,
      loaded_at: startedAt,
      policy_on_disk: 'loaded',
    });
    expect(res.body.policy_revision).toMatch(/^[0-9a-f]{16}\.[0-9a-f]{16}$/);
  });

  it('GET /metrics counts decisions by outcome and reason, and policy loads', async () => {
    const before = await metricsText(t);
    await post(t, KEYS.pep, decision('code-review-agent', 'github', ['issues:write'])).expect(200);
    await post(t, KEYS.pep, decision('code-review-agent', 'github', ['repo:write'])).expect(200);
    await post(t, KEYS.pep, decision('code-review-agent', 'github', ['repo:write'])).expect(200);
    const res = await request(t.url).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const delta = (labels: Record<string, string>) =>
      sampleValue(res.text, 'agentpdp_decisions_total', labels) - sampleValue(before, 'agentpdp_decisions_total', labels);
    expect(delta({ outcome: 'allow', reason: 'allowed' })).toBe(1);
    expect(delta({ outcome: 'allow', reason: 'scopes_capped' })).toBe(1);
    expect(delta({ outcome: 'deny', reason: 'deny_scope' })).toBe(2);
    expect(sampleValue(res.text, 'agentpdp_policy_reloads_total', { result: 'loaded' })).toBe(1);
    expect(sampleValue(res.text, 'agentpdp_policy_reloads_total', { result: 'refused' })).toBe(0);
    expect(res.text).toContain('# TYPE agentpdp_policy_reloads_total counter');
  });

  it('GET /metrics reads the store: its writer\'s transactions and events, and the WAL checkpointer\'s rounds', async () => {
    const store = (text: string, count: string): number => sampleValue(text, 'agentpdp_store', { count });
    const before = await metricsText(t);
    await post(t, KEYS.pep, decision('code-review-agent', 'github', ['repo:read'])).expect(200);
    await post(t, KEYS.pep, decision('code-review-agent', 'github', ['repo:write'])).expect(200);
    // The checkpointer's worker runs every 250 ms: wait until it has finished a round since `before`.
    let after = await metricsText(t);
    for (let i = 0; i < 40 && store(after, 'wal_checkpoint_rounds') <= store(before, 'wal_checkpoint_rounds'); i++) {
      await new Promise((ok) => setTimeout(ok, 50));
      after = await metricsText(t);
    }
    expect(store(after, 'transactions') - store(before, 'transactions')).toBeGreaterThanOrEqual(1);
    expect(store(after, 'events') - store(before, 'events')).toBeGreaterThanOrEqual(2);
    expect(store(after, 'wal_checkpoint_rounds')).toBeGreaterThan(store(before, 'wal_checkpoint_rounds'));
    expect(store(after, 'wal_checkpoint_inline')).toBe(0);
    expect(store(after, 'queued_ops')).toBe(0);
  });
});

describe('with a bundle that yields undefined and errors', () => {
  let t: TestPdp;
  let api: OpenApiChecker;

  beforeAll(async () => {
    t = await startTestPdp({ bundle: buildTestBundle(OUTCOMES_REGO) });
    api = await OpenApiChecker.fetch(t.url);
  });
  afterAll(async () => {
    await t.close();
  });

  it('a defined deny for an ordinary request (the test bundle is live)', async () => {
    const res = await post(t, KEYS.pep, decision('code-review-agent', 'github', ['repo:read'])).expect(200);
    api.expectResponse(res);
    expect(res.body).toMatchObject({ allow: false, outcome: 'deny', reasons: [{ code: 'test_deny' }] });
  });

  it('undefined: 200, not allowed, outcome undefined, recorded as undefined', async () => {
    const before = await metricsText(t);
    const res = await post(t, KEYS.pep, decision('code-review-agent', 'undefined-here', ['repo:read'])).expect(200);
    api.expectResponse(res);
    expect(res.body).toMatchObject({
      allow: false,
      outcome: 'undefined',
      granted_scopes: [],
      denied_scopes: [],
      reasons: [{ code: 'undefined' }],
      token_ttl_seconds: 0,
      redeemable_until: null,
    });
    expect(await t.pdp.store.getDecision(res.body.decision_id)).toMatchObject({ outcome: 'undefined' });
    const labels = { outcome: 'undefined', reason: 'undefined' };
    expect(sampleValue(await metricsText(t), 'agentpdp_decisions_total', labels) - sampleValue(before, 'agentpdp_decisions_total', labels)).toBe(1);
  });

  it.each([
    { note: 'two rules disagree: WASM aborts (var assignment conflict)', integration: 'conflict-here' },
    { note: 'the policy answers allow without scopes or ttl', integration: 'malformed-here' },
  ])('error → 503 evaluation_failed, never an allow: $note', async ({ integration }) => {
    const before = await metricsText(t);
    const res = await post(t, KEYS.pep, decision('code-review-agent', integration, ['repo:read'])).expect(503);
    api.expectResponse(res);
    expect(res.body).toEqual({
      error: { code: 'evaluation_failed', message: 'the PDP could not answer this request; nothing was allowed', details: [] },
    });
    expect(res.text).not.toMatch(/conflict|malformed|p\.rego/);
    const labels = { outcome: 'error', reason: 'evaluation_failed' };
    expect(sampleValue(await metricsText(t), 'agentpdp_decisions_total', labels) - sampleValue(before, 'agentpdp_decisions_total', labels)).toBe(1);
  });

  it('a bundle that cannot decide an unknown agent is refused at load (createPdp rejects)', async () => {
    await expect(startTestPdp({ bundle: buildTestBundle(ALWAYS_UNDEFINED_REGO) })).rejects.toMatchObject({
      code: 'policy_invalid',
      message: expect.stringContaining('an unknown agent was not denied'),
    });
  });
});

describe('when the store fails', () => {
  let t: TestPdp;
  let api: OpenApiChecker;
  const allowed = decision('code-review-agent', 'github', ['repo:read']);

  beforeAll(async () => {
    t = await startTestPdp();
    api = await OpenApiChecker.fetch(t.url);
  });
  afterAll(async () => {
    await t.close();
  });

  it('a failing decision write is a 503 store_unavailable, not the allow it would have been', async () => {
    await post(t, KEYS.pep, allowed).expect(200);
    // A second connection makes every write of a decision (its decision event) fail inside SQLite itself.
    const db = new Database(join(t.dir, 'data/pdp.db'));
    try {
      db.exec("CREATE TRIGGER decisions_fail BEFORE INSERT ON audit_events WHEN NEW.type = 'decision' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END");
      const res = await post(t, KEYS.pep, allowed).expect(503);
      api.expectResponse(res);
      expect(res.body).toEqual({
        error: { code: 'store_unavailable', message: 'the PDP could not answer this request; nothing was allowed', details: [] },
      });
      db.exec('DROP TRIGGER decisions_fail');
    } finally {
      db.close();
    }
    const recovered = await post(t, KEYS.pep, allowed).expect(200);
    expect(recovered.body).toMatchObject({ allow: true });
  });

  it('a closed store is a 503 store_unavailable for decisions and task reads; liveness still answers', async () => {
    await t.pdp.store.close();
    const decide = await post(t, KEYS.pep, allowed).expect(503);
    api.expectResponse(decide);
    expect(decide.body.error.code).toBe('store_unavailable');
    expect(decide.body).not.toHaveProperty('allow');
    const read = await request(t.url).get('/v1/tasks/task-1').set(auth(KEYS.orchestrator)).expect(503);
    api.expectResponse(read);
    expect(read.body.error.code).toBe('store_unavailable');
    const metrics = await metricsText(t);
    expect(sampleValue(metrics, 'agentpdp_decisions_total', { outcome: 'error', reason: 'store_unavailable' })).toBe(2);
    await request(t.url).get('/healthz').expect(200, { status: 'ok' });
  });
});
