/**
 * Break-glass escalation end to end, on the real server (HTTP on loopback, real bundle in WASM, real SQLite store)
 * with a real webhook receiver: each numbered step of issue 16, and the attacks on it.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { decodeJwt } from 'jose';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';
import { sampleValue } from '../support/prometheus-text.js';

const SECRET = 'escalation-test-webhook-secret-0123456789';
process.env['AGENTPDP_TEST_WEBHOOK_SECRET'] = SECRET;

let receiver: WebhookReceiver;
let t: TestPdp;
let taskSeq = 0;

beforeAll(async () => {
  receiver = await startWebhookReceiver(SECRET);
});
afterAll(async () => {
  await receiver.close();
});
beforeEach(async () => {
  receiver.deliveries.length = 0;
  receiver.mode = { status: 200 };
  t = await startTestPdp({
    policies: 'test/escalation/policies',
    issuerIsUrl: true,
    config: {
      escalation: {
        outbox: { initial_backoff_ms: 50, max_backoff_ms: 200, timeout_ms: 1000 },
        webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: receiver.url, secret_env: 'AGENTPDP_TEST_WEBHOOK_SECRET' }],
      },
    },
  });
});
afterEach(async () => {
  await t.close();
});

type Json = Record<string, any>;

async function call(method: string, path: string, key: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...(key ? auth(key) : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? (JSON.parse(text) as Json) : { text }, headers: res.headers };
}

async function task(agent = 'release-bot', customer = '1234'): Promise<string> {
  const id = `esc-task-${++taskSeq}`;
  const res = await call('POST', '/v1/tasks', KEYS.orchestrator, { id, agent_id: agent, type: 'incident', context: { customer_id: customer } });
  expect(res.status).toBe(201);
  return id;
}

const decideBody = (taskId: string, over: Json = {}) => ({
  agent_id: 'release-bot',
  task: { id: taskId },
  integration: 'crm',
  scopes: ['tickets:write'],
  resource: { type: 'customer', id: '1234' },
  ...over,
});

async function decide(taskId: string, over: Json = {}, key: string = KEYS.pep) {
  const res = await call('POST', '/v1/decide', key, decideBody(taskId, over));
  expect(res.status).toBe(200);
  return res.body;
}

async function submit(decisionId: string, over: Json = {}, key: string = KEYS.pep, idem?: string) {
  return call('POST', '/v1/access-requests', key, { decision_id: decisionId, reason: 'hotfix for incident 42', ...over }, idem ? { 'idempotency-key': idem } : {});
}

/** A requestable denial and a pending request for it. */
async function pending(key: string = KEYS.pep): Promise<{ taskId: string; denial: Json; request: Json }> {
  const taskId = await task();
  const denial = await decide(taskId, {}, key);
  const res = await submit(denial['decision_id'], { duration_seconds: 600 }, key);
  expect(res.status).toBe(202);
  return { taskId, denial, request: res.body };
}

describe('1. a requestable denial', () => {
  it('answers deny with approval_required and an access_request hint bound to the decision', async () => {
    const denial = await decide(await task());
    expect(denial['allow']).toBe(false);
    expect(denial['outcome']).toBe('deny');
    expect(denial['reasons'].map((r: Json) => r['code'])).toContain('approval_required');
    expect(denial['denied_scopes']).toEqual([{ scope: 'tickets:write', reason: 'approval_required' }]);
    const hint = denial['access_request'];
    expect(hint['endpoint']).toBe(`${t.url}/v1/access-requests`);
    expect(hint['template']['decision_id']).toBe(denial['decision_id']);
    expect(hint['scopes']).toEqual(['tickets:write']);
    expect(hint['max_duration_seconds']).toBe(3600);
    expect(hint['require_reason']).toBe(true);
    expect(Date.parse(hint['expires_at'])).toBeGreaterThan(t.clock.now.getTime());
  });

  it('has no hint for a scope the policy does not list, nor for a deny_scope', async () => {
    const taskId = await task();
    for (const scopes of [['admin'], ['tickets:delete'], ['tickets:write', 'tickets:delete']]) {
      const denial = await decide(taskId, { scopes });
      expect(denial['allow']).toBe(false);
      expect(denial['access_request']).toBeUndefined();
    }
  });
});

