import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * Refusals reach the audit trail, bounded: an unauthenticated sender cannot grow the store faster than a small
 * fixed rate (issue 13, item 1), and an authenticated caller probing beyond its rights leaves a trace (item 9).
 * Every refusal is counted, whether it got an event of its own or a share of a counted one.
 */
let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp();
});
afterAll(async () => {
  await t.close();
});

async function events(type: string): Promise<AuditEventV1[]> {
  await t.pdp.refusals.flush();
  const out: AuditEventV1[] = [];
  for await (const e of t.pdp.store.iterateEvents({ types: [type as AuditEventV1['type']] })) out.push(e);
  return out;
}
const counted = (list: AuditEventV1[]): number => list.reduce((sum, e) => sum + (((e.data as { count?: number }).count) ?? 1), 0);

describe('auth.failed', () => {
  it('300 unauthenticated requests with a 15,000-character path: a few small events, all 300 counted', async () => {
    const before = counted(await events('auth.failed'));
    const eventsBefore = (await events('auth.failed')).length;
    const path = `/v1/tasks/${'x'.repeat(15_000)}`;
    for (let i = 0; i < 300; i++) await request(t.url).get(path).expect(401);
    const after = await events('auth.failed');
    expect(counted(after) - before).toBe(300);
    const written = after.slice(eventsBefore);
    expect(written.length).toBeLessThanOrEqual(25); // the burst (20) one by one, then one counted event
    for (const e of written) {
      expect(JSON.stringify(e).length).toBeLessThan(1_000);
      expect(e.data).toMatchObject({ reason: 'missing', route: '/v1/tasks/{id}' });
    }
    expect(written.at(-1)?.data).toMatchObject({ count: expect.any(Number), first_at: expect.any(String), last_at: expect.any(String) });
  });
});

describe('access.refused', () => {
  it.each([
    {
      note: 'a PEP asking for an agent it may not speak for',
      call: () => request(t.url).post('/v1/decide').set(auth(KEYS.strictPep)).send({ agent_id: 'code-review-agent', task: { id: 'probe-1' }, integration: 'github', scopes: ['repo:read'] }),
      want: { code: 'forbidden_agent', route: '/v1/decide' },
      ids: { caller_id: 'pep-strict', agent_id: 'code-review-agent' },
    },
    {
      note: 'a PEP asserting task context it may not assert',
      call: () => request(t.url).post('/v1/decide').set(auth(KEYS.strictPep)).send({ agent_id: 'support-resolver', task: { id: 'probe-2', type: 'triage', context: { customer_id: '1' } }, integration: 'crm', scopes: ['tickets:read'] }),
      want: { code: 'context_assertion_forbidden', route: '/v1/decide' },
      ids: { caller_id: 'pep-strict', agent_id: 'support-resolver' },
    },
    {
      note: 'an auditor on a PEP route',
      call: () => request(t.url).post('/v1/decide').set(auth(KEYS.auditor)).send({}),
      want: { code: 'forbidden_role', route: '/v1/decide' },
      ids: { caller_id: 'compliance' },
    },
  ])('$note → 403 and an access.refused event', async ({ call, want, ids }) => {
    const before = (await events('access.refused')).length;
    expect((await call()).status).toBe(403);
    const written = (await events('access.refused')).slice(before);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ ...ids, data: want });
  });

  it('an AuthZEN batch item refused (an agent the caller may not speak for) is that item\'s deny, and an access.refused event', async () => {
    const before = (await events('access.refused')).length;
    const res = await request(t.url)
      .post('/access/v1/evaluations')
      .set(auth(KEYS.strictPep))
      .send({
        subject: { type: 'agent', id: 'support-resolver' },
        context: { integration: 'crm', task_id: 'probe-4' },
        evaluations: [
          { action: { name: 'tickets:read' }, resource: { type: 'customer', id: '1234' } },
          { subject: { type: 'agent', id: 'code-review-agent' }, action: { name: 'repo:read' }, resource: { type: 'integration', id: 'github' } },
          { action: { name: 'tickets:read' }, resource: { type: 'customer', id: '1234' }, context: { integration: 'crm', task: { id: 'probe-5', type: 'triage', context: { customer_id: '1' } } } },
        ],
      })
      .expect(200);
    expect(res.body.evaluations.map((e: { context?: { error?: { code: string } } }) => e.context?.error?.code)).toEqual([undefined, 'forbidden_agent', 'context_assertion_forbidden']);
    // The items are judged concurrently: their events in either order.
    const written = (await events('access.refused')).slice(before).sort((a, b) => String(a.agent_id).localeCompare(String(b.agent_id)));
    expect(written).toMatchObject([
      { caller_id: 'pep-strict', agent_id: 'code-review-agent', data: { code: 'forbidden_agent', route: '/access/v1/evaluations' } },
      { caller_id: 'pep-strict', agent_id: 'support-resolver', data: { code: 'context_assertion_forbidden', route: '/access/v1/evaluations' } },
    ]);
  });

  it("redeeming another PEP's decision → 403 decision_wrong_caller, recorded with the decision id", async () => {
    const decision = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send({ agent_id: 'support-resolver', task: { id: 'probe-3' }, integration: 'crm', scopes: ['tickets:read'] }).expect(200);
    const before = (await events('access.refused')).length;
    await request(t.url).post('/v1/tokens').set(auth(KEYS.strictPep)).send({ decision_id: decision.body.decision_id }).expect(403);
    const written = (await events('access.refused')).slice(before);
    expect(written).toMatchObject([{ caller_id: 'pep-strict', decision_id: decision.body.decision_id, data: { code: 'decision_wrong_caller', route: '/v1/tokens' } }]);
  });

  it('a PEP probing 500 random agents: a bounded number of events, all 500 counted', async () => {
    const before = await events('access.refused');
    for (let i = 0; i < 500; i++) {
      await request(t.url).post('/v1/decide').set(auth(KEYS.strictPep)).send({ agent_id: `ghost-${i}`, task: { id: 'probe' }, integration: 'crm', scopes: ['tickets:read'] }).expect(403);
    }
    const after = await events('access.refused');
    expect(counted(after) - counted(before)).toBe(500);
    expect(after.length - before.length).toBeLessThanOrEqual(20 + 64 + 1 + 5);
  });
});
