/**
 * The notification outbox in a real store (SQLite: a file and :memory:; PostgreSQL: a schema of its own): rows
 * committed with their request, claimed under a lease (a worker that dies leaves them due again), completed as
 * delivered / retried / dead with their events.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { STORE_KINDS, ask, denial, events } from './access-request-fixtures.js';
import type { AnyStore } from './access-request-fixtures.js';
import { at, tempStore } from './store-fixtures.js';

describe.each(STORE_KINDS)('outbox ($kind)', ({ open }) => {
  let s: AnyStore;
  let store: Store;
  beforeEach(async () => {
    s = await open();
    store = s.store;
    await denial(store, 'dn-1');
    await store.createAccessRequest(
      ask('ar-1', 'dn-1', {
        approver_groups: ['platform-oncall', 'security'],
        deliveries: [
          { id: 'dl-1', destination: 'slack-ops', approver_group: 'platform-oncall' },
          { id: 'dl-2', destination: 'pagerduty', approver_group: 'platform-oncall' },
          { id: 'dl-3', destination: 'generic', approver_group: 'security' },
        ],
      }),
    );
  });
  afterEach(async () => {
    expect(await store.verifyStoredChain()).toMatchObject({ ok: true });
    await s.cleanup();
  });

  it('claims due rows under a lease: not again until it runs out, then again (the worker died)', async () => {
    const claimed = await store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 2 });
    expect(claimed).toEqual([
      { id: 'dl-1', access_request_id: 'ar-1', notification_id: null, destination: 'slack-ops', approver_group: 'platform-oncall', attempts: 0 },
      { id: 'dl-2', access_request_id: 'ar-1', notification_id: null, destination: 'pagerduty', approver_group: 'platform-oncall', attempts: 0 },
    ]);
    expect((await store.claimDeliveries({ now: at(11), lease_until: at(41), limit: 10 })).map((d) => d.id)).toEqual(['dl-3']);
    expect(await store.claimDeliveries({ now: at(39), lease_until: at(69), limit: 10 })).toEqual([]);
    expect((await store.listDeliveries({ limit: 10 })).map((d) => [d.id, d.status, d.next_attempt_at])).toEqual([
      ['dl-1', 'pending', at(40)],
      ['dl-2', 'pending', at(40)],
      ['dl-3', 'pending', at(41)],
    ]);
    // Nobody completed them: due again after the lease.
    expect((await store.claimDeliveries({ now: at(41), lease_until: at(71), limit: 10 })).map((d) => d.id)).toEqual(['dl-1', 'dl-2', 'dl-3']);
    // A claim writes no event.
    expect(await events(store, 'access_request.notified', 'access_request.notification_failed')).toEqual([]);
  });

  it('never hands the same row to two claims in one transaction', async () => {
    const [a, b] = await Promise.all([
      store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 2 }),
      store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 2 }),
    ]);
    expect([...(a ?? []), ...(b ?? [])].map((d) => d.id).sort()).toEqual(['dl-1', 'dl-2', 'dl-3']);
  });

  it('delivered: done, with the notified event under the denial; a late second completion changes nothing', async () => {
    await store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 10 });
    const done = await store.completeDelivery({ id: 'dl-1', at: at(12), outcome: 'delivered', status_code: 200 });
    expect(done).toMatchObject({ id: 'dl-1', status: 'delivered', attempts: 1, delivered_at: at(12), last_status: 200, last_error: null });
    expect((await store.listDeliveries({ status: 'delivered', limit: 10 })).map((d) => d.id)).toEqual(['dl-1']);
    expect(await events(store, 'access_request.notified')).toMatchObject([
      {
        time: at(12),
        decision_id: 'dn-1',
        agent_id: 'support-resolver',
        task_id: 't-1',
        data: { access_request_id: 'ar-1', delivery_id: 'dl-1', destination: 'slack-ops', approver_group: 'platform-oncall', attempts: 1, status_code: 200 },
      },
    ]);
    const [notified] = await events(store, 'access_request.notified');
    expect(notified?.caller_id).toBeUndefined();
    // A second worker (after the lease) finished it too: the first completion stands, no second event.
    const head = await store.chainHead();
    expect(await store.completeDelivery({ id: 'dl-1', at: at(50), outcome: 'dead', error: 'late' })).toEqual(done);
    expect(await store.chainHead()).toEqual(head);
    expect(await store.claimDeliveries({ now: at(100), lease_until: at(130), limit: 10 })).toHaveLength(2);
  });

  it('retry: due again at next_attempt_at, the error kept, no event', async () => {
    await store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 10 });
    const head = await store.chainHead();
    const retried = await store.completeDelivery({ id: 'dl-2', at: at(12), outcome: 'retry', next_attempt_at: at(20), error: 'HTTP 503', status_code: 503 });
    expect(retried).toMatchObject({ status: 'pending', attempts: 1, next_attempt_at: at(20), last_error: 'HTTP 503', last_status: 503, delivered_at: null });
    expect(await store.chainHead()).toEqual(head);
    expect(await store.claimDeliveries({ now: at(19), lease_until: at(49), limit: 10 })).toEqual([]);
    expect(await store.claimDeliveries({ now: at(20), lease_until: at(50), limit: 10 })).toEqual([
      { id: 'dl-2', access_request_id: 'ar-1', notification_id: null, destination: 'pagerduty', approver_group: 'platform-oncall', attempts: 1 },
    ]);
    const again = await store.completeDelivery({ id: 'dl-2', at: at(21), outcome: 'retry', next_attempt_at: at(30), error: 'timeout' });
    expect(again).toMatchObject({ attempts: 2, last_error: 'timeout', last_status: null });
    await expect(store.completeDelivery({ id: 'dl-2', at: at(22), outcome: 'retry' })).rejects.toThrow(TypeError);
  });

  it('dead: given up, with the notification_failed event; counted', async () => {
    await store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 10 });
    await store.completeDelivery({ id: 'dl-1', at: at(12), outcome: 'delivered', status_code: 204 });
    await store.completeDelivery({ id: 'dl-3', at: at(12), outcome: 'retry', next_attempt_at: at(13), error: 'HTTP 500', status_code: 500 });
    const dead = await store.completeDelivery({ id: 'dl-3', at: at(14), outcome: 'dead', error: 'HTTP 500', status_code: 500 });
    expect(dead).toMatchObject({ status: 'dead', attempts: 2, last_error: 'HTTP 500', delivered_at: null });
    expect(await events(store, 'access_request.notification_failed')).toMatchObject([
      {
        time: at(14),
        decision_id: 'dn-1',
        data: { access_request_id: 'ar-1', delivery_id: 'dl-3', destination: 'generic', approver_group: 'security', attempts: 2, last_error: 'HTTP 500' },
      },
    ]);
    expect(await store.outboxCounts()).toEqual({ pending: 1, delivered: 1, dead: 1 });
    expect((await store.listDeliveries({ status: 'dead', access_request_id: 'ar-1', limit: 10 })).map((d) => d.id)).toEqual(['dl-3']);
    expect(await store.listDeliveries({ access_request_id: 'ar-404', limit: 10 })).toEqual([]);
    // A dead row is never claimed again.
    expect((await store.claimDeliveries({ now: at(1000), lease_until: at(1030), limit: 10 })).map((d) => d.id)).toEqual(['dl-2']);
  });

  it('refuses misuse as programming errors', async () => {
    await expect(store.completeDelivery({ id: 'dl-404', at: at(12), outcome: 'delivered' })).rejects.toThrow(TypeError);
    await expect(store.claimDeliveries({ now: at(10), lease_until: at(10), limit: 1 })).rejects.toThrow(TypeError);
    await expect(store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 0 })).rejects.toThrow(TypeError);
  });
});

describe('the outbox across a restart', () => {
  it('keeps a committed row that was never delivered, and hands it out after the lease', async () => {
    const temp = await tempStore();
    try {
      await denial(temp.store, 'dn-1');
      await temp.store.createAccessRequest(ask('ar-1', 'dn-1'));
      await temp.store.claimDeliveries({ now: at(10), lease_until: at(40), limit: 10 });
      // The process dies holding the lease; a new one opens the file.
      const reopened = await temp.reopen();
      expect(await reopened.claimDeliveries({ now: at(20), lease_until: at(50), limit: 10 })).toEqual([]);
      expect((await reopened.claimDeliveries({ now: at(40), lease_until: at(70), limit: 10 })).map((d) => d.id)).toEqual(['dl-ar-1']);
      await reopened.completeDelivery({ id: 'dl-ar-1', at: at(41), outcome: 'delivered', status_code: 200 });
      expect(await reopened.outboxCounts()).toEqual({ pending: 0, delivered: 1, dead: 0 });
      expect(await reopened.verifyStoredChain()).toMatchObject({ ok: true });
    } finally {
      await temp.cleanup();
    }
  });
});