describe('2. submitting an access request', () => {
  it('answers 202 pending with a status endpoint; the same Idempotency-Key and body answer the same request', async () => {
    const denial = await decide(await task());
    const first = await submit(denial['decision_id'], {}, KEYS.pep, 'key-1');
    expect(first.status).toBe(202);
    expect(first.body['status']).toBe('pending');
    expect(first.body['status_endpoint']).toBe(`${t.url}/v1/access-requests/${first.body['id']}`);
    expect(first.headers.get('location')).toBe(first.body['status_endpoint']);
    expect(first.body['scopes']).toEqual(['tickets:write']);
    expect(first.body['duration_seconds']).toBe(3600);

    const replay = await submit(denial['decision_id'], {}, KEYS.pep, 'key-1');
    expect(replay.status).toBe(202);
    expect(replay.body).toEqual(first.body);

    const other = await submit(denial['decision_id'], { reason: 'something else' }, KEYS.pep, 'key-1');
    expect(other.status).toBe(409);
    expect(other.body['error']['code']).toBe('duplicate_request');

    const again = await submit(denial['decision_id'], {}, KEYS.pep, 'key-2');
    expect(again.status).toBe(409);
    expect(again.body['error']['code']).toBe('access_request_exists');

    const listed = await call('GET', '/v1/access-requests?status=pending', KEYS.auditor);
    expect(listed.body['items'].filter((r: Json) => r['decision_id'] === denial['decision_id'])).toHaveLength(1);

    // A replay is answered as the first time even once the request was decided and the denial's window has passed.
    const approved = await call('POST', `/v1/access-requests/${first.body['id']}/approve`, KEYS.approver, { duration_seconds: 600 });
    expect(approved.body['status']).toBe('approved');
    t.clock.advance(601);
    const late = await submit(denial['decision_id'], {}, KEYS.pep, 'key-1');
    expect(late.status).toBe(202);
    expect(late.body).toEqual(first.body);
    // Its status endpoint tells what happened since.
    expect((await call('GET', `/v1/access-requests/${first.body['id']}`, KEYS.pep)).body['status']).toBe('approved');
  });

  it('takes the hint’s template as the body, with a reason added', async () => {
    const denial = await decide(await task());
    const res = await call('POST', denial['access_request']['endpoint'].replace(t.url, ''), KEYS.pep, { ...denial['access_request']['template'], reason: 'per the template' });
    expect(res.status).toBe(202);
    expect(res.body['duration_seconds']).toBe(3600);
  });

  it('refuses a request for a task that is no longer active', async () => {
    const taskId = await task();
    const denial = await decide(taskId);
    expect((await call('POST', `/v1/tasks/${taskId}/complete`, KEYS.orchestrator)).status).toBe(200);
    const res = await submit(denial['decision_id']);
    expect(res.status).toBe(409);
    expect(res.body['error']['code']).toBe('task_not_active');
  });

  it('refuses a submission for another caller’s decision, a non-requestable one, an expired denial and bad terms', async () => {
    const denial = await decide(await task());
    const foreign = await submit(denial['decision_id'], {}, KEYS.pepApprover);
    expect(foreign.status).toBe(403);
    expect(foreign.body['error']['code']).toBe('decision_wrong_caller');

    const allow = await decide(await task(), { scopes: ['tickets:read'] });
    expect(allow['allow']).toBe(true);
    const notRequestable = await submit(allow['decision_id']);
    expect(notRequestable.status).toBe(400);
    expect(notRequestable.body['error']['code']).toBe('not_requestable');

    const noReason = await call('POST', '/v1/access-requests', KEYS.pep, { decision_id: denial['decision_id'] });
    expect(noReason.status).toBe(400);
    expect(noReason.body['error']['details']).toEqual([expect.objectContaining({ path: 'reason' })]);

    const tooLong = await submit(denial['decision_id'], { duration_seconds: 3601 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body['error']['details']).toEqual([expect.objectContaining({ path: 'duration_seconds' })]);

    const unknown = await submit('no-such-decision');
    expect(unknown.status).toBe(404);

    t.clock.advance(601);
    const late = await submit(denial['decision_id']);
    expect(late.status).toBe(400);
    expect(late.body['error']['code']).toBe('expired_denial');

    const asApprover = await call('POST', '/v1/access-requests', KEYS.approver, { decision_id: denial['decision_id'], reason: 'x' });
    expect(asApprover.status).toBe(403);
    expect(asApprover.body['error']['code']).toBe('forbidden_role');
  });
});

describe('3. notification', () => {
  it('delivers a signed webhook with the facts and the links, and records the delivery in the chain', async () => {
    const { denial, request } = await pending();
    const [delivery] = await receiver.waitFor(1);
    expect(delivery!.signatureValid).toBe(true);
    // The delivery id receivers dedupe on is the outbox row's.
    const rows = (await call('GET', `/v1/admin/notifications?access_request_id=${request['id']}`, KEYS.admin)).body['items'] as Json[];
    expect(rows.map((r) => r['id'])).toEqual([delivery!.headers['x-agentpdp-delivery']]);
    const body = delivery!.json as Json;
    expect(body['type']).toBe('access_request.submitted');
    expect(body['access_request']).toMatchObject({
      id: request['id'],
      agent_id: 'release-bot',
      integration: 'crm',
      scopes: ['tickets:write'],
      resource: { type: 'customer', id: '1234' },
      reason: 'hotfix for incident 42',
    });
    expect(body['links']['review']).toMatch(new RegExp(`^${t.url}/v1/access-requests/${request['id']}/review\\?t=`));

    await waitForEvent(denial['decision_id'], 'access_request.notified');
  });
});

describe('4. approving', () => {
  it('refuses pep and resource-server keys, self-approval, another group and a duration above the cap', async () => {
    const { request } = await pending(KEYS.pepApprover);
    const path = `/v1/access-requests/${request['id']}/approve`;
    for (const key of [KEYS.pep, KEYS.resource, KEYS.orchestrator, KEYS.auditor]) {
      const res = await call('POST', path, key, {});
      expect(res.status).toBe(403);
      expect(res.body['error']['code']).toBe('forbidden_role');
    }
    const self = await call('POST', path, KEYS.pepApprover, {});
    expect(self.status).toBe(403);
    expect(self.body['error']['code']).toBe('self_approval');
    const otherGroup = await call('POST', path, KEYS.otherApprover, {});
    expect(otherGroup.status).toBe(403);
    expect(otherGroup.body['error']['code']).toBe('forbidden_approver_group');
    // A duration sent as a form is never read as no body (which would approve the policy's maximum).
    const asForm = await fetch(`${t.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.approver}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'duration_seconds=60' });
    expect(asForm.status).toBe(415);
    const tooLong = await call('POST', path, KEYS.approver, { duration_seconds: 3601 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body['error']['details']).toEqual([expect.objectContaining({ path: 'duration_seconds' })]);
    expect((await call('GET', `/v1/access-requests/${request['id']}`, KEYS.auditor)).body['status']).toBe('pending');
    // The attempts are in the denial's chain: who tried, and what was refused.
    await t.pdp.refusals.flush();
    const chain = await call('GET', `/v1/audit/decisions/${request['decision_id']}`, KEYS.auditor);
    const refused = chain.body['events'].filter((e: Json) => e['type'] === 'access.refused').map((e: Json) => [e['caller_id'], e['data']['code']]);
    expect(refused).toEqual(expect.arrayContaining([['ops-alice', 'self_approval'], ['security-1', 'forbidden_approver_group']]));
  });

  it('approves once: a second approval is 409 and leaves one elevation', async () => {
    const { request } = await pending();
    const path = `/v1/access-requests/${request['id']}/approve`;
    const ok = await call('POST', path, KEYS.approver, { duration_seconds: 300, note: 'ok for the incident' });
    expect(ok.status).toBe(200);
    expect(ok.body['status']).toBe('approved');
    expect(ok.body['decided_by']).toBe('oncall-1');
    expect(ok.body['approved_until']).toBe(new Date(t.clock.now.getTime() + 300_000).toISOString());
    expect(ok.body['result']).toEqual({ mode: 'reevaluate', approval: { id: request['id'], approved_at: ok.body['decided_at'], approved_until: ok.body['approved_until'] } });
    const twice = await call('POST', path, KEYS.approver2, {});
    expect(twice.status).toBe(409);
    expect(twice.body['error']['code']).toBe('access_request_not_pending');
    const deny = await call('POST', `/v1/access-requests/${request['id']}/deny`, KEYS.approver2, {});
    expect(deny.status).toBe(409);
  });

  it('lets exactly one of 50 concurrent approvals win', async () => {
    const { denial, request } = await pending();
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => call('POST', `/v1/access-requests/${request['id']}/approve`, i % 2 ? KEYS.approver : KEYS.approver2, { note: `#${i}` })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(49);
    const chain = await call('GET', `/v1/audit/decisions/${denial['decision_id']}`, KEYS.auditor);
    expect(chain.body['events'].filter((e: Json) => e['type'] === 'access_request.approved')).toHaveLength(1);
  });

  it('denies: the request ends denied and the agent stays denied', async () => {
    const { taskId, request } = await pending();
    const res = await call('POST', `/v1/access-requests/${request['id']}/deny`, KEYS.approver, { note: 'not now' });
    expect(res.status).toBe(200);
    expect(res.body['status']).toBe('denied');
    expect((await decide(taskId))['allow']).toBe(false);
  });

  it("is the approver's inbox: its groups only, pending first by status filter", async () => {
    const { request } = await pending();
    const mine = await call('GET', '/v1/access-requests?status=pending', KEYS.approver);
    expect(mine.status).toBe(200);
    expect(mine.body['items'].map((r: Json) => r['id'])).toContain(request['id']);
    const theirs = await call('GET', '/v1/access-requests?status=pending', KEYS.otherApprover);
    expect(theirs.body['items']).toEqual([]);
    expect((await call('GET', `/v1/access-requests/${request['id']}`, KEYS.otherApprover)).status).toBe(404);
    expect((await call('GET', '/v1/access-requests', KEYS.pep)).status).toBe(403);
    expect((await call('GET', '/v1/access-requests?status=nope', KEYS.approver)).status).toBe(400);
    const badAfter = await call('GET', '/v1/access-requests?status=pending&after=garbage', KEYS.approver);
    expect(badAfter.status).toBe(400);
    expect(badAfter.body['error']).toMatchObject({ code: 'invalid_request', details: [{ path: 'query.after' }] });
  });
});

describe('approver groups', () => {
  it('never lets one group approve a scope reserved to another: such scopes are not requestable together', async () => {
    const taskId = await task('sibling-bot');
    const both = await decide(taskId, { agent_id: 'sibling-bot', scopes: ['admin', 'tickets:write'] });
    expect(both['allow']).toBe(false);
    expect(both['access_request']).toBeUndefined();
    expect(both['reasons'].map((r: Json) => r['code'])).toEqual(['approval_required']);
    expect((await submit(both['decision_id'])).body['error']['code']).toBe('not_requestable');

    const admin = await decide(taskId, { agent_id: 'sibling-bot', scopes: ['admin'] });
    expect(admin['access_request']['scopes']).toEqual(['admin']);
    const request = (await submit(admin['decision_id'])).body;
    expect(request['approver_groups']).toEqual(['security-team']);
    const oncall = await call('POST', `/v1/access-requests/${request['id']}/approve`, KEYS.approver, {});
    expect(oncall.status).toBe(403);
    expect(oncall.body['error']['code']).toBe('forbidden_approver_group');
    expect((await call('POST', `/v1/access-requests/${request['id']}/approve`, KEYS.otherApprover, {})).status).toBe(200);
    expect((await decide(taskId, { agent_id: 'sibling-bot', scopes: ['admin'] }))['allow']).toBe(true);
  });
});

describe('5. deciding again with the elevation', () => {
  it('allows exactly that agent, task, record and scopes, until the window ends; the token ends with it', async () => {
    const { taskId, denial, request } = await pending();
    await call('POST', `/v1/access-requests/${request['id']}/approve`, KEYS.approver, { duration_seconds: 300 });
    const status = await call('GET', `/v1/access-requests/${request['id']}`, KEYS.pep);
    expect(status.body['status']).toBe('approved');

    const elevated = await decide(taskId);
    expect(elevated['allow']).toBe(true);
    expect(elevated['granted_scopes']).toEqual(['tickets:write']);
    expect(elevated['reasons'].map((r: Json) => r['code'])).toContain('elevated');
    expect(elevated['approval']).toEqual({ id: request['id'], approved_until: status.body['approved_until'] });
    expect(elevated['token_ttl_seconds']).toBeLessThanOrEqual(300);

    const token = await call('POST', '/v1/tokens', KEYS.pep, { decision_id: elevated['decision_id'] });
    expect(token.status).toBe(201);
    const claims = decodeJwt(token.body['access_token']);
    expect(claims.exp! * 1000).toBeLessThanOrEqual(Date.parse(status.body['approved_until']));
    expect(claims.scope).toBe('tickets:write');

    // Anything else stays denied: another record, another task, another agent, another scope.
    expect((await decide(taskId, { resource: { type: 'customer', id: '5678' } }))['allow']).toBe(false);
    expect((await decide(await task(), {}))['allow']).toBe(false);
    const sibling = await task('sibling-bot');
    expect((await decide(sibling, { agent_id: 'sibling-bot' }))['allow']).toBe(false);
    expect((await decide(taskId, { scopes: ['tickets:delete'] }))['allow']).toBe(false);
    expect((await decide(taskId, { scopes: ['tickets:write', 'admin'] }))['allow']).toBe(false);
    // ... and another PEP that may speak for the agent: the elevation serves the caller that asked for it.
    const otherPep = await decide(taskId, {}, KEYS.pepApprover);
    expect(otherPep['allow']).toBe(false);
    expect(otherPep['reasons'].map((r: Json) => r['code'])).toEqual(['approval_required']);

    // 6. The window ends: the next decision is a requestable denial again, and the sweep records the end.
    t.clock.advance(301);
    const after = await decide(taskId);
    expect(after['allow']).toBe(false);
    expect(after['reasons'].map((r: Json) => r['code'])).toContain('approval_required');
    await t.pdp.accessRequests.sweep();
    const ended = await call('GET', `/v1/access-requests/${request['id']}`, KEYS.pep);
    expect(ended.body).toMatchObject({ status: 'approved', ended_reason: 'window', ended_at: status.body['approved_until'] });

    // The chain of the first denial holds the whole story.
    const chain = await call('GET', `/v1/audit/decisions/${denial['decision_id']}`, KEYS.auditor);
    const types = chain.body['events'].map((e: Json) => e['type']);
    for (const type of ['decision', 'access_request.submitted', 'access_request.notified', 'access_request.approved', 'token.issued', 'elevation.ended']) {
      expect(types).toContain(type);
    }
    expect(chain.body['events'].filter((e: Json) => e['type'] === 'decision').map((e: Json) => e['decision_id'])).toContain(elevated['decision_id']);
  });

  it('ends with the task: completing it revokes the elevated token and denies the next call', async () => {
    const { taskId, request } = await pending();
    await call('POST', `/v1/access-requests/${request['id']}/approve`, KEYS.approver, {});
    const elevated = await decide(taskId);
    const token = await call('POST', '/v1/tokens', KEYS.pep, { decision_id: elevated['decision_id'] });
    expect(token.status).toBe(201);
    const endedBefore = await endedElevationsCounted();
    expect((await call('POST', `/v1/tasks/${taskId}/complete`, KEYS.orchestrator)).status).toBe(200);
    // The metric counts an elevation ended by its task as it counts one ended by its window.
    expect(await endedElevationsCounted()).toBe(endedBefore + 1);
    const introspected = await fetch(`${t.url}/v1/introspect`, {
      method: 'POST',
      headers: { ...auth(KEYS.resource), 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${token.body['access_token']}`,
    });
    expect(((await introspected.json()) as Json)['active']).toBe(false);
    expect((await decide(taskId))['allow']).toBe(false);
    const ended = await call('GET', `/v1/access-requests/${request['id']}`, KEYS.pep);
    expect(ended.body['ended_reason']).toBe('task_completed');
  });
});

describe('5b. an elevation ends with its task\'s expiry', () => {
  it('the expiry sweep ends it (task_expired) and the metric counts it', async () => {
    const id = `esc-task-${++taskSeq}`;
    expect((await call('POST', '/v1/tasks', KEYS.orchestrator, { id, agent_id: 'release-bot', type: 'incident', context: { customer_id: '1234' }, expires_in_seconds: 120 })).status).toBe(201);
    const denial = await decide(id);
    const submitted = await submit(denial['decision_id'], { duration_seconds: 600 });
    expect(submitted.status).toBe(202);
    expect((await call('POST', `/v1/access-requests/${submitted.body['id']}/approve`, KEYS.approver, {})).status).toBe(200);
    const before = await endedElevationsCounted();
    t.clock.advance(121);
    expect(await t.pdp.tasks.expireDue()).toBeGreaterThanOrEqual(1);
    expect((await call('GET', `/v1/access-requests/${submitted.body['id']}`, KEYS.pep)).body['ended_reason']).toBe('task_expired');
    expect(await endedElevationsCounted()).toBe(before + 1);
  });
});

/** agentpdp_access_requests_total{event="elevation_ended"} as /metrics shows it now. */
async function endedElevationsCounted(): Promise<number> {
  const text = await (await fetch(`${t.url}/metrics`)).text();
  return sampleValue(text, 'agentpdp_access_requests_total', { event: 'elevation_ended' });
}

describe('6. expiry', () => {
  it('expires a pending request; approving it afterwards is refused', async () => {
    const { denial, request } = await pending();
    t.clock.advance(3601);
    await t.pdp.accessRequests.sweep();
    const expired = await call('GET', `/v1/access-requests/${request['id']}`, KEYS.pep);
    expect(expired.body['status']).toBe('expired');
    const late = await call('POST', `/v1/access-requests/${request['id']}/approve`, KEYS.approver, {});
    expect(late.status).toBe(409);
    expect(late.body['error']['code']).toBe('access_request_expired');
    const denied = await call('POST', `/v1/access-requests/${request['id']}/deny`, KEYS.approver, { note: 'too late' });
    expect(denied.body['error']['code']).toBe('access_request_expired');
    await waitForEvent(denial['decision_id'], 'access_request.expired');
  });

  it('refuses an approval after the request expired even before the sweep ran, and shows it expired already', async () => {
    const { request } = await pending();
    t.clock.advance(3601);
    const late = await call('POST', `/v1/access-requests/${request['id']}/approve`, KEYS.approver, {});
    expect(late.status).toBe(409);
    expect(late.body['error']['code']).toBe('access_request_expired');
    // The status poll and the inbox say so before the sweeper has marked it.
    expect((await call('GET', `/v1/access-requests/${request['id']}`, KEYS.pep)).body['status']).toBe('expired');
    const inbox = await call('GET', '/v1/access-requests?status=pending', KEYS.approver);
    expect(inbox.body['items'].map((r: Json) => r['id'])).not.toContain(request['id']);
    const all = await call('GET', '/v1/access-requests', KEYS.approver);
    expect(all.body['items'].find((r: Json) => r['id'] === request['id'])?.['status']).toBe('expired');
    const expired = await call('GET', '/v1/access-requests?status=expired', KEYS.approver);
    expect(expired.body['items'].map((r: Json) => r['id'])).toContain(request['id']);
  });
});

describe('the approval page a notification links to', () => {
  it('shows the PEP\'s reason escaped, its bidirectional controls spelled out', async () => {
    const denial = await decide(await task());
    const res = await submit(denial['decision_id'], { duration_seconds: 600, reason: '<script>alert(1)</script> fix \u202Egpj.exe' });
    expect(res.status).toBe(202);
    const [delivery] = await receiver.waitFor(1);
    const html = await (await fetch((delivery!.json as Json)['links']['review'] as string)).text();
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62; fix [U+202E]gpj.exe');
    expect(html).not.toContain('\u202E');
    expect(html).not.toContain('<script>');
  });

  it('shows the request on GET (changing nothing) and approves only on the POST with an approver key', async () => {
    const { taskId, request } = await pending();
    const [delivery] = await receiver.waitFor(1);
    const link = (delivery!.json as Json)['links']['review'] as string;
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    expect(html).toContain('release-bot');
    expect(html).toContain('tickets:write');
    expect((await call('GET', `/v1/access-requests/${request['id']}`, KEYS.pep)).body['status']).toBe('pending');

    const token = new URL(link).searchParams.get('t')!;
    const tampered = await fetch(link.replace(/t=./, (m) => (m.endsWith('A') ? 't=B' : 't=A')));
    expect(tampered.status).toBe(403);
    const other = await pending();
    expect((await fetch(`${t.url}/v1/access-requests/${other.request['id']}/review?t=${encodeURIComponent(token)}`)).status).toBe(403);

    const post = (form: Record<string, string>) =>
      fetch(`${t.url}/v1/access-requests/${request['id']}/review`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
    // Every refusal of the form is a page with the page's headers, those of the pipeline included (key, role, form).
    for (const [form, status, code] of [
      [{ t: token, action: 'approve' }, 401, 'unauthenticated'],
      [{ t: token, action: 'approve', api_key: 'not-a-key' }, 401, 'unauthenticated'],
      [{ t: token, action: 'approve', api_key: KEYS.pep }, 403, 'forbidden_role'],
      [{ t: token, action: 'delete', api_key: KEYS.approver }, 400, 'invalid_request'],
    ] as Array<[Record<string, string>, number, string]>) {
      const refusal = await post(form);
      expect(refusal.status).toBe(status);
      expect(refusal.headers.get('content-type')).toMatch(/^text\/html/);
      expect(refusal.headers.get('x-frame-options')).toBe('DENY');
      expect(refusal.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
      expect(await refusal.text()).toContain(`Not done: ${code}`);
    }
    const latin1 = await fetch(`${t.url}/v1/access-requests/${request['id']}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=latin1' },
      body: new URLSearchParams({ t: token, action: 'approve', api_key: KEYS.approver }).toString(),
    });
    expect(latin1.status).toBe(415);
    expect(latin1.headers.get('content-type')).toMatch(/^text\/html/);
    expect((await post({ t: `${token}x`, action: 'approve', api_key: KEYS.approver })).status).toBe(403);
    // Another group's approver gets a page saying no, and the attempt is in the denial's chain like the API's 403.
    const foreign = await post({ t: token, action: 'approve', api_key: KEYS.otherApprover });
    expect(foreign.status).toBe(403);
    expect(await foreign.text()).toContain('forbidden_approver_group');
    await t.pdp.refusals.flush();
    const chain = await call('GET', `/v1/audit/decisions/${request['decision_id']}`, KEYS.auditor);
    expect(chain.body['events'].filter((e: Json) => e['type'] === 'access.refused').map((e: Json) => [e['caller_id'], e['data']['code'], e['data']['route']])).toEqual([
      ['security-1', 'forbidden_approver_group', '/v1/access-requests/{id}/review'],
    ]);
    const approved = await post({ t: token, action: 'approve', api_key: KEYS.approver, duration_seconds: '120', note: 'from slack' });
    expect(approved.status).toBe(200);
    expect(await approved.text()).toContain('Approved');
    const replayed = await post({ t: token, action: 'approve', api_key: KEYS.approver2 });
    expect(replayed.status).toBe(409);
    expect((await decide(taskId))['allow']).toBe(true);

    t.clock.advance(901);
    expect((await fetch(link)).status).toBe(410);
  });
});

async function waitForEvent(decisionId: string, type: string): Promise<Json> {
  for (let i = 0; i < 200; i++) {
    const chain = await call('GET', `/v1/audit/decisions/${decisionId}`, KEYS.auditor);
    const found = (chain.body['events'] as Json[] | undefined)?.find((e) => e['type'] === type);
    if (found) return found;
    await new Promise((ok) => setTimeout(ok, 25));
  }
  throw new Error(`no ${type} event for ${decisionId}`);
}
