/**
 * GET /v1/audit/decisions/{decision_id} (role auditor): the decision and everything that followed from it, in
 * order — its token, the token's uses, its revocation, the task's completion — over a whole PDP on loopback.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashEvent } from '../../src/audit/index.js';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { completeTask, decide, introspect, issueToken, registerTask, revoke } from '../issuer-http/flow.js';
import type { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { auditApiChecker } from './openapi.js';

let t: TestPdp;
let api: OpenApiChecker;

beforeAll(async () => {
  t = await startTestPdp();
  api = await auditApiChecker(t.url);
});
afterAll(async () => {
  await t.close();
});

async function chainOf(decisionId: string): Promise<AuditEventV1[]> {
  const res = await request(t.url).get(`/v1/audit/decisions/${decisionId}`).set(auth(KEYS.auditor)).expect(200);
  api.expectResponse(res);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.body.decision_id).toBe(decisionId);
  return res.body.events as AuditEventV1[];
}

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('the chain view of a decision', () => {
  it('decide, issue, introspect, revoke: returns all four, in order, each intact', async () => {
    const { taskId, decision, token } = await issueToken(t);
    await introspect(t, token.access_token).expect(200);
    await revoke(t, token.access_token).expect(200);
    // Unrelated activity in between and after must not appear: another decision and token on the same task.
    await issueToken(t);
    await decide(t, taskId);

    const events = await chainOf(decision.decision_id);
    expect(events.map((e) => e.type)).toEqual(['decision', 'token.issued', 'token.used', 'token.revoked']);
    const [decided, issued, used, revoked] = events as [AuditEventV1, AuditEventV1, AuditEventV1, AuditEventV1];
    expect(events.map((e) => e.seq)).toEqual([...events.map((e) => e.seq)].sort((a, b) => a - b));
    for (const event of events) {
      const { hash, ...unsealed } = event;
      expect(hashEvent(unsealed)).toBe(hash);
      expect(event.decision_id).toBe(decision.decision_id);
    }
    // The decision as evaluated: the registered task's trusted context, the result, the policy revision.
    expect(decided).toMatchObject({ agent_id: 'support-resolver', caller_id: 'pep-1', task_id: taskId });
    expect(decided.data).toMatchObject({
      input: { agent_id: 'support-resolver', task: { id: taskId, registered: true, context: { customer_id: '1234' } }, scopes: ['tickets:write'] },
      result: { outcome: 'allow', granted_scopes: ['tickets:write'], decision_id: decision.decision_id },
      policy_revision: t.pdp.engine.active?.revision,
    });
    expect(issued).toMatchObject({ jti: token.jti, caller_id: 'pep-1', data: { scopes: ['tickets:write'] } });
    expect(used).toMatchObject({ jti: token.jti, caller_id: 'crm-api', data: { action: 'introspect', active: true } });
    expect(revoked).toMatchObject({ jti: token.jti, caller_id: 'pep-1', data: { reason: 'revoked_by_caller', issued_to: 'pep-1' } });
  });

  it("ends with the task's completion and the revocation it caused", async () => {
    const { taskId, decision, token } = await issueToken(t);
    await introspect(t, token.access_token).expect(200);
    await completeTask(t, taskId).expect(200);
    await introspect(t, token.access_token).expect(200);

    const events = await chainOf(decision.decision_id);
    expect(events.map((e) => e.type)).toEqual(['decision', 'token.issued', 'token.used', 'task.completed', 'token.revoked', 'token.used']);
    expect(events[3]).toMatchObject({ task_id: taskId, data: { status: 'completed', revoked_jtis: [token.jti] } });
    expect(events[4]).toMatchObject({ jti: token.jti, data: { reason: 'task_completed' } });
    expect(events[5]).toMatchObject({ jti: token.jti, data: { action: 'introspect', active: false } });
  });

  it('carries the trace id of the traceparent the decision came with', async () => {
    const taskId = await registerTask(t);
    const res = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.pep))
      .set('traceparent', `00-${TRACE}-00f067aa0ba902b7-01`)
      .send({ agent_id: 'support-resolver', task: { id: taskId }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } })
      .expect(200);
    const [decided] = await chainOf(res.body.decision_id as string);
    expect(decided).toMatchObject({ type: 'decision', trace_id: TRACE });
  });

  it('shows a denied decision alone: nothing follows from it', async () => {
    const taskId = await registerTask(t);
    const denied = await decide(t, taskId, { customer: '9999' });
    expect(denied.outcome).toBe('deny');
    const events = await chainOf(denied.decision_id);
    expect(events.map((e) => e.type)).toEqual(['decision']);
    expect(events[0]?.data).toMatchObject({ result: { outcome: 'deny' } });
  });
});

describe('who may see it', () => {
  it.each([
    { note: 'no API key', key: undefined, status: 401, code: 'unauthenticated' },
    { note: 'a PEP', key: KEYS.pep, status: 403, code: 'forbidden_role' },
    { note: 'an orchestrator', key: KEYS.orchestrator, status: 403, code: 'forbidden_role' },
    { note: 'an admin', key: KEYS.admin, status: 403, code: 'forbidden_role' },
    { note: 'a resource server', key: KEYS.resource, status: 403, code: 'forbidden_role' },
  ])('refuses $note with $code', async ({ key, status, code }) => {
    const { decision } = await issueToken(t);
    const req = request(t.url).get(`/v1/audit/decisions/${decision.decision_id}`);
    const res = await (key === undefined ? req : req.set(auth(key)));
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    api.expectResponse(res);
  });

  it('answers 404 decision_not_found for a decision that does not exist', async () => {
    const res = await request(t.url).get('/v1/audit/decisions/no-such-decision').set(auth(KEYS.auditor));
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('decision_not_found');
    api.expectResponse(res);
  });
});
