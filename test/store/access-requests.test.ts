/**
 * Access requests in the real SQLite store (a file and :memory:): submission with its outbox rows and event in one
 * transaction, idempotent replay, one decision of many concurrent ones, the elevation lookup by exact key, expiry and
 * the window's end, elevations ended with their task, and the denial's chain; the hash chain verifies after each.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PdpErrorCode } from '../../src/errors/pdp-error.js';
import type { FindElevationsInput, Store } from '../../src/store/index.js';
import { APPROVER, PEP, STORE_KINDS, ask, denial, events } from './access-request-fixtures.js';
import type { AnyStore } from './access-request-fixtures.js';
import { at, decision, grant, task } from './store-fixtures.js';

describe.each(STORE_KINDS)('access requests ($kind)', ({ open }) => {
  let s: AnyStore;
  let store: Store;
  beforeEach(async () => {
    s = await open();
    store = s.store;
  });
  afterEach(async () => {
    expect(await store.verifyStoredChain()).toMatchObject({ ok: true });
    await s.cleanup();
  });

  const approve = (id: string, seconds = 10, until = 910) =>
    store.decideAccessRequest({ id, verdict: 'approved', by: APPROVER, at: at(seconds), approved_until: at(until), note: 'ok' });

  describe('createAccessRequest', () => {
    it('writes the request, its outbox rows and the submitted event together', async () => {
      await denial(store, 'dn-1');
      const input = ask('ar-1', 'dn-1', {
        trace_id: 'trace-1',
        approver_groups: ['platform-oncall', 'security'],
        deliveries: [
          { id: 'dl-1', destination: 'slack-ops', approver_group: 'platform-oncall' },
          { id: 'dl-2', destination: 'pagerduty', approver_group: 'security' },
        ],
      });
      const { request, created } = await store.createAccessRequest(input);
      expect(created).toBe(true);
      expect(request).toEqual({
        id: 'ar-1',
        status: 'pending',
        expires_at: at(600),
        decision_id: 'dn-1',
        requested_by: PEP,
        agent_id: 'support-resolver',
        task_id: 't-1',
        integration: 'crm',
        resource: { type: 'customer', id: '1234' },
        scopes: ['tickets:delete'],
        reason: 'customer asked for erasure',
        duration_seconds: 900,
        max_duration_seconds: 3600,
        approver_groups: ['platform-oncall', 'security'],
        policy_revision: 'rev-1',
        created_at: at(10),
        decided_at: null,
        decided_by: null,
        note: null,
        approved_until: null,
        ended_at: null,
        ended_reason: null,
        idempotency_key: 'key-ar-1',
        request_hash: 'hash-ar-1',
        trace_id: 'trace-1',
      });
      expect(await store.getAccessRequest('ar-1')).toEqual(request);
      expect(await store.getAccessRequest('ar-404')).toBeUndefined();
      const rows = await store.listDeliveries({ access_request_id: 'ar-1', limit: 10 });
      expect(rows.map((r) => [r.id, r.destination, r.approver_group, r.status, r.attempts, r.next_attempt_at])).toEqual([
        ['dl-1', 'slack-ops', 'platform-oncall', 'pending', 0, at(10)],
        ['dl-2', 'pagerduty', 'security', 'pending', 0, at(10)],
      ]);
      const [submitted, ...more] = await events(store, 'access_request.submitted');
      expect(more).toEqual([]);
      expect(submitted).toMatchObject({
        time: at(10),
        decision_id: 'dn-1',
        agent_id: 'support-resolver',
        task_id: 't-1',
        caller_id: PEP,
        trace_id: 'trace-1',
        data: {
          access_request_id: 'ar-1',
          integration: 'crm',
          scopes: ['tickets:delete'],
          resource: { type: 'customer', id: '1234' },
          reason: 'customer asked for erasure',
          duration_seconds: 900,
          max_duration_seconds: 3600,
          approver_groups: ['platform-oncall', 'security'],
          expires_at: at(600),
          policy_revision: 'rev-1',
        },
      });
    });

    it('writes nothing at all when any part of it is refused (one transaction)', async () => {
      await denial(store, 'dn-1');
      await denial(store, 'dn-2');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
      const before = (await store.chainHead()).seq;
      // The second request's delivery id collides with the first's: the request row was already inserted when
      // the check fails, and must not survive.
      const clash = ask('ar-2', 'dn-2', { deliveries: [{ id: 'dl-ok', destination: 'a', approver_group: 'g' }, { id: 'dl-ar-1', destination: 'b', approver_group: 'g' }] });
      await expect(store.createAccessRequest(clash)).rejects.toMatchObject({ code: 'internal' });
      expect(await store.getAccessRequest('ar-2')).toBeUndefined();
      expect(await store.listDeliveries({ limit: 10 })).toHaveLength(1);
      expect((await store.chainHead()).seq).toBe(before);
    });

    it('answers an idempotent replay with the request made the first time, writing nothing', async () => {
      await denial(store, 'dn-1');
      const first = await store.createAccessRequest(ask('ar-1', 'dn-1'));
      // A replay carries a fresh id (the caller mints one per call): the stored request wins.
      const again = await store.createAccessRequest(ask('ar-other', 'dn-1', { idempotency_key: 'key-ar-1', request_hash: 'hash-ar-1', now: at(20) }));
      expect(again).toEqual({ request: first.request, created: false });
      expect(await store.getAccessRequest('ar-other')).toBeUndefined();
      expect(await store.listDeliveries({ limit: 10 })).toHaveLength(1);
      expect(await events(store, 'access_request.submitted')).toHaveLength(1);
    });

    it('creates one request of many concurrent submissions with the same key', async () => {
      await denial(store, 'dn-1');
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => store.createAccessRequest(ask(`ar-${i}`, 'dn-1', { idempotency_key: 'k', request_hash: 'h' }))),
      );
      expect(results.filter((r) => r.created)).toHaveLength(1);
      expect(new Set(results.map((r) => r.request.id))).toEqual(new Set(['ar-0']));
      expect(await events(store, 'access_request.submitted')).toHaveLength(1);
    });

    it.each<{ note: string; input: () => ReturnType<typeof ask>; code: PdpErrorCode }>([
      {
        note: 'the same key with another body',
        input: () => ask('ar-2', 'dn-1', { idempotency_key: 'key-ar-1', request_hash: 'another-hash' }),
        code: 'duplicate_request',
      },
      { note: 'a second request for the denial', input: () => ask('ar-2', 'dn-1'), code: 'access_request_exists' },
      { note: 'a second request for the denial, without a key', input: () => ask('ar-2', 'dn-1', { idempotency_key: null }), code: 'access_request_exists' },
      { note: 'an unknown denial', input: () => ask('ar-2', 'dn-404'), code: 'decision_not_found' },
      { note: "another caller's denial", input: () => ask('ar-2', 'dn-2', { requested_by: 'other-pep' }), code: 'decision_wrong_caller' },
    ])('refuses $note with $code, writing nothing', async ({ input, code }) => {
      await denial(store, 'dn-1');
      await denial(store, 'dn-2');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
      const head = await store.chainHead();
      await expect(store.createAccessRequest(input())).rejects.toMatchObject({ code });
      expect(await store.getAccessRequest('ar-2')).toBeUndefined();
      expect(await store.chainHead()).toEqual(head);
      expect(await store.outboxCounts()).toEqual({ pending: 1, delivered: 0, dead: 0 });
    });

    it('keeps idempotency keys per caller', async () => {
      await denial(store, 'dn-1');
      await store.recordDecision(decision('dn-other', { outcome: 'deny', caller_id: 'other-pep', task_id: 't-1' }));
      await store.createAccessRequest(ask('ar-1', 'dn-1', { idempotency_key: 'k' }));
      const other = await store.createAccessRequest(ask('ar-2', 'dn-other', { requested_by: 'other-pep', idempotency_key: 'k' }));
      expect(other).toMatchObject({ created: true, request: { id: 'ar-2' } });
    });
  });

  describe('listAccessRequests', () => {
    it('pages in (created_at, id) order, filtered by status, agent and any of the approver groups', async () => {
      for (let i = 1; i <= 5; i++) {
        await denial(store, `dn-${i}`);
        const groups = i % 2 === 0 ? ['security'] : ['platform-oncall', 'security-ops'];
        await store.createAccessRequest(ask(`ar-${i}`, `dn-${i}`, { approver_groups: groups, now: at(10 + (i === 5 ? 0 : i)), agent_id: i === 3 ? 'other-agent' : 'support-resolver' }));
      }
      await approve('ar-2', 20);
      const ids = (page: { items: Array<{ id: string }> }) => page.items.map((r) => r.id);
      const first = await store.listAccessRequests({ limit: 2 });
      // ar-5 was created at at(10), before the others (ties broken by id).
      expect(ids(first)).toEqual(['ar-5', 'ar-1']);
      expect(first.next_after).toBe('ar-1');
      const second = await store.listAccessRequests({ limit: 2, after: 'ar-1' });
      expect(ids(second)).toEqual(['ar-2', 'ar-3']);
      const last = await store.listAccessRequests({ limit: 2, after: second.next_after as string });
      expect(last).toMatchObject({ next_after: null });
      expect(ids(last)).toEqual(['ar-4']);
      expect(ids(await store.listAccessRequests({ limit: 10, status: 'pending' }))).toEqual(['ar-5', 'ar-1', 'ar-3', 'ar-4']);
      expect(ids(await store.listAccessRequests({ limit: 10, approver_groups: ['security'] }))).toEqual(['ar-2', 'ar-4']);
      // Exact group names: `Security` or a prefix matches nothing.
      expect(ids(await store.listAccessRequests({ limit: 10, approver_groups: ['Security', 'securit'] }))).toEqual([]);
      expect(ids(await store.listAccessRequests({ limit: 10, approver_groups: ['security', 'security-ops'], status: 'pending' }))).toEqual(['ar-5', 'ar-1', 'ar-3', 'ar-4']);
      expect(ids(await store.listAccessRequests({ limit: 10, approver_groups: [] }))).toEqual([]);
      expect(ids(await store.listAccessRequests({ limit: 10, agent_id: 'other-agent' }))).toEqual(['ar-3']);
      await expect(store.listAccessRequests({ limit: 10, after: 'ar-404' })).rejects.toMatchObject({ code: 'invalid_request' });
      await expect(store.listAccessRequests({ limit: 0 })).rejects.toThrow(TypeError);
    });
  });

  describe('decideAccessRequest', () => {
    beforeEach(async () => {
      await denial(store, 'dn-1');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
    });

    it('approves: the window, who and when, and the approved event under the denial', async () => {
      const approved = await store.decideAccessRequest({ id: 'ar-1', verdict: 'approved', by: APPROVER, at: at(30), approved_until: at(630), note: 'go', trace_id: 'trace-a' });
      expect(approved).toMatchObject({ status: 'approved', decided_at: at(30), decided_by: APPROVER, note: 'go', approved_until: at(630), ended_at: null });
      expect(await store.getAccessRequest('ar-1')).toEqual(approved);
      expect(await events(store, 'access_request.approved')).toMatchObject([
        {
          time: at(30),
          decision_id: 'dn-1',
          agent_id: 'support-resolver',
          task_id: 't-1',
          caller_id: APPROVER,
          trace_id: 'trace-a',
          data: { access_request_id: 'ar-1', duration_seconds: 600, approved_until: at(630), note: 'go' },
        },
      ]);
    });

    it('denies, with the denied event', async () => {
      const denied = await store.decideAccessRequest({ id: 'ar-1', verdict: 'denied', by: APPROVER, at: at(30) });
      expect(denied).toMatchObject({ status: 'denied', decided_at: at(30), decided_by: APPROVER, note: null, approved_until: null });
      expect(await events(store, 'access_request.denied')).toMatchObject([{ decision_id: 'dn-1', caller_id: APPROVER, data: { access_request_id: 'ar-1', note: null } }]);
      await expect(approve('ar-1', 40)).rejects.toMatchObject({ code: 'access_request_not_pending' });
    });

    it('lets exactly one of 50 concurrent approvals win', async () => {
      const settled = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) => store.decideAccessRequest({ id: 'ar-1', verdict: 'approved', by: `approver-${i}`, at: at(30), approved_until: at(630 + i) })),
      );
      const won = settled.filter((r) => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(settled.filter((r) => r.status === 'rejected').map((r) => (r.reason as { code: string }).code)).toEqual(Array(49).fill('access_request_not_pending'));
      expect(await events(store, 'access_request.approved')).toHaveLength(1);
      const winner = (won[0] as PromiseFulfilledResult<{ decided_by: string; approved_until: string }>).value;
      expect(await store.getAccessRequest('ar-1')).toMatchObject({ decided_by: winner.decided_by, approved_until: winner.approved_until });
    });

    it('refuses to approve twice', async () => {
      await approve('ar-1', 30);
      await expect(approve('ar-1', 31)).rejects.toMatchObject({ code: 'access_request_not_pending', status: 409 });
      await expect(store.decideAccessRequest({ id: 'ar-1', verdict: 'denied', by: APPROVER, at: at(32) })).rejects.toMatchObject({ code: 'access_request_not_pending' });
      expect(await events(store, 'access_request.approved', 'access_request.denied')).toHaveLength(1);
    });

    it('refuses to approve once it expired, changing nothing; the sweeper expires it', async () => {
      const head = await store.chainHead();
      await expect(approve('ar-1', 600, 1200)).rejects.toMatchObject({ code: 'access_request_expired', status: 409 });
      expect(await store.getAccessRequest('ar-1')).toMatchObject({ status: 'pending', decided_at: null });
      expect(await store.chainHead()).toEqual(head);
      await store.sweepAccessRequests({ now: at(601) });
      // Swept or not, the answer is the same.
      expect(await store.getAccessRequest('ar-1')).toMatchObject({ status: 'expired' });
      await expect(approve('ar-1', 602, 1200)).rejects.toMatchObject({ code: 'access_request_expired', status: 409 });
      await expect(store.decideAccessRequest({ id: 'ar-1', verdict: 'denied', by: APPROVER, at: at(603) })).rejects.toMatchObject({ code: 'access_request_expired' });
    });

    it.each<{ note: string; id: string; by: string; code: PdpErrorCode }>([
      { note: 'an unknown request', id: 'ar-404', by: APPROVER, code: 'access_request_not_found' },
      { note: 'its own submitter', id: 'ar-1', by: PEP, code: 'self_approval' },
    ])('refuses $note with $code', async ({ id, by, code }) => {
      await expect(store.decideAccessRequest({ id, verdict: 'approved', by, at: at(30), approved_until: at(90) })).rejects.toMatchObject({ code });
      expect(await store.getAccessRequest('ar-1')).toMatchObject({ status: 'pending' });
    });

    it('refuses an approval without a window as a programming error', async () => {
      await expect(store.decideAccessRequest({ id: 'ar-1', verdict: 'approved', by: APPROVER, at: at(30) })).rejects.toThrow(TypeError);
      await expect(store.decideAccessRequest({ id: 'ar-1', verdict: 'approved', by: APPROVER, at: at(30), approved_until: at(30) })).rejects.toThrow(TypeError);
    });
  });

  describe("the task's elevations (read with the task on the decide path)", () => {
    it('gain each approved window in its transaction (windows already over are dropped), never a denied one', async () => {
      await denial(store, 'dn-1');
      await denial(store, 'dn-2');
      await denial(store, 'dn-3');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
      await store.createAccessRequest(ask('ar-2', 'dn-2'));
      await store.createAccessRequest(ask('ar-3', 'dn-3'));
      expect((await store.getTask('t-1'))?.elevations).toEqual([]);
      await store.decideAccessRequest({ id: 'ar-3', verdict: 'denied', by: APPROVER, at: at(10) });
      expect((await store.getTask('t-1'))?.elevations).toEqual([]);
      await approve('ar-1', 10, 200);
      const first = { id: 'ar-1', agent_id: 'support-resolver', requested_by: PEP, integration: 'crm', resource: { type: 'customer', id: '1234' }, scopes: ['tickets:delete'], approved_until: at(200) };
      expect((await store.getTask('t-1'))?.elevations).toEqual([first]);
      await approve('ar-2', 300, 900);
      expect((await store.getTask('t-1'))?.elevations.map((e) => [e.id, e.approved_until])).toEqual([['ar-2', at(900)]]);
    });
  });

  describe("the task's elevations: only the agent's own, only while the task is active", () => {
    it("never writes an approval into another agent's task row (a task id registered for another agent after the request)", async () => {
      await denial(store, 'dn-1');
      await store.createAccessRequest(ask('ar-1', 'dn-1', { task_id: 't-other' }));
      await store.registerTask(task('t-other', { agent_id: 'another-agent', expires_at: at(3600) }));
      await approve('ar-1', 10, 900);
      expect((await store.getAccessRequest('ar-1'))?.status).toBe('approved');
      expect((await store.getTask('t-other'))?.elevations).toEqual([]);
    });

    it('refuses an approval, writing nothing, once the task has closed', async () => {
      await denial(store, 'dn-1');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
      await store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(5) });
      const before = (await events(store)).length;
      await expect(approve('ar-1', 10, 900)).rejects.toMatchObject({ code: 'task_not_active' });
      expect((await store.getAccessRequest('ar-1'))?.status).toBe('pending');
      expect((await store.getTask('t-1'))?.elevations).toEqual([]);
      expect((await events(store)).length).toBe(before);
    });
  });

  describe('findElevations', () => {
    const key = (overrides: Partial<FindElevationsInput> = {}): FindElevationsInput => ({
      agent_id: 'support-resolver',
      task_id: 't-1',
      integration: 'crm',
      requested_by: PEP,
      resource: { type: 'customer', id: '1234' },
      now: at(100),
      ...overrides,
    });

    beforeEach(async () => {
      await denial(store, 'dn-1');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
    });

    it('finds an approved elevation by its exact key only, within its window', async () => {
      expect(await store.findElevations(key())).toEqual([]);
      await approve('ar-1', 20, 920);
      expect((await store.findElevations(key())).map((r) => [r.id, r.scopes, r.approved_until])).toEqual([['ar-1', ['tickets:delete'], at(920)]]);
      for (const other of [
        { resource: { type: 'customer', id: '5678' } },
        { resource: { type: 'order', id: '1234' } },
        { resource: null },
        { task_id: 't-2' },
        { agent_id: 'other-agent' },
        { integration: 'billing' },
        { requested_by: 'another-pep' },
        { now: at(920) },
        { now: at(5000) },
      ]) {
        expect(await store.findElevations(key(other)), JSON.stringify(other)).toEqual([]);
      }
      expect(await store.findElevations(key({ now: at(919) }))).toHaveLength(1);
    });

    it('matches an elevation bound to no record only for no record', async () => {
      await denial(store, 'dn-2');
      await store.createAccessRequest(ask('ar-2', 'dn-2', { resource: null }));
      await approve('ar-2', 20, 920);
      expect((await store.findElevations(key({ resource: null }))).map((r) => r.id)).toEqual(['ar-2']);
      expect(await store.findElevations(key())).toEqual([]);
    });

    it('finds nothing for a pending, denied or expired request', async () => {
      await denial(store, 'dn-2');
      await store.createAccessRequest(ask('ar-2', 'dn-2'));
      await store.decideAccessRequest({ id: 'ar-2', verdict: 'denied', by: APPROVER, at: at(20) });
      await store.sweepAccessRequests({ now: at(700) });
      expect(await store.getAccessRequest('ar-1')).toMatchObject({ status: 'expired' });
      expect(await store.findElevations(key({ now: at(700) }))).toEqual([]);
    });

    it('finds nothing once the task completed', async () => {
      await approve('ar-1', 20, 920);
      const closure = await store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(50) });
      expect(closure.ended_access_requests).toEqual(['ar-1']);
      expect(await store.findElevations(key({ now: at(60) }))).toEqual([]);
    });
  });

  describe('sweepAccessRequests', () => {
    it('expires pending requests and ends passed windows, an event each, once', async () => {
      for (const id of ['1', '2', '3', '4']) await denial(store, `dn-${id}`);
      await store.createAccessRequest(ask('ar-1', 'dn-1', { expires_at: at(100) }));
      await store.createAccessRequest(ask('ar-2', 'dn-2', { expires_at: at(300) }));
      await store.createAccessRequest(ask('ar-3', 'dn-3'));
      await store.createAccessRequest(ask('ar-4', 'dn-4'));
      await approve('ar-3', 20, 150);
      await approve('ar-4', 20, 900);

      const swept = await store.sweepAccessRequests({ now: at(200) });
      expect(swept.expired.map((r) => [r.id, r.status])).toEqual([['ar-1', 'expired']]);
      expect(swept.ended.map((r) => [r.id, r.status, r.ended_at, r.ended_reason])).toEqual([['ar-3', 'approved', at(150), 'window']]);
      expect(await store.getAccessRequest('ar-1')).toEqual(swept.expired[0]);
      expect(await store.getAccessRequest('ar-3')).toEqual(swept.ended[0]);
      expect(await store.getAccessRequest('ar-2')).toMatchObject({ status: 'pending' });
      expect(await store.getAccessRequest('ar-4')).toMatchObject({ ended_at: null });
      expect(await events(store, 'access_request.expired', 'elevation.ended')).toMatchObject([
        { type: 'access_request.expired', time: at(200), decision_id: 'dn-1', task_id: 't-1', data: { access_request_id: 'ar-1', expires_at: at(100) } },
        { type: 'elevation.ended', time: at(200), decision_id: 'dn-3', data: { access_request_id: 'ar-3', reason: 'window', ended_at: at(150) } },
      ]);
      const [expired, ended] = await events(store, 'access_request.expired', 'elevation.ended');
      expect(expired?.caller_id).toBeUndefined();
      expect(ended?.caller_id).toBeUndefined();
      expect(await store.sweepAccessRequests({ now: at(200) })).toEqual({ expired: [], ended: [] });
    });

    it('sweeps at most `limit` of each per call', async () => {
      for (let i = 0; i < 5; i++) {
        await denial(store, `dn-${i}`);
        await store.createAccessRequest(ask(`ar-${i}`, `dn-${i}`, { expires_at: at(100 + i) }));
      }
      expect((await store.sweepAccessRequests({ now: at(500), limit: 3 })).expired.map((r) => r.id)).toEqual(['ar-0', 'ar-1', 'ar-2']);
      expect((await store.sweepAccessRequests({ now: at(500), limit: 3 })).expired.map((r) => r.id)).toEqual(['ar-3', 'ar-4']);
    });
  });

  describe('closing a task ends its elevations', () => {
    beforeEach(async () => {
      await denial(store, 'dn-1');
      await denial(store, 'dn-2');
      await denial(store, 'dn-3', 't-2');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
      await store.createAccessRequest(ask('ar-2', 'dn-2', { resource: null }));
      await store.createAccessRequest(ask('ar-3', 'dn-3', { task_id: 't-2' }));
      await approve('ar-1', 20, 4000);
      await approve('ar-2', 20, 40);
      await approve('ar-3', 20, 4000);
    });

    it('completeTask: task_completed (window for one that passed unswept), in its transaction, after the revocations', async () => {
      const closure = await store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(60), trace_id: 'trace-c' });
      expect(closure.ended_access_requests).toEqual(['ar-1', 'ar-2']);
      expect(await store.getAccessRequest('ar-1')).toMatchObject({ status: 'approved', ended_at: at(60), ended_reason: 'task_completed' });
      expect(await store.getAccessRequest('ar-2')).toMatchObject({ ended_at: at(40), ended_reason: 'window' });
      expect(await store.getAccessRequest('ar-3')).toMatchObject({ ended_at: null });
      const tail = await events(store, 'task.completed', 'elevation.ended');
      expect(tail.map((e) => [e.type, e.decision_id ?? null, e.caller_id ?? null, e.trace_id ?? null, (e.data as { reason?: string }).reason ?? null])).toEqual([
        ['task.completed', null, 'orchestrator-1', 'trace-c', null],
        ['elevation.ended', 'dn-1', 'orchestrator-1', 'trace-c', 'task_completed'],
        ['elevation.ended', 'dn-2', null, null, 'window'],
      ]);
      expect(tail.map((e) => e.seq)).toEqual([tail[0]!.seq, tail[0]!.seq + 1, tail[0]!.seq + 2]);
    });

    it('expireTasks: task_expired, without a caller', async () => {
      await store.registerTask(task('t-3', { expires_at: at(9000) }));
      const closed = await store.expireTasks({ now: at(3600) });
      expect(closed.map((c) => [c.task.id, c.ended_access_requests])).toEqual([
        ['t-1', ['ar-1', 'ar-2']],
        ['t-2', ['ar-3']],
      ]);
      expect(await store.getAccessRequest('ar-3')).toMatchObject({ ended_at: at(3600), ended_reason: 'task_expired' });
      const ended = await events(store, 'elevation.ended');
      expect(ended.map((e) => [e.data, e.caller_id])).toEqual([
        [{ access_request_id: 'ar-1', reason: 'task_expired', ended_at: at(3600) }, undefined],
        [{ access_request_id: 'ar-2', reason: 'window', ended_at: at(40) }, undefined],
        [{ access_request_id: 'ar-3', reason: 'task_expired', ended_at: at(3600) }, undefined],
      ]);
    });
  });

  describe('decisionChain of a denial', () => {
    it('lists the request, its notification, the approval, the elevated decisions with their tokens, and the end', async () => {
      await denial(store, 'dn-1');
      await store.createAccessRequest(ask('ar-1', 'dn-1'));
      await store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 10 });
      await store.completeDelivery({ id: 'dl-ar-1', at: at(11), outcome: 'delivered', status_code: 200 });
      await approve('ar-1', 20, 920);
      // Two decisions made with the elevation (one redeemed for a token that is then used), one unrelated allow.
      await store.recordDecision(decision('d-el-1', { task_id: 't-1', created_at: at(30), redeemable_until: at(90), access_request_id: 'ar-1' }));
      await store.recordDecision(decision('d-plain', { task_id: 't-1', created_at: at(31), redeemable_until: at(90) }));
      await store.recordDecision(decision('d-el-2', { task_id: 't-1', created_at: at(32), redeemable_until: at(90), access_request_id: 'ar-1' }));
      const { token } = await store.redeemDecision({ decision_id: 'd-el-1', caller_id: PEP, now: at(33), makeToken: () => grant({ jti: 'j-el' }) });
      await store.recordTokenUse({ jti: 'j-el', caller_id: 'crm-api', at: at(34), data: { action: 'introspect', active: true } });
      await store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(40) });

      expect(await store.getDecision('d-el-1')).toMatchObject({ access_request_id: 'ar-1', redeemed_jti: token.jti });
      expect(await store.getDecision('d-plain')).toMatchObject({ access_request_id: null });
      const chain = await store.decisionChain('dn-1');
      expect(chain.map((e) => [e.type, e.decision_id ?? null, e.jti ?? null])).toEqual([
        ['decision', 'dn-1', null],
        ['access_request.submitted', 'dn-1', null],
        ['access_request.notified', 'dn-1', null],
        ['access_request.approved', 'dn-1', null],
        ['decision', 'd-el-1', null],
        ['decision', 'd-el-2', null],
        ['token.issued', 'd-el-1', 'j-el'],
        ['token.used', 'd-el-1', 'j-el'],
        ['task.completed', null, null],
        ['token.revoked', 'd-el-1', 'j-el'],
        ['elevation.ended', 'dn-1', null],
      ]);
      const seqs = chain.map((e) => e.seq);
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b));
      // An elevated decision's own chain is its own, as before.
      expect((await store.decisionChain('d-el-2')).map((e) => e.type)).toEqual(['decision', 'task.completed']);
    });

    it('records a decision naming an unknown access request as it is (the Decider names only ids it just read): no chain of a denial picks it up', async () => {
      const stored = await store.recordDecision(decision('d-1', { access_request_id: 'ar-404' }));
      expect(stored.access_request_id).toBe('ar-404');
      expect((await store.decisionChain('d-1')).map((e) => e.decision_id)).toEqual(['d-1']);
    });
  });
});
