/**
 * The break-glass hint through the AuthZEN door (issue 21 on issue 16's flow): a denial an approver can lift answers
 * `context.access_request` as `/v1/decide` answers `access_request`, and the PEP asks with it. The real server, bundle
 * and store, with the escalation tests' policies (release-bot may ask for tickets:write on its task's customer).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'escalation-test-webhook-secret-0123456789';
process.env['AGENTPDP_TEST_WEBHOOK_SECRET'] = SECRET;

let receiver: WebhookReceiver;
let t: TestPdp;

beforeAll(async () => {
  receiver = await startWebhookReceiver(SECRET);
  t = await startTestPdp({
    policies: 'test/escalation/policies',
    issuerIsUrl: true,
    config: { escalation: { webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: receiver.url, secret_env: 'AGENTPDP_TEST_WEBHOOK_SECRET' }] } },
  });
});
afterAll(async () => {
  await t?.close();
  await receiver.close();
});

type Json = Record<string, any>;

async function post(path: string, key: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth(key), 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Json };
}

describe('AuthZEN evaluation of a requestable scope', () => {
  it('is decision false with the access-request hint; the PEP asks with its template; a plain deny has none', async () => {
    expect((await post('/v1/tasks', KEYS.orchestrator, { id: 'az-hint-1', agent_id: 'release-bot', type: 'incident', context: { customer_id: '1234' } })).status).toBe(201);
    const ask = (scope: string) =>
      post('/access/v1/evaluation', KEYS.pep, { subject: { type: 'agent', id: 'release-bot' }, action: { name: scope }, resource: { type: 'customer', id: '1234' }, context: { integration: 'crm', task_id: 'az-hint-1' } });
    const res = await ask('tickets:write');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ decision: false, context: { outcome: 'deny', access_request: { endpoint: expect.stringMatching(/\/v1\/access-requests$/), expires_at: expect.any(String), scopes: ['tickets:write'] } } });
    const context = res.body['context'] as Json;
    expect(context['reasons'].map((r: { code: string }) => r.code)).toContain('approval_required');
    // The profile's binding: the decision id; the template is what to send.
    expect(context['access_request'].template).toEqual({ decision_id: context['decision_id'], duration_seconds: 3600 });
    const asked = await post('/v1/access-requests', KEYS.pep, { ...context['access_request'].template, reason: 'hotfix' }, { 'idempotency-key': 'az-hint-ask-1' });
    expect(asked.status).toBe(202);
    expect(asked.body).toMatchObject({ status: 'pending', id: expect.any(String) });
    // The same question through /v1/decide gets the same hint.
    const decided = await post('/v1/decide', KEYS.pep, { agent_id: 'release-bot', task: { id: 'az-hint-1' }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } });
    expect(Object.keys(decided.body['access_request']).sort()).toEqual(Object.keys(context['access_request']).sort());
    // A scope the policy will not lift carries no hint.
    const plain = await ask('tickets:delete');
    expect(plain.body).toMatchObject({ decision: false, context: { outcome: 'deny' } });
    expect(plain.body['context']).not.toHaveProperty('access_request');
  });
});
