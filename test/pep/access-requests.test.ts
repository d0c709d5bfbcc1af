/**
 * Break-glass from the PEP's side, against the real server (HTTP on loopback, the escalation test policies, real
 * SQLite): the hint on `PermissionDenied`, `PdpClient`'s submit / get / wait, and `guardTool`'s
 * `onApprovalRequired` (wait, submit-then-resolve-later, a handler of one's own). The approver answers through the
 * real API with its own key while the guard waits. No mock of the PDP.
 */
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  ApprovalPending,
  ApprovalRefused,
  guardTool,
  isApprovalPending,
  PdpClient,
  PepError,
  PermissionDenied,
  type AccessRequestV1,
  type ApprovalHandler,
  type ApprovalOptions,
  type ToolGrant,
} from '../../src/pep/index.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

type Json = Record<string, any>;

let t: TestPdp;
let pep: PdpClient;
let orchestrator: PdpClient;
let taskSeq = 0;

beforeAll(async () => {
  t = await startTestPdp({ policies: 'test/escalation/policies', issuerIsUrl: true });
  pep = new PdpClient({ url: t.url, apiKey: KEYS.pep, retryDelayMs: 1 });
  orchestrator = new PdpClient({ url: t.url, apiKey: KEYS.orchestrator });
});
afterAll(async () => {
  await t.close();
});

async function task(customer = '1234'): Promise<string> {
  const id = `pep-esc-${++taskSeq}`;
  await orchestrator.registerTask({ id, agent_id: 'release-bot', type: 'incident', context: { customer_id: customer }, expires_in_seconds: 3600 });
  return id;
}

/** The approver's side: the real API with an approver's key. */
async function approver(method: 'GET' | 'POST', path: string, body?: unknown, key: string = KEYS.approver): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...auth(key), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

/** Waits (real time) until a pending request for `taskId` is in the approver's inbox. */
async function inboxItem(taskId: string): Promise<Json> {
  for (let i = 0; i < 400; i++) {
    const inbox = await approver('GET', '/v1/access-requests?status=pending&limit=200');
    const found = (inbox.body['items'] as Json[]).find((r) => r['task_id'] === taskId);
    if (found) return found;
    await new Promise((ok) => setTimeout(ok, 10));
  }
  throw new Error(`no pending request for ${taskId}`);
}

async function requestsFor(taskId: string): Promise<Json[]> {
  const all = await approver('GET', '/v1/access-requests?limit=200', undefined, KEYS.auditor);
  return (all.body['items'] as Json[]).filter((r) => r['task_id'] === taskId);
}

interface WriteArgs {
  taskId: string;
  customerId: string;
}

/** A ticket-writing tool of release-bot (ceiling read-only; tickets:write needs an on-call approval). */
function writeTool(onApprovalRequired?: 'wait' | 'submit' | ApprovalOptions<WriteArgs> | ApprovalHandler<WriteArgs>, tokens: false | undefined = false) {
  const tool = vi.fn(async (_args: WriteArgs, grant: ToolGrant) => grant);
  const guarded = guardTool<WriteArgs, ToolGrant>(
    {
      pdp: pep,
      agentId: 'release-bot',
      task: (a) => a.taskId,
      integration: 'crm',
      scopes: ['tickets:write'],
      resource: (a) => ({ type: 'customer', id: a.customerId }),
      ...(tokens === false ? { tokens: false as const } : {}),
      ...(onApprovalRequired === undefined ? {} : { onApprovalRequired }),
    },
    tool,
  );
  return { guarded, tool };
}

const reason = 'hotfix for incident 42';

