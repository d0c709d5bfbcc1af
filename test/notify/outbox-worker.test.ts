/**
 * The outbox worker against the real store (SQLite file) and a real webhook receiver on 127.0.0.1: signed
 * deliveries, retries after 500s, timeouts and a receiver that is down, the dead letter, the three formats, and a
 * restart (stop mid-flight, or a worker that died holding a lease) that delivers the rest exactly once.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApprovalLinks, OutboxWorker, verifyWebhookSignature } from '../../src/notify/index.js';
import type { AuditEventV1 } from '../../src/audit/index.js';
import type { WebhookFetch } from '../../src/notify/index.js';
import type { Store } from '../../src/store/index.js';
import { GROUP, LINK_KEY, PUBLIC_URL, submit, tempStore, webhook, worker } from './outbox-fixtures.js';
import type { LogLine, TempStore } from './outbox-fixtures.js';
import { WebhookReceiver } from './webhook-receiver.js';

const WAIT = { timeout: 15_000, interval: 10 };

let temp: TempStore;
let receiver: WebhookReceiver;
const workers: OutboxWorker[] = [];

beforeEach(async () => {
  temp = await tempStore();
  receiver = await WebhookReceiver.start();
});

afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
  await receiver.close();
  await temp.cleanup();
});

function started(...args: Parameters<typeof worker>): { worker: OutboxWorker; logs: LogLine[] } {
  const made = worker(...args);
  workers.push(made.worker);
  made.worker.start();
  return made;
}

async function eventsOf(store: Store, decisionId: string, type: string): Promise<AuditEventV1[]> {
  return (await store.decisionChain(decisionId)).filter((e) => e.type === type);
}

async function deliveryOf(store: Store, accessRequestId: string) {
  const [delivery, ...more] = await store.listDeliveries({ access_request_id: accessRequestId, limit: 10 });
  expect(more).toEqual([]);
  return delivery!;
}

describe('a delivery', () => {
  it('is signed: the receiver verifies it; a changed body or an old timestamp does not verify', async () => {
    const hook = webhook('hook-1', receiver.url());
    const { worker: w } = started(temp.store, [hook]);
    const request = await submit(temp.store, ['hook-1']);
    w.wake();
    await vi.waitFor(async () => expect((await deliveryOf(temp.store, request.id)).status).toBe('delivered'), WAIT);

    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0]!;
    expect(got.headers['content-type']).toBe('application/json');
    expect(got.headers['x-agentpdp-event']).toBe('access_request.submitted');
    expect(got.headers['x-agentpdp-delivery']).toBe(`dl-${request.id.slice(3)}-hook-1`);
    const header = got.headers['x-agentpdp-signature'];
    expect(verifyWebhookSignature(hook.secret, header, got.body)).toMatchObject({ valid: true });
    expect(verifyWebhookSignature(hook.secret, header, got.body.replace('hotfix', 'hotfiz'))).toEqual({ valid: false, reason: 'mismatch' });
    expect(verifyWebhookSignature('another-secret', header, got.body)).toEqual({ valid: false, reason: 'mismatch' });
    expect(verifyWebhookSignature(hook.secret, header, got.body, { now: new Date(Date.now() + 301_000) })).toEqual({ valid: false, reason: 'stale' });

    const body = JSON.parse(got.body) as { type: string; access_request: { id: string; status: string }; links: Record<string, string> };
    expect(body).toMatchObject({ type: 'access_request.submitted', access_request: { id: request.id, status: 'pending' } });
    const review = new URL(body.links.review!);
    expect(review.origin + review.pathname).toBe(`${PUBLIC_URL}/v1/access-requests/${request.id}/review`);
    const links = new ApprovalLinks(LINK_KEY, 900);
    expect(links.verify(review.searchParams.get('t')!, request.id, new Date())).toMatchObject({ group: GROUP });
    expect(body.links.approve_api).toBe(`${PUBLIC_URL}/v1/access-requests/${request.id}/approve`);

    const [notified, ...more] = await eventsOf(temp.store, request.decision_id, 'access_request.notified');
    expect(more).toEqual([]);
    expect(notified!.data).toMatchObject({ access_request_id: request.id, destination: 'hook-1', approver_group: GROUP, attempts: 1, status_code: 200 });
    expect(w.stats()).toEqual({ delivered: 1, retried: 0, dead: 0, in_flight: 0 });
  });

  it('answered 500 then 200 is delivered after a retry, with one notified event', async () => {
    receiver.answer = (_r, n) => (n === 0 ? 500 : 200);
    const { worker: w, logs } = started(temp.store, [webhook('hook-1', receiver.url())]);
    const request = await submit(temp.store, ['hook-1']);
    w.wake();
    await vi.waitFor(async () => expect((await deliveryOf(temp.store, request.id)).status).toBe('delivered'), WAIT);

    expect([...receiver.counts().values()]).toEqual([2]); // the same delivery id twice: receivers dedupe on it
    expect(await deliveryOf(temp.store, request.id)).toMatchObject({ attempts: 2, last_status: 200 });
    expect(await eventsOf(temp.store, request.decision_id, 'access_request.notified')).toHaveLength(1);
    expect(w.stats()).toMatchObject({ delivered: 1, retried: 1, dead: 0 });
    expect(logs.map((l) => [l.level, l.fields.status, l.fields.attempt, l.fields.status_code])).toEqual([
      ['warn', 'retry', 1, 500],
      ['info', 'delivered', 2, 200],
    ]);
  });

  it('that times out is retried and delivered', async () => {
    receiver.answer = (_r, n) => (n === 0 ? 'hang' : 200);
    const { worker: w } = started(temp.store, [webhook('hook-1', receiver.url())], { outbox: { ...fastTimeout() } });
    const request = await submit(temp.store, ['hook-1']);
    w.wake();
    await vi.waitFor(async () => expect((await deliveryOf(temp.store, request.id)).status).toBe('delivered'), WAIT);
    expect(receiver.received).toHaveLength(2);
    expect(w.stats()).toMatchObject({ delivered: 1, retried: 1 });
    const [, second] = receiver.received;
    expect(second!.headers['x-agentpdp-delivery']).toBe(receiver.received[0]!.headers['x-agentpdp-delivery']);
  });

  it('to a receiver that is down for a while arrives once it is back on the same port; nothing is lost', async () => {
    await receiver.close();
    const { worker: w } = started(temp.store, [webhook('hook-1', receiver.url())]);
    const requests = [await submit(temp.store, ['hook-1']), await submit(temp.store, ['hook-1']), await submit(temp.store, ['hook-1'])];
    w.wake();
    await vi.waitFor(() => expect(w.stats().retried).toBeGreaterThanOrEqual(6), WAIT); // each tried at least twice, on average
    const pending = await temp.store.listDeliveries({ status: 'pending', limit: 10 });
    expect(pending.map((d) => d.last_error)).toEqual(['connection failed (ECONNREFUSED)', 'connection failed (ECONNREFUSED)', 'connection failed (ECONNREFUSED)']);

    await receiver.open();
    await vi.waitFor(async () => expect(await temp.store.outboxCounts()).toEqual({ pending: 0, delivered: 3, dead: 0 }), WAIT);
    expect([...receiver.counts().values()]).toEqual([1, 1, 1]);
    for (const r of requests) expect(await eventsOf(temp.store, r.decision_id, 'access_request.notified')).toHaveLength(1);
  });

  it('becomes a dead letter after max_attempts: status dead, a notification_failed event, no notified event', async () => {
    receiver.answer = () => 500;
    const { worker: w, logs } = started(temp.store, [webhook('hook-1', receiver.url())], { outbox: { ...fastTimeout(), max_attempts: 3 } });
    const request = await submit(temp.store, ['hook-1']);
    w.wake();
    await vi.waitFor(async () => expect((await deliveryOf(temp.store, request.id)).status).toBe('dead'), WAIT);

    expect(receiver.received).toHaveLength(3);
    expect(await deliveryOf(temp.store, request.id)).toMatchObject({ status: 'dead', attempts: 3, last_error: 'HTTP 500', last_status: 500 });
    const [failed, ...more] = await eventsOf(temp.store, request.decision_id, 'access_request.notification_failed');
    expect(more).toEqual([]);
    expect(failed!.data).toMatchObject({ access_request_id: request.id, destination: 'hook-1', attempts: 3, last_error: 'HTTP 500' });
    expect(await eventsOf(temp.store, request.decision_id, 'access_request.notified')).toEqual([]);
    expect(await temp.store.outboxCounts()).toEqual({ pending: 0, delivered: 0, dead: 1 });
    expect(w.stats()).toMatchObject({ delivered: 0, retried: 2, dead: 1, in_flight: 0 });
    expect(logs.at(-1)).toMatchObject({ level: 'warn', fields: { status: 'dead', attempt: 3, status_code: 500 } });
  });
  it('to a destination no longer configured (or that cannot be rendered) is never sent and ends as a dead letter saying why', async () => {
    const hooks = [webhook('pd-1', receiver.url(), { format: 'pagerduty', routing_key: null })];
    const { worker: w } = started(temp.store, hooks, { outbox: { ...fastTimeout(), max_attempts: 2 } });
    const gone = await submit(temp.store, ['removed-hook']);
    const broken = await submit(temp.store, ['pd-1']);
    w.wake();
    await vi.waitFor(async () => expect(await temp.store.outboxCounts()).toEqual({ pending: 0, delivered: 0, dead: 2 }), WAIT);
    expect(receiver.received).toEqual([]);
    expect(await deliveryOf(temp.store, gone.id)).toMatchObject({ attempts: 2, last_error: 'destination removed-hook is not configured' });
    expect(await deliveryOf(temp.store, broken.id)).toMatchObject({ attempts: 2, last_error: 'rendering failed: a pagerduty delivery needs a routing key' });
  });
  it('goes through an injected fetch (the global one here) just the same', async () => {
    let calls = 0;
    const fetch: WebhookFetch = (url, init) => {
      calls += 1;
      return globalThis.fetch(url, init);
    };
    const { worker: w } = started(temp.store, [webhook('hook-1', receiver.url())], { fetch });
    const request = await submit(temp.store, ['hook-1']);
    w.wake();
    await vi.waitFor(async () => expect((await deliveryOf(temp.store, request.id)).status).toBe('delivered'), WAIT);
    expect(calls).toBe(1);
    expect(verifyWebhookSignature('secret-of-hook-1', receiver.received[0]!.headers['x-agentpdp-signature'], receiver.received[0]!.body).valid).toBe(true);
  });
});

describe('formats on the wire', () => {
  it('Slack gets Block Kit, PagerDuty an Events v2 trigger; no log line names a URL, secret or routing key', async () => {
    const slackUrl = receiver.url('/services/T0000/B0000/SLACKURLSECRETPART');
    const pdUrl = receiver.url('/v2/enqueue');
    const routingKey = 'PDROUTINGKEYSECRET00000000000000';
    const hooks = [webhook('slack-1', slackUrl, { format: 'slack' }), webhook('pd-1', pdUrl, { format: 'pagerduty', routing_key: routingKey })];
    receiver.answer = (r, n) => (r.path.startsWith('/v2/') ? (n < 2 ? 503 : 202) : 200);
    const { worker: w, logs } = started(temp.store, hooks);
    const request = await submit(temp.store, ['slack-1', 'pd-1']);
    w.wake();
    await vi.waitFor(async () => expect(await temp.store.outboxCounts()).toMatchObject({ delivered: 2 }), WAIT);

    const slack = receiver.received.find((r) => r.path === '/services/T0000/B0000/SLACKURLSECRETPART')!;
    const slackBody = JSON.parse(slack.body) as { text: string; blocks: Array<{ type: string; fields?: Array<{ text: string }>; elements?: Array<{ url?: string }> }> };
    expect(slackBody.blocks.map((b) => b.type)).toEqual(['header', 'section', 'actions', 'context']);
    expect(slackBody.blocks[1]!.fields!.map((f) => f.text.split('\n')[0])).toEqual([
      '*Agent*', '*Task*', '*Integration*', '*Scopes*', '*Record*', '*Reason*', '*Requested duration*', '*Policy revision*',
    ]);
    expect(slackBody.blocks[2]!.elements![0]!.url).toMatch(new RegExp(`^${PUBLIC_URL}/v1/access-requests/${request.id}/review\\?t=`));

    const pd = receiver.received.filter((r) => r.path === '/v2/enqueue').at(-1)!;
    expect(JSON.parse(pd.body)).toMatchObject({
      routing_key: routingKey,
      event_action: 'trigger',
      dedup_key: request.id,
      payload: { severity: 'warning', source: 'pdp.example.com', custom_details: { record: 'customer 1234', policy_revision: 'rev-7' } },
      links: [{ href: expect.stringContaining('/review?t=') as unknown, text: 'Review and decide' }, {}, {}],
    });

    const logged = JSON.stringify(logs);
    expect(logs.some((l) => l.fields.status === 'retry')).toBe(true);
    for (const secret of ['SLACKURLSECRETPART', '127.0.0.1', routingKey, 'secret-of-']) expect(logged).not.toContain(secret);
    const stored = JSON.stringify([await temp.store.listDeliveries({ limit: 10 }), await temp.store.decisionChain(request.decision_id)]);
    for (const secret of ['SLACKURLSECRETPART', routingKey, 'secret-of-']) expect(stored).not.toContain(secret);
  });
});

describe('a restart', () => {
  it('stop() waits for the deliveries in flight; a new worker on the same file delivers the rest, each exactly once', async () => {
    const release: Array<() => void> = [];
    receiver.answer = (_r, n) => (n < 2 ? new Promise<number>((resolve) => release.push(() => resolve(200))) : 200);
    const hooks = [webhook('hook-1', receiver.url())];
    for (let i = 0; i < 10; i += 1) await submit(temp.store, ['hook-1']);
    const first = worker(temp.store, hooks, { outbox: { ...fastTimeout(), timeout_ms: 10_000, concurrency: 2 } }).worker;
    first.start();
    await vi.waitFor(() => expect(release).toHaveLength(2), WAIT);
    expect(first.stats().in_flight).toBe(2);

    const stopping = first.stop();
    let stopped = false;
    void stopping.then(() => (stopped = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stopped).toBe(false); // still waiting for its two deliveries
    for (const r of release) r();
    await stopping;
    expect(first.stats()).toEqual({ delivered: 2, retried: 0, dead: 0, in_flight: 0 });
    expect(receiver.received).toHaveLength(2);
    expect(await temp.store.outboxCounts()).toEqual({ pending: 8, delivered: 2, dead: 0 });

    const store = await temp.reopen();
    const { worker: second } = started(store, hooks);
    await vi.waitFor(async () => expect(await store.outboxCounts()).toEqual({ pending: 0, delivered: 10, dead: 0 }), WAIT);
    expect(receiver.counts().size).toBe(10);
    expect([...receiver.counts().values()].every((n) => n === 1)).toBe(true);
    expect(second.stats()).toMatchObject({ delivered: 8, retried: 0, dead: 0 });
  });

  it('a worker that died holding a lease (SIGKILL after the claim): the row is delivered after the lease, once', async () => {
    const request = await submit(temp.store, ['hook-1']);
    const now = new Date();
    // What a worker does before it sends; it then "dies": no completeDelivery.
    const claimed = await temp.store.claimDeliveries({ now: now.toISOString(), lease_until: new Date(now.getTime() + 300).toISOString(), limit: 10 });
    expect(claimed.map((d) => d.access_request_id)).toEqual([request.id]);

    const { worker: w } = started(temp.store, [webhook('hook-1', receiver.url())], { pollIntervalMs: 25 });
    await vi.waitFor(async () => expect((await deliveryOf(temp.store, request.id)).status).toBe('delivered'), WAIT);
    expect(receiver.received).toHaveLength(1);
    expect(await deliveryOf(temp.store, request.id)).toMatchObject({ attempts: 1 });
    expect(w.stats()).toMatchObject({ delivered: 1 });
  });
});

function fastTimeout() {
  return { max_attempts: 50, initial_backoff_ms: 10, max_backoff_ms: 80, timeout_ms: 200, concurrency: 4 };
}
