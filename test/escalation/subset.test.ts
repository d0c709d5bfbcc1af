/**
 * Break-glass, issue 16 step 5, for a subset of the approved scopes: one access request approves two scopes, and a
 * later decide asking for only one of them is allowed with the elevation, while a scope outside the approval stays
 * denied. End to end on the real server (HTTP on loopback, the committed bundle, SQLite), with a real webhook
 * receiver; set up as flow.test.ts is, on a copy of its policies plus one agent with two requestable scopes.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'escalation-subset-webhook-secret-0123456789';
process.env['AGENTPDP_TEST_WEBHOOK_SECRET'] = SECRET;

/** Two scopes above its ceiling, requestable together from one approver group; a token lives 30 min otherwise. */
const SUBSET_BOT = `agent_policy:
  id: subset-bot
  integrations:
    crm:
      max_scope: [tickets:read]
      escalation:
        scopes: [tickets:write, tickets:delete]
        approvers: [platform-oncall]
        max_duration: 3600
  token_ttl: 1800
`;

let receiver: WebhookReceiver;
let policies: string;
let t: TestPdp;
let taskSeq = 0;

beforeAll(async () => {
  receiver = await startWebhookReceiver(SECRET);
  policies = mkdtempSync(join(tmpdir(), 'agent-pdp-subset-'));
  cpSync('test/escalation/policies', policies, { recursive: true });
  writeFileSync(join(policies, 'agents/subset-bot.yaml'), SUBSET_BOT);
  t = await startTestPdp({
    policies,
    issuerIsUrl: true,
    config: {
      // The test PEP may also speak for subset-bot.
      callers: TEST_CALLERS.map((c) => (c.id === 'pep-1' ? { ...c, agents: [...(c.agents ?? []), 'subset-bot'] } : c)),
      escalation: {
        outbox: { initial_backoff_ms: 50, max_backoff_ms: 200, timeout_ms: 1000 },
        webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: receiver.url, secret_env: 'AGENTPDP_TEST_WEBHOOK_SECRET' }],
      },
    },
  });
});
afterAll(async () => {
  await t?.close();
  await receiver?.close();
  rmSync(policies, { recursive: true, force: true });
});

type Json = Record<string, any>;

async function call(method: string, path: string, key: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...auth(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? (JSON.parse(text) as Json) : { text } };
}

async function task(agent = 'subset-bot', customer = '1234'): Promise<string> {
  const id = `subset-task-${++taskSeq}`;
  const res = await call('POST', '/v1/tasks', KEYS.orchestrator, { id, agent_id: agent, type: 'incident', context: { customer_id: customer } });
  expect(res.status).toBe(201);
  return id;
}

async function decide(taskId: string, scopes: string[], over: Json = {}): Promise<Json> {
  const res = await call('POST', '/v1/decide', KEYS.pep, {
    agent_id: 'subset-bot',
    task: { id: taskId },
    integration: 'crm',
    scopes,
    resource: { type: 'customer', id: '1234' },
    ...over,
  });
  expect(res.status).toBe(200);
  return res.body;
}

const codes = (decision: Json): string[] => decision['reasons'].map((r: Json) => r['code']);

describe('5. deciding again for a subset of the approved scopes', () => {
  it('allows one of two approved scopes alone, on the same task and record; its token carries just that scope', async () => {
    const taskId = await task();

    // Both at once: a requestable denial naming both.
    const both = await decide(taskId, ['tickets:write', 'tickets:delete']);
    expect(both['allow']).toBe(false);
    expect(both['outcome']).toBe('deny');
    expect(codes(both)).toEqual(['approval_required']);
    expect(both['denied_scopes']).toEqual([
      { scope: 'tickets:delete', reason: 'approval_required' },
      { scope: 'tickets:write', reason: 'approval_required' },
    ]);
    expect(both['access_request']['scopes']).toEqual(['tickets:delete', 'tickets:write']);

    const submitted = await call('POST', '/v1/access-requests', KEYS.pep, { decision_id: both['decision_id'], reason: 'clean up duplicates', duration_seconds: 600 });
    expect(submitted.status).toBe(202);
    const requestId = submitted.body['id'] as string;
    expect(submitted.body['scopes']).toEqual(['tickets:delete', 'tickets:write']);
    const approved = await call('POST', `/v1/access-requests/${requestId}/approve`, KEYS.approver, { duration_seconds: 300, note: 'ok' });
    expect(approved.status).toBe(200);
    const approvedUntil = approved.body['approved_until'] as string;
    expect(approvedUntil).toBe(new Date(t.clock.now.getTime() + 300_000).toISOString());

    // One of the two, alone: allowed with the elevation, naming the access request.
    const one = await decide(taskId, ['tickets:delete']);
    expect(one['allow']).toBe(true);
    expect(one['outcome']).toBe('allow');
    expect(one['granted_scopes']).toEqual(['tickets:delete']);
    const elevated = (one['reasons'] as Json[]).find((r) => r['code'] === 'elevated');
    expect(elevated?.['message']).toBe(`granted by access request ${requestId}: tickets:delete`);
    expect(one['approval']).toEqual({ id: requestId, approved_until: approvedUntil });
    expect(one['token_ttl_seconds']).toBeLessThanOrEqual(300); // the window, not the policy's 1800

    const token = await call('POST', '/v1/tokens', KEYS.pep, { decision_id: one['decision_id'] });
    expect(token.status).toBe(201);
    const claims = decodeJwt(token.body['access_token'] as string);
    expect(claims.scope).toBe('tickets:delete');
    expect(claims.exp! * 1000).toBeLessThanOrEqual(Date.parse(approvedUntil));

    // The other one alone too.
    const other = await decide(taskId, ['tickets:write']);
    expect(other['allow']).toBe(true);
    expect(other['granted_scopes']).toEqual(['tickets:write']);
    expect(codes(other)).toContain('elevated');

    // A third scope, outside the approval: denied, alone or with an approved one, and nothing is elevated.
    const third = await decide(taskId, ['admin']);
    expect(third['allow']).toBe(false);
    expect(third['granted_scopes']).toEqual([]);
    expect(codes(third)).toEqual(['approval_required']); // requestable from its own group (crm.yaml), not approved
    expect(third['access_request']['scopes']).toEqual(['admin']);
    expect(third['approval']).toBeUndefined();
    const mixed = await decide(taskId, ['tickets:delete', 'admin']);
    expect(mixed['allow']).toBe(false);
    expect(mixed['granted_scopes']).toEqual([]);
    expect(codes(mixed)).not.toContain('elevated');

    // The approved scope elsewhere: another record of the task, another task of the agent.
    expect((await decide(taskId, ['tickets:delete'], { resource: { type: 'customer', id: '5678' } }))['allow']).toBe(false);
    expect((await decide(await task(), ['tickets:delete']))['allow']).toBe(false);

    // The window ends: the subset is a requestable denial again.
    t.clock.advance(301);
    const after = await decide(taskId, ['tickets:delete']);
    expect(after['allow']).toBe(false);
    expect(codes(after)).toEqual(['approval_required']);
  });
});