describe('PermissionDenied carries the hint', () => {
  it('without onApprovalRequired nothing changes: a PermissionDenied with accessRequest, and no request is made', async () => {
    const taskId = await task();
    const { guarded, tool } = writeTool();
    const err = await guarded({ taskId, customerId: '1234' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermissionDenied);
    const denied = err as PermissionDenied;
    expect(denied.approvalRequired).toBe(true);
    expect(denied.reasons.map((r) => r.code)).toContain('approval_required');
    expect(denied.accessRequest).toMatchObject({
      endpoint: `${t.url}/v1/access-requests`,
      template: { decision_id: denied.decisionId },
      scopes: ['tickets:write'],
      max_duration_seconds: 3600,
      require_reason: true,
    });
    expect(Object.isFrozen(denied.accessRequest)).toBe(true);
    expect(tool).not.toHaveBeenCalled();
    expect(await requestsFor(taskId)).toEqual([]);
  });

  it('a denial no approver can lift has no hint, and the guard does not ask even when told to', async () => {
    const taskId = await task();
    const guarded = guardTool(
      { pdp: pep, agentId: 'release-bot', task: taskId, integration: 'crm', scopes: ['tickets:delete'], onApprovalRequired: { mode: 'wait', reason } },
      async () => 'ran',
    );
    const err = (await guarded({}).catch((e: unknown) => e)) as PermissionDenied;
    expect(err).toBeInstanceOf(PermissionDenied);
    expect(err.accessRequest).toBeUndefined();
    expect(err.approvalRequired).toBe(false);
    expect(await requestsFor(taskId)).toEqual([]);
  });
});

describe('PdpClient: submit, get, wait', () => {
  it('submits with an Idempotency-Key (a repeat answers the same request), reads it back, and refuses a second request for the denial', async () => {
    const taskId = await task();
    const denial = await pep.decide({ agent_id: 'release-bot', task: { id: taskId }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } });
    const hint = denial.access_request!;
    expect(hint.template.decision_id).toBe(denial.decision_id);

    const first = await pep.submitAccessRequest({ ...hint.template, reason, duration_seconds: 600 }, { idempotencyKey: 'idem-1' });
    expect(first).toMatchObject({ status: 'pending', decision_id: denial.decision_id, requested_by: 'pep-1', scopes: ['tickets:write'], duration_seconds: 600, reason });
    expect(first.status_endpoint).toBe(`${t.url}/v1/access-requests/${first.id}`);
    expect(await pep.submitAccessRequest({ ...hint.template, reason, duration_seconds: 600 }, { idempotencyKey: 'idem-1' })).toEqual(first);

    const changed = await pep.submitAccessRequest({ ...hint.template, reason: 'other', duration_seconds: 600 }, { idempotencyKey: 'idem-1' }).catch((e: unknown) => e);
    expect(changed).toMatchObject({ code: 'pdp_error', status: 409, pdpCode: 'duplicate_request' });
    const second = await pep.submitAccessRequest({ ...hint.template, reason }).catch((e: unknown) => e);
    expect(second).toMatchObject({ code: 'pdp_error', status: 409, pdpCode: 'access_request_exists' });
    const tooLong = await pep.submitAccessRequest({ decision_id: denial.decision_id, reason, duration_seconds: 3601 }, { idempotencyKey: 'idem-2' }).catch((e: unknown) => e);
    expect(tooLong).toMatchObject({ code: 'pdp_error', status: 400, pdpCode: 'invalid_request' });

    expect(await pep.getAccessRequest(first.id)).toEqual(first);
    const foreign = await pep.getAccessRequest('ar_not-mine').catch((e: unknown) => e);
    expect(foreign).toMatchObject({ code: 'pdp_error', status: 404, pdpCode: 'access_request_not_found' });
    await expect(pep.submitAccessRequest({ decision_id: '' })).rejects.toThrow(TypeError);
    await expect(pep.submitAccessRequest({ decision_id: 'x' }, { idempotencyKey: 'has space' })).rejects.toThrow(TypeError);
  });

  it('waitForAccessRequest polls until the approver answers, or resolves with the pending request at its timeout', async () => {
    const taskId = await task();
    const denial = await pep.decide({ agent_id: 'release-bot', task: { id: taskId }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } });
    const submitted = await pep.submitAccessRequest({ decision_id: denial.decision_id, reason });

    // At its timeout it answers the request as last seen (pending), having polled more than once meanwhile.
    let statusPolls = 0;
    const counting = new PdpClient({
      url: t.url,
      apiKey: KEYS.pep,
      fetch: async (input, init) => {
        if (init?.method === 'GET') statusPolls++;
        return fetch(input, init);
      },
    });
    const still = await counting.waitForAccessRequest(submitted.id, { timeoutMs: 150, intervalMs: 20 });
    expect(still.status).toBe('pending');
    expect(statusPolls).toBeGreaterThan(1);

    const waiting = pep.waitForAccessRequest(submitted.id, { timeoutMs: 10_000, intervalMs: 20 });
    await new Promise((ok) => setTimeout(ok, 60));
    expect((await approver('POST', `/v1/access-requests/${submitted.id}/approve`, { duration_seconds: 120 })).status).toBe(200);
    const answered = await waiting;
    expect(answered).toMatchObject({ id: submitted.id, status: 'approved', decided_by: 'oncall-1' });
    expect(answered.result).toEqual({ mode: 'reevaluate', approval: { id: submitted.id, approved_at: answered.decided_at, approved_until: answered.approved_until } });

    // The approval alone allows nothing: the PEP decides again.
    const again = await pep.decide({ agent_id: 'release-bot', task: { id: taskId }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } });
    expect(again.allow).toBe(true);
    expect(again.approval).toEqual({ id: submitted.id, approved_until: answered.approved_until });
  });

  it('waitForAccessRequest honours Retry-After, and an abort ends it with the signal’s reason', async () => {
    const taskId = await task();
    const denial = await pep.decide({ agent_id: 'release-bot', task: { id: taskId }, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: '1234' } });
    const submitted = await pep.submitAccessRequest({ decision_id: denial.decision_id, reason });

    // The real server's answers, with a Retry-After added on the way (a proxy in front of the PDP could add it).
    let polls = 0;
    const slowed = new PdpClient({
      url: t.url,
      apiKey: KEYS.pep,
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        if (init?.method === 'GET') polls++;
        const headers = new Headers(res.headers);
        headers.set('retry-after', '1');
        return new Response(await res.arrayBuffer(), { status: res.status, headers });
      },
    });
    const seen = await slowed.waitForAccessRequest(submitted.id, { timeoutMs: 1500, intervalMs: 20 });
    expect(seen.status).toBe('pending');
    expect(polls).toBeGreaterThanOrEqual(2);
    expect(polls).toBeLessThanOrEqual(3);

    const controller = new AbortController();
    const aborted = pep.waitForAccessRequest(submitted.id, { timeoutMs: 10_000, intervalMs: 20, signal: controller.signal });
    setTimeout(() => controller.abort(new Error('agent cancelled')), 50);
    await expect(aborted).rejects.toThrow('agent cancelled');
  });
});

