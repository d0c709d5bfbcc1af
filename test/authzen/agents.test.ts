/**
 * AuthZEN requests about our agents, against the real server (`startTestPdp`: the real bundle, store, issuer): the
 * mapping onto a decision request, the decision record it leaves, the batch semantics, the agent action search, the
 * PDP metadata, and the binding's transport rules (X-Request-ID, 400 for a non-JSON body, unknown members ignored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PdpClient } from '../../src/pep/index.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let pdp: TestPdp;
let orchestrator: PdpClient;
let seq = 0;

beforeAll(async () => {
  pdp = await startTestPdp();
  orchestrator = new PdpClient({ url: pdp.url, apiKey: KEYS.orchestrator });
});
afterAll(async () => {
  await pdp.close();
});

async function task(type = 'complaint_resolution', customer = '1234'): Promise<string> {
  const id = `az-${++seq}`;
  await orchestrator.registerTask({ id, agent_id: 'support-resolver', type, context: { customer_id: customer }, expires_in_seconds: 900 });
  return id;
}

async function post(path: string, body: unknown, init: { key?: string; headers?: Record<string, string>; raw?: string } = {}) {
  const res = await fetch(`${pdp.url}${path}`, {
    method: 'POST',
    headers: { ...auth(init.key ?? KEYS.pep), 'content-type': 'application/json', ...init.headers },
    body: init.raw ?? JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
}

async function get(path: string, key: string) {
  const res = await fetch(`${pdp.url}${path}`, { headers: auth(key) });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as Record<string, any>) };
}

const agent = { type: 'agent', id: 'support-resolver' };
const customer = (id: string) => ({ type: 'customer', id });

describe('Access Evaluation for an agent', () => {
  it('allows exactly the scope asked, on the task\'s record, with a redeemable decision id', async () => {
    const t = await task();
    const res = await post('/access/v1/evaluation', { subject: agent, action: { name: 'tickets:write' }, resource: customer('1234'), context: { integration: 'crm', task_id: t } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ decision: true, context: { outcome: 'allow', granted_scopes: ['tickets:write'] } });
    const decisionId = res.body!['context'].decision_id as string;
    // The decision id is a decision like any other: redeemable for a token, and in the audit trail.
    const token = await post('/v1/tokens', { decision_id: decisionId });
    expect(token.status).toBe(201);
    const chain = await fetch(`${pdp.url}/v1/audit/decisions/${decisionId}`, { headers: auth(KEYS.auditor) });
    expect(chain.status).toBe(200);
  });

  it('denies another customer\'s record and a denied scope, with our reasons', async () => {
    const t = await task();
    const other = await post('/access/v1/evaluation', { subject: agent, action: { name: 'tickets:write' }, resource: customer('5678'), context: { integration: 'crm', task_id: t } });
    expect(other.body).toMatchObject({ decision: false, context: { outcome: 'deny' } });
    expect(other.body!['context'].reasons.map((r: { code: string }) => r.code)).toContain('record_binding_mismatch');
    const denied = await post('/access/v1/evaluation', { subject: agent, action: { name: 'tickets:delete' }, resource: { type: 'integration', id: 'crm' }, context: { task_id: t } });
    expect(denied.body).toMatchObject({ decision: false });
    expect(denied.body!['context'].reasons.map((r: { code: string }) => r.code)).toContain('deny_scope');
  });

  it('a capped scope is not the scope asked: decision false although the answer allows something', async () => {
    const t = await task();
    // tickets:comment is outside the agent's ceiling and implies tickets:read: capped, so the decide answer allows tickets:read.
    const res = await post('/access/v1/evaluation', { subject: agent, action: { name: 'tickets:comment' }, resource: { type: 'integration', id: 'crm' }, context: { task_id: t } });
    expect(res.body).toMatchObject({ decision: false, context: { outcome: 'allow', granted_scopes: ['tickets:read'] } });
  });

  it('refuses what /v1/decide refuses: an agent the caller may not speak for (403), a request without task or integration (400)', async () => {
    const t = await task();
    const forbidden = await post('/access/v1/evaluation', { subject: { type: 'agent', id: 'code-review-agent' }, action: { name: 'repo:read' }, resource: { type: 'integration', id: 'github' }, context: { task_id: t } }, { key: KEYS.strictPep });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ error: { code: 'forbidden_agent', details: [{ path: 'subject.id' }] } });
    // A context assertion by a caller that may not assert: refused as /v1/decide refuses it, named in AuthZEN's terms.
    const asserted = await post('/access/v1/evaluation', { subject: agent, action: { name: 'tickets:read' }, resource: customer('1234'), context: { integration: 'crm', task: { id: 'inline-1', type: 'triage', context: { customer_id: '1234' } } } }, { key: KEYS.strictPep });
    expect(asserted.status).toBe(403);
    expect(asserted.body).toMatchObject({ error: { code: 'context_assertion_forbidden', details: [{ path: 'context.task.context' }] } });
    const noTask = await post('/access/v1/evaluation', { subject: agent, action: { name: 'tickets:read' }, resource: customer('1234'), context: { integration: 'crm' } });
    expect(noTask.status).toBe(400);
    expect(noTask.body!['error'].details).toEqual([expect.objectContaining({ path: 'context.task_id' })]);
    const badScope = await post('/access/v1/evaluation', { subject: agent, action: { name: 'not a scope' }, resource: customer('1234'), context: { integration: 'crm', task_id: t } });
    expect(badScope.status).toBe(400);
    expect(badScope.body!['error'].details[0].path).toBe('action.name');
  });

  it('an unrouted subject type is a deny, not an error, and recorded like any answer', async () => {
    const res = await post('/access/v1/evaluation', { subject: { type: 'robot', id: 'r2' }, action: { name: 'read' }, resource: { type: 'record', id: 'x' } });
    expect(res).toMatchObject({ status: 200, body: { decision: false, context: { reason_code: 'subject_type_unknown', decision_id: expect.any(String) } } });
    const recorded = await get(`/v1/audit/decisions/${res.body!['context'].decision_id as string}`, KEYS.auditor);
    expect(recorded.status).toBe(200);
    expect(JSON.stringify(recorded.body)).toContain('authzen/unrouted');
    // A search no policy can enumerate: no results, recorded too.
    const search = await post('/access/v1/search/subject', { subject: { type: 'spaceship' }, action: { name: 'read' }, resource: { type: 'record', id: 'x' } });
    expect(search).toMatchObject({ status: 200, body: { results: [], context: { decision_id: expect.any(String) } } });
    expect((await get(`/v1/audit/decisions/${search.body!['context'].decision_id as string}`, KEYS.auditor)).status).toBe(200);
  });
});

describe('Access Evaluations for agents', () => {
  it('execute_all: every item in order; an agent the caller may not speak for is that item\'s deny and leaks nothing', async () => {
    const t = await task();
    const res = await post('/access/v1/evaluations', {
      subject: agent,
      context: { integration: 'crm', task_id: t },
      evaluations: [
        { action: { name: 'tickets:read' }, resource: customer('1234') },
        { subject: { type: 'agent', id: 'code-review-agent' }, action: { name: 'repo:read' }, resource: { type: 'integration', id: 'github' } },
        { action: { name: 'tickets:write' }, resource: customer('5678') },
        {},
      ],
    }, { key: KEYS.strictPep });
    expect(res.status).toBe(200);
    const items = res.body!['evaluations'] as Array<{ decision: boolean; context?: Record<string, any> }>;
    expect(items.map((e) => e.decision)).toEqual([true, false, false, false]);
    expect(items[1]!.context).toEqual({ error: { status: 403, code: 'forbidden_agent', message: expect.any(String), details: [{ path: 'evaluations[1].subject.id', message: expect.any(String) }] } });
    expect(JSON.stringify(items[1])).not.toContain('repo:read');
    expect(items[2]!.context!['outcome']).toBe('deny');
    expect(items[3]!.context!['error']).toMatchObject({ status: 400, code: 'invalid_request' });
  });

  it('deny_on_first_deny and permit_on_first_permit stop after the first deny or permit', async () => {
    const t = await task();
    const evaluations = [{ resource: customer('1234') }, { resource: customer('5678') }, { resource: customer('1234') }];
    const base = { subject: agent, action: { name: 'tickets:write' }, context: { integration: 'crm', task_id: t }, evaluations };
    const deny = await post('/access/v1/evaluations', { ...base, options: { evaluations_semantic: 'deny_on_first_deny' } });
    expect(deny.body!['evaluations'].map((e: { decision: boolean }) => e.decision)).toEqual([true, false]);
    const permit = await post('/access/v1/evaluations', { ...base, options: { evaluations_semantic: 'permit_on_first_permit' } });
    expect(permit.body!['evaluations'].map((e: { decision: boolean }) => e.decision)).toEqual([true]);
    // An item that errs (malformed, or an agent the caller may not speak for) is a deny: deny_on_first_deny stops
    // there, permit_on_first_permit goes on past it. (An item's action without a name takes the default's name.)
    const erring = [{ resource: customer('1234'), action: { name: 7 } }, { resource: customer('1234') }];
    const stopped = await post('/access/v1/evaluations', { ...base, evaluations: erring, options: { evaluations_semantic: 'deny_on_first_deny' } });
    expect(stopped.body!['evaluations']).toHaveLength(1);
    expect(stopped.body!['evaluations'][0]).toMatchObject({ decision: false, context: { error: { status: 400 } } });
    const forbidden = [{ subject: { type: 'agent', id: 'code-review-agent' }, resource: { type: 'integration', id: 'github' } }, { resource: customer('1234') }];
    const refusedFirst = await post('/access/v1/evaluations', { ...base, evaluations: forbidden, options: { evaluations_semantic: 'deny_on_first_deny' } }, { key: KEYS.strictPep });
    expect(refusedFirst.body!['evaluations'].map((e: { decision: boolean }) => e.decision)).toEqual([false]);
    const passed = await post('/access/v1/evaluations', { ...base, evaluations: forbidden, options: { evaluations_semantic: 'permit_on_first_permit' } }, { key: KEYS.strictPep });
    expect(passed.body!['evaluations'].map((e: { decision: boolean }) => e.decision)).toEqual([false, true]);
    const unknown = await post('/access/v1/evaluations', { ...base, options: { evaluations_semantic: 'some' } });
    expect(unknown.status).toBe(400);
  });

  it('refuses a batch over the limit as a whole (400), and answers a request without items as one evaluation', async () => {
    const t = await task();
    const over = await post('/access/v1/evaluations', { subject: agent, action: { name: 'tickets:read' }, context: { integration: 'crm', task_id: t }, evaluations: Array.from({ length: 101 }, () => ({ resource: customer('1234') })) });
    expect(over.status).toBe(400);
    expect(over.body!['error'].details[0].path).toBe('evaluations');
    const single = await post('/access/v1/evaluations', { subject: agent, action: { name: 'tickets:read' }, resource: customer('1234'), context: { integration: 'crm', task_id: t }, evaluations: [] });
    expect(single.body).toMatchObject({ decision: true });
  });
});

describe('Action search for an agent', () => {
  it('answers the scopes the agent may get on the integration for the task, on that record', async () => {
    const t = await task();
    const mine = await post('/access/v1/search/action', { subject: agent, resource: customer('1234'), context: { integration: 'crm', task_id: t } });
    expect(mine.status).toBe(200);
    expect(mine.body!['results']).toEqual([{ name: 'tickets:read' }, { name: 'tickets:write' }]);
    expect(mine.body!['page']).toMatchObject({ next_token: '', total: 2 });
    // On another customer the bound scope is not available; for a triage task only reading is.
    const other = await post('/access/v1/search/action', { subject: agent, resource: customer('5678'), context: { integration: 'crm', task_id: t } });
    expect(other.body!['results']).toEqual([{ name: 'tickets:read' }]);
    const triage = await post('/access/v1/search/action', { subject: agent, resource: customer('1234'), context: { integration: 'crm', task_id: await task('triage') } });
    expect(triage.body!['results']).toEqual([{ name: 'tickets:read' }]);
  });

  it('pages with an opaque token bound to the request', async () => {
    const t = await task();
    const request = { subject: agent, resource: customer('1234'), context: { integration: 'crm', task_id: t } };
    const first = await post('/access/v1/search/action', { ...request, page: { limit: 1 } });
    expect(first.body!['results']).toEqual([{ name: 'tickets:read' }]);
    const token = first.body!['page'].next_token as string;
    expect(token).not.toBe('');
    const second = await post('/access/v1/search/action', { ...request, page: { limit: 1, token } });
    expect(second.body).toMatchObject({ results: [{ name: 'tickets:write' }], page: { next_token: '' } });
    const changed = await post('/access/v1/search/action', { ...request, resource: customer('5678'), page: { limit: 1, token } });
    expect(changed.status).toBe(400);
  });
});

describe('the HTTPS binding', () => {
  it('echoes X-Request-ID, and sets one when the request has none (or an unusable one)', async () => {
    const t = await task();
    const body = { subject: agent, action: { name: 'tickets:read' }, resource: customer('1234'), context: { integration: 'crm', task_id: t } };
    expect((await post('/access/v1/evaluation', body, { headers: { 'x-request-id': 'bfe9eb29-ab87' } })).headers.get('x-request-id')).toBe('bfe9eb29-ab87');
    expect((await post('/access/v1/evaluation', body)).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((await post('/access/v1/evaluation', body, { headers: { 'x-request-id': 'has a space' } })).headers.get('x-request-id')).toBe('has a space');
    expect((await post('/access/v1/evaluation', body, { headers: { 'x-request-id': 'x'.repeat(257) } })).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a body that is not JSON, missing or malformed is a 400; unknown members are ignored', async () => {
    const t = await task();
    const body = { subject: agent, action: { name: 'tickets:read' }, resource: customer('1234'), context: { integration: 'crm', task_id: t } };
    expect((await post('/access/v1/evaluation', body, { headers: { 'content-type': 'text/plain' } })).status).toBe(400);
    expect((await post('/access/v1/evaluation', undefined, { raw: '' })).status).toBe(400);
    expect((await post('/access/v1/evaluation', undefined, { raw: '{"subject":' })).status).toBe(400);
    const missing = await post('/access/v1/evaluation', { action: { name: 'read' }, resource: { type: 'record' } });
    expect(missing.status).toBe(400);
    expect(missing.body!['error'].details.map((d: { path: string }) => d.path)).toEqual(['subject', 'resource.id']);
    expect((await post('/access/v1/evaluation', { ...body, futureField: { nested: true }, subject: { ...agent, extra: 1 } })).body).toMatchObject({ decision: true });
  });

  it('publishes the PDP metadata', async () => {
    const res = await fetch(`${pdp.url}/.well-known/authzen-configuration`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const meta = (await res.json()) as Record<string, string>;
    expect(meta['access_evaluation_endpoint']).toBe(`${meta['policy_decision_point']}/access/v1/evaluation`);
    expect(Object.keys(meta).sort()).toEqual(['access_evaluation_endpoint', 'access_evaluations_endpoint', 'policy_decision_point', 'search_action_endpoint', 'search_resource_endpoint', 'search_subject_endpoint']);
  });
});

describe('a subject type routed to an entrypoint the bundle lacks', () => {
  it('is the deployment\'s fault: 503, nothing decided, for evaluation and search alike; a batch item carries it', async () => {
    const misrouted = await startTestPdp({ config: { authzen: { subjects: { user: { decision: 'nope/decision', entities: 'nope/entities' } } } } });
    try {
      const ask = (path: string, body: unknown) =>
        fetch(`${misrouted.url}${path}`, { method: 'POST', headers: { ...auth(KEYS.pep), 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const single = await ask('/access/v1/evaluation', { subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'r' } });
      expect(single.status).toBe(503);
      expect(((await single.json()) as { error: { code: string } }).error.code).toBe('evaluation_failed');
      const search = await ask('/access/v1/search/subject', { subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'r' } });
      expect(search.status).toBe(503);
      const batch = await ask('/access/v1/evaluations', { action: { name: 'read' }, resource: { type: 'record', id: 'r' }, evaluations: [{ subject: { type: 'user', id: 'alice' } }, { subject: { type: 'robot', id: 'x' } }] });
      expect(await batch.json()).toEqual({
        evaluations: [
          { decision: false, context: { error: { status: 503, code: 'evaluation_failed', message: 'the evaluation could not be made' } } },
          { decision: false, context: { reason_code: 'subject_type_unknown', reason: expect.any(String), decision_id: expect.any(String) } },
        ],
      });
    } finally {
      await misrouted.close();
    }
  });
});

describe('search pages', () => {
  it('a follow-up may send the token alone; another limit is refused; limit 0 ends the list', async () => {
    const t = await task();
    const request = { subject: agent, resource: customer('1234'), context: { integration: 'crm', task_id: t } };
    const first = await post('/access/v1/search/action', { ...request, page: { limit: 1 } });
    const token = first.body!['page'].next_token as string;
    const alone = await post('/access/v1/search/action', { ...request, page: { token } });
    expect(alone.body).toMatchObject({ results: [{ name: 'tickets:write' }], page: { next_token: '', count: 1 } });
    expect((await post('/access/v1/search/action', { ...request, page: { token, limit: 2 } })).status).toBe(400);
    const none = await post('/access/v1/search/action', { ...request, page: { limit: 0 } });
    expect(none.body).toMatchObject({ results: [], page: { next_token: '', count: 0, total: 2 } });
  });
});