describe('guardTool onApprovalRequired', () => {
  it("'wait': submits, waits while the approver approves through the API, decides again and runs the tool with the elevated token", async () => {
    const taskId = await task();
    const { guarded, tool } = writeTool({ mode: 'wait', reason: (a) => `${reason} (customer ${a.customerId})`, durationSeconds: 300, intervalMs: 20, timeoutMs: 20_000 });
    const call = guarded({ taskId, customerId: '1234' });
    const item = await inboxItem(taskId);
    expect(item).toMatchObject({ agent_id: 'release-bot', scopes: ['tickets:write'], reason: `${reason} (customer 1234)`, duration_seconds: 300 });
    expect((await approver('POST', `/v1/access-requests/${item['id']}/approve`, { note: 'go' })).status).toBe(200);

    const grant = await call;
    expect(tool).toHaveBeenCalledTimes(1);
    expect(grant.scopes).toContain('tickets:write');
    expect(grant.approval).toEqual({ id: item['id'], approved_until: expect.any(String) });
    // The token lasts no longer than the approved window (300 s), though the policy's token_ttl is 1800 s.
    // (The token's own exp, on the PDP's clock, as approved_until is; the grant's expiresAt is on the PEP's.)
    expect(decodeJwt(grant.accessToken).exp! * 1000).toBeLessThanOrEqual(Date.parse(grant.approval!.approved_until));
    expect(grant.decisionId).not.toBe(item['decision_id']);
    expect(await requestsFor(taskId)).toHaveLength(1);

    // The elevation is for customer 1234 only: another record is denied again and needs its own request.
    const other = (await writeTool({ mode: 'submit', reason }).guarded({ taskId, customerId: '5678' }).catch((e: unknown) => e)) as ApprovalPending;
    expect(other).toBeInstanceOf(ApprovalPending);
    expect(other.accessRequestId).not.toBe(item['id']);
    expect(other.accessRequest.resource).toEqual({ type: 'customer', id: '5678' });
  });

  it("'wait': a denial by the approver is ApprovalRefused; a timeout is ApprovalPending; the tool never runs", async () => {
    const taskId = await task();
    const { guarded, tool } = writeTool({ reason, intervalMs: 20, timeoutMs: 20_000 });
    const call = guarded({ taskId, customerId: '1234' }).catch((e: unknown) => e);
    const item = await inboxItem(taskId);
    expect((await approver('POST', `/v1/access-requests/${item['id']}/deny`, { note: 'not during the freeze' })).status).toBe(200);
    const refused = (await call) as ApprovalRefused;
    expect(refused).toBeInstanceOf(ApprovalRefused);
    expect(refused).toMatchObject({ code: 'approval_refused', retryable: false, accessRequestId: item['id'], requestStatus: 'denied', note: 'not during the freeze' });
    expect(refused.denied).toBeInstanceOf(PermissionDenied);
    expect(refused.message).toContain('denied by oncall-1 (not during the freeze)');

    const timedOut = writeTool({ mode: 'wait', reason, intervalMs: 20, timeoutMs: 100 });
    const pendingErr = (await timedOut.guarded({ taskId: await task(), customerId: '1234' }).catch((e: unknown) => e)) as ApprovalPending;
    expect(pendingErr).toBeInstanceOf(ApprovalPending);
    expect(pendingErr.accessRequest.status).toBe('pending');
    expect(tool).not.toHaveBeenCalled();
    expect(timedOut.tool).not.toHaveBeenCalled();
  });

  it("'submit': throws ApprovalPending with the id and status endpoint; calling again resumes the same request; after approval the call runs", async () => {
    const taskId = await task();
    const { guarded, tool } = writeTool({ mode: 'submit', reason });
    const first = await guarded({ taskId, customerId: '1234' }).catch((e: unknown) => e);
    expect(isApprovalPending(first)).toBe(true);
    const pending = first as ApprovalPending;
    expect(pending).toBeInstanceOf(PepError);
    expect(pending).toMatchObject({ code: 'approval_pending', retryable: true });
    expect(pending.statusEndpoint).toBe(`${t.url}/v1/access-requests/${pending.accessRequestId}`);
    expect(pending.expiresAt).toBe(pending.accessRequest.expires_at);
    expect(pending.denied.accessRequest?.template.decision_id).toBe(pending.accessRequest.decision_id);

    const again = (await guarded({ taskId, customerId: '1234' }).catch((e: unknown) => e)) as ApprovalPending;
    expect(again).toBeInstanceOf(ApprovalPending);
    expect(again.accessRequestId).toBe(pending.accessRequestId);
    expect(await requestsFor(taskId)).toHaveLength(1);

    // Resolved later, by id: the approver approves, the middleware sees it and calls the tool again.
    expect((await approver('POST', `/v1/access-requests/${pending.accessRequestId}/approve`, {})).status).toBe(200);
    expect((await pep.waitForAccessRequest(pending.accessRequestId, { intervalMs: 20, timeoutMs: 5000 })).status).toBe('approved');
    const grant = await guarded({ taskId, customerId: '1234' });
    expect(grant.approval?.id).toBe(pending.accessRequestId);
    expect(tool).toHaveBeenCalledTimes(1);
  });

  it('a handler of its own: submits through the context, waits, and asks the guard to decide again', async () => {
    const taskId = await task();
    const seen: AccessRequestV1[] = [];
    const handler: ApprovalHandler<WriteArgs> = async ({ denied, submit, pdp, args }) => {
      expect(denied.accessRequest?.require_reason).toBe(true);
      const submitted = await submit({ reason: `${reason} for ${args.customerId}`, durationSeconds: 120 });
      seen.push(submitted);
      const answered = await pdp.waitForAccessRequest(submitted.id, { intervalMs: 20, timeoutMs: 20_000 });
      seen.push(answered);
      return answered.status === 'approved' ? 'retry' : 'deny';
    };
    const { guarded, tool } = writeTool(handler);
    const call = guarded({ taskId, customerId: '1234' });
    const item = await inboxItem(taskId);
    await approver('POST', `/v1/access-requests/${item['id']}/approve`, {}, KEYS.approver2);
    const grant = await call;
    expect(seen.map((r) => r.status)).toEqual(['pending', 'approved']);
    expect(seen[1]?.decided_by).toBe('oncall-2');
    expect(grant.approval?.id).toBe(item['id']);
    expect(tool).toHaveBeenCalledTimes(1);

    const denyAll = writeTool(async () => 'deny');
    expect(await denyAll.guarded({ taskId: await task(), customerId: '1234' }).catch((e: unknown) => e)).toBeInstanceOf(PermissionDenied);
  });

  it('refuses a malformed onApprovalRequired', () => {
    expect(() => guardTool({ pdp: pep, agentId: 'a', task: 't', integration: 'i', scopes: ['s'], onApprovalRequired: 'later' as never }, async () => 1)).toThrow(TypeError);
    expect(() => guardTool({ pdp: pep, agentId: 'a', task: 't', integration: 'i', scopes: ['s'], onApprovalRequired: { mode: 'poll' } as never }, async () => 1)).toThrow(TypeError);
  });
});
