/**
 * Break-glass notification delivery under a bad receiver (issue 16, attacks: "a webhook receiver that times out,
 * answers 500, or is down for a minute (delivered afterwards, nothing lost)"), the dead letter, and the Slack and
 * PagerDuty bodies. The real server in process (HTTP on loopback, real bundle, real SQLite store, the real outbox
 * worker) against a real receiver on loopback; nothing is mocked.
 *
 * The harness clock is frozen unless moved, and the worker reads it for `next_attempt_at`: with a frozen clock a
 * retry never falls due. Each PDP here gets a ticker that keeps its clock at real time while the test waits.
 */
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { sampleValue } from '../support/prometheus-text.js';
import { startWebhookReceiver, type Arrival, type Delivery, type WebhookReceiver } from '../support/webhook-receiver.js';

const SECRET = 'delivery-test-webhook-secret-5f1c9a7e3b';
const ROUTING_KEY = 'pd-routing-key-delivery-test-8d2e4b6a0c';
/** The secret part of a Slack incoming-webhook URL: whoever has the URL can post to the channel. */
const SLACK_PATH_TOKEN = 'T0DELIVERY/B0TESTHOOK/slackpathtoken7x9y2z';
process.env['AGENTPDP_TEST_DELIVERY_SECRET'] = SECRET;
process.env['AGENTPDP_TEST_DELIVERY_ROUTING_KEY'] = ROUTING_KEY;

/** Retries: first after 25..50 ms, then doubling up to 200..400 ms; one POST times out after 300 ms. */
const FAST_OUTBOX = { initial_backoff_ms: 50, max_backoff_ms: 400, timeout_ms: 300, max_attempts: 100 };
/** Longer than the largest backoff (400 ms) plus the worker's poll (1000 ms): a duplicate would have arrived. */
const SETTLE_MS = 1_800;

/** Every line any PDP in this file logs, at debug level: none may carry a secret, a routing key or a webhook URL. */
const logLines: string[] = [];
const receivers: WebhookReceiver[] = [];

type Json = Record<string, any>;

interface Pdp {
  t: TestPdp;
  close(): Promise<void>;
}

async function startPdp(escalation: Json): Promise<Pdp> {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  const t = await startTestPdp({ policies: 'test/escalation/policies', issuerIsUrl: true, logger: createLogger('debug', sink), config: { escalation } });
  // Keep the settable clock at real time, so the worker's retries fall due while the test waits.
  const ticker = setInterval(() => {
    const real = Date.now();
    if (real > t.clock.now.getTime()) t.clock.now = new Date(real);
  }, 5);
  return {
    t,
    async close() {
      clearInterval(ticker);
      await t.close();
    },
  };
}

async function receiver(): Promise<WebhookReceiver> {
  const r = await startWebhookReceiver(SECRET);
  receivers.push(r);
  return r;
}

afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});

async function call(t: TestPdp, method: string, path: string, key: string | null, body?: unknown): Promise<{ status: number; body: Json; text: string }> {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: { ...(key ? auth(key) : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text.startsWith('{') ? (JSON.parse(text) as Json) : {}, text };
}

let taskSeq = 0;

/** A requestable denial (release-bot may not write tickets without an on-call approval) and its pending request. */
async function pendingRequest(t: TestPdp, reason = 'hotfix for incident 42'): Promise<{ taskId: string; denial: Json; request: Json }> {
  const taskId = `delivery-task-${++taskSeq}`;
  const created = await call(t, 'POST', '/v1/tasks', KEYS.orchestrator, { id: taskId, agent_id: 'release-bot', type: 'incident', context: { customer_id: '1234' } });
  expect(created.status).toBe(201);
  const denial = await decide(t, taskId);
  expect(denial['allow']).toBe(false);
  expect(denial['access_request']).toBeDefined();
  const submitted = await call(t, 'POST', '/v1/access-requests', KEYS.pep, { decision_id: denial['decision_id'], reason, duration_seconds: 600 });
  expect(submitted.status).toBe(202);
  return { taskId, denial, request: submitted.body };
}

async function decide(t: TestPdp, taskId: string): Promise<Json> {
  const res = await call(t, 'POST', '/v1/decide', KEYS.pep, {
    agent_id: 'release-bot',
    task: { id: taskId },
    integration: 'crm',
    scopes: ['tickets:write'],
    resource: { type: 'customer', id: '1234' },
  });
  expect(res.status).toBe(200);
  return res.body;
}

/** The outbox rows of one request, as an admin sees them. */
async function outboxRows(t: TestPdp, requestId: string): Promise<Json[]> {
  const res = await call(t, 'GET', `/v1/admin/notifications?access_request_id=${encodeURIComponent(requestId)}`, KEYS.admin);
  expect(res.status).toBe(200);
  return res.body['items'] as Json[];
}

async function chain(t: TestPdp, decisionId: string): Promise<Json[]> {
  const res = await call(t, 'GET', `/v1/audit/decisions/${decisionId}`, KEYS.auditor);
  expect(res.status).toBe(200);
  return res.body['events'] as Json[];
}

async function metric(t: TestPdp, name: string, labels: Record<string, string>): Promise<number> {
  const res = await fetch(`${t.url}/metrics`);
  expect(res.status).toBe(200);
  return sampleValue(await res.text(), name, labels);
}

/** Polls `check` until it returns something truthy; fails after `timeoutMs` naming `what`. */
async function waitUntil<T>(what: string, check: () => T | Promise<T>, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 25));
  }
}

const pause = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

/** Generic-format bodies name their request: what arrived (or was accepted) for one request. */
const requestIdOf = (body: string): unknown => (JSON.parse(body) as Json)['access_request']?.['id'];
const arrivalsFor = (r: WebhookReceiver, requestId: string): Arrival[] => r.arrivals.filter((a) => requestIdOf(a.body) === requestId);
const acceptedFor = (r: WebhookReceiver, requestId: string): Delivery[] => r.deliveries.filter((d) => requestIdOf(d.body) === requestId);
const deliveryId = (d: { headers: Arrival['headers'] }): string => d.headers['x-agentpdp-delivery'] as string;

describe('a receiver that fails for a while (generic webhook, retries with backoff)', () => {
  let pdp: Pdp;
  let t: TestPdp;
  let hook: WebhookReceiver;

  beforeAll(async () => {
    hook = await receiver();
    pdp = await startPdp({
      outbox: FAST_OUTBOX,
      webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: hook.url, secret_env: 'AGENTPDP_TEST_DELIVERY_SECRET' }],
    });
    t = pdp.t;
  });
  afterAll(async () => {
    await pdp.close();
  });

  it('answers 500 for the first attempts, then 200: delivered exactly once, signed, with the retries counted', async () => {
    const retriedBefore = await metric(t, 'agentpdp_webhook_deliveries_total', { outcome: 'retried' });
    hook.mode = { status: 500 };
    const { denial, request } = await pendingRequest(t);
    await waitUntil('three attempts answered 500', () => arrivalsFor(hook, request['id']).length >= 3);
    expect(acceptedFor(hook, request['id'])).toEqual([]);
    const [failing] = await outboxRows(t, request['id']);
    expect(failing).toMatchObject({ status: 'pending', destination: 'oncall-hook', last_error: 'HTTP 500', last_status: 500 });

    hook.mode = { status: 200 };
    const [row] = await waitUntil('the row delivered', async () => {
      const rows = await outboxRows(t, request['id']);
      return rows[0]?.['status'] === 'delivered' ? rows : undefined;
    });
    await pause(SETTLE_MS);

    const accepted = acceptedFor(hook, request['id']);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]!.signatureValid).toBe(true);
    expect(deliveryId(accepted[0]!)).toBe(row!['id']);
    expect(accepted[0]!.headers['x-agentpdp-event']).toBe('access_request.submitted');
    // Every attempt was the same notification (one delivery id to dedupe on), and each is one recorded attempt.
    const arrivals = arrivalsFor(hook, request['id']);
    expect(new Set(arrivals.map(deliveryId))).toEqual(new Set([row!['id']]));
    const [final] = await outboxRows(t, request['id']);
    expect(final).toMatchObject({ status: 'delivered', last_status: 200, last_error: null });
    expect(final!['attempts']).toBeGreaterThan(1);
    expect(final!['attempts']).toBe(arrivals.length);
    expect(final!['delivered_at']).toEqual(expect.any(String));

    const notified = (await chain(t, denial['decision_id'])).filter((e) => e['type'] === 'access_request.notified');
    expect(notified).toHaveLength(1);
    expect(notified[0]!['data']).toMatchObject({ access_request_id: request['id'], delivery_id: row!['id'], destination: 'oncall-hook', attempts: final!['attempts'], status_code: 200 });

    const retried = await metric(t, 'agentpdp_webhook_deliveries_total', { outcome: 'retried' });
    expect(retried - retriedBefore).toBe(final!['attempts'] - 1);
    expect(await metric(t, 'agentpdp_webhook_deliveries_total', { outcome: 'delivered' })).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('hangs (never answers): each attempt times out and is retried; once it answers, delivered, nothing lost', async () => {
    hook.mode = 'hang';
    const { denial, request } = await pendingRequest(t);
    await waitUntil('two attempts left hanging', () => arrivalsFor(hook, request['id']).length >= 2);
    const timedOut = await waitUntil('a timeout recorded', async () => {
      const [r] = await outboxRows(t, request['id']);
      return r && r['attempts'] >= 1 ? r : undefined;
    });
    expect(timedOut).toMatchObject({ status: 'pending', last_error: 'timeout after 300 ms', last_status: null });
    expect(acceptedFor(hook, request['id'])).toEqual([]);

    hook.mode = { status: 200 };
    await waitUntil('the delivery', () => acceptedFor(hook, request['id']).length >= 1);
    await waitUntil('the row delivered', async () => (await outboxRows(t, request['id']))[0]?.['status'] === 'delivered');
    await pause(SETTLE_MS);

    const accepted = acceptedFor(hook, request['id']);
    expect(accepted).toHaveLength(1);
    expect(accepted[0]!.signatureValid).toBe(true);
    const [row] = await outboxRows(t, request['id']);
    expect(deliveryId(accepted[0]!)).toBe(row!['id']);
    expect(row!['attempts']).toBeGreaterThanOrEqual(3);
    expect(new Set(arrivalsFor(hook, request['id']).map(deliveryId))).toEqual(new Set([row!['id']]));
    expect((await chain(t, denial['decision_id'])).filter((e) => e['type'] === 'access_request.notified')).toHaveLength(1);
  }, 60_000);

  it('is down while five requests are submitted, then up again on the same port: all five delivered, each once', async () => {
    const port = hook.port;
    await hook.stop();
    const submitted = [];
    for (let i = 0; i < 5; i++) submitted.push(await pendingRequest(t, `outage ${i}`));
    const ids = submitted.map((s) => s.request['id'] as string);

    // The "down for a minute": with the default backoff (500 ms doubling) a minute holds 7 attempts; the
    // short backoff here (50 ms doubling, capped at 400 ms) gets each notification through as many refused attempts
    // in a second or two, so the outage lasts as many retries as a minute would, without sleeping a minute.
    await waitUntil('seven refused attempts of every notification', async () => {
      for (const id of ids) {
        const [r] = await outboxRows(t, id);
        if (!r || r['attempts'] < 7) return false;
      }
      return true;
    });
    for (const id of ids) {
      const rows = await outboxRows(t, id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ status: 'pending', last_status: null });
      expect(rows[0]!['last_error']).toMatch(/^connection failed \(ECONNREFUSED\)$/);
    }

    await hook.start();
    expect(hook.port).toBe(port);
    await waitUntil('all five rows delivered', async () => {
      for (const id of ids) if ((await outboxRows(t, id))[0]?.['status'] !== 'delivered') return false;
      return true;
    });
    await pause(SETTLE_MS);

    const rowIds = new Set<string>();
    for (const { denial, request } of submitted) {
      const [row] = await outboxRows(t, request['id']);
      rowIds.add(row!['id']);
      const accepted = acceptedFor(hook, request['id']);
      expect(accepted, `deliveries of ${request['id']}`).toHaveLength(1);
      expect(accepted[0]!.signatureValid).toBe(true);
      expect(deliveryId(accepted[0]!)).toBe(row!['id']);
      expect((await chain(t, denial['decision_id'])).filter((e) => e['type'] === 'access_request.notified')).toHaveLength(1);
    }
    // Deduped on X-AgentPDP-Delivery: five distinct notifications, none accepted twice.
    const acceptedIds = ids.flatMap((id) => acceptedFor(hook, id).map(deliveryId));
    expect(acceptedIds).toHaveLength(5);
    expect(new Set(acceptedIds)).toEqual(rowIds);
  }, 60_000);
});

describe('the dead letter', () => {
  let pdp: Pdp;
  let t: TestPdp;
  let hook: WebhookReceiver;

  beforeAll(async () => {
    hook = await receiver();
    hook.mode = { status: 500 };
    pdp = await startPdp({
      outbox: { ...FAST_OUTBOX, max_attempts: 3 },
      webhooks: [{ id: 'oncall-hook', groups: ['platform-oncall'], format: 'generic', url: hook.url, secret_env: 'AGENTPDP_TEST_DELIVERY_SECRET' }],
    });
    t = pdp.t;
  });
  afterAll(async () => {
    await pdp.close();
  });

  it('gives up after max_attempts: dead for admins, in the chain and the metrics; the request stays approvable', async () => {
    const { taskId, denial, request } = await pendingRequest(t);
    const dead = await waitUntil('the dead letter', async () => {
      const res = await call(t, 'GET', '/v1/admin/notifications?status=dead', KEYS.admin);
      expect(res.status).toBe(200);
      return (res.body['items'] as Json[]).length > 0 ? res.body : undefined;
    });
    expect(dead['counts']).toMatchObject({ dead: 1, pending: 0 });
    expect(dead['items']).toHaveLength(1);
    expect(dead['items'][0]).toMatchObject({ access_request_id: request['id'], destination: 'oncall-hook', status: 'dead', attempts: 3, last_error: 'HTTP 500', last_status: 500, delivered_at: null });
    // Not for other roles.
    expect((await call(t, 'GET', '/v1/admin/notifications?status=dead', KEYS.auditor)).status).toBe(403);

    await pause(SETTLE_MS);
    // Exactly max_attempts tries, and never again.
    expect(arrivalsFor(hook, request['id'])).toHaveLength(3);
    expect(new Set(arrivalsFor(hook, request['id']).map(deliveryId))).toEqual(new Set([dead['items'][0]['id']]));

    const events = await chain(t, denial['decision_id']);
    const failed = events.filter((e) => e['type'] === 'access_request.notification_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!['data']).toMatchObject({ access_request_id: request['id'], delivery_id: dead['items'][0]['id'], destination: 'oncall-hook', attempts: 3, last_error: 'HTTP 500' });
    expect(events.filter((e) => e['type'] === 'access_request.notified')).toEqual([]);

    expect(await metric(t, 'agentpdp_outbox_notifications', { status: 'dead' })).toBe(1);
    expect(await metric(t, 'agentpdp_outbox_notifications', { status: 'pending' })).toBe(0);
    expect(await metric(t, 'agentpdp_webhook_deliveries_total', { outcome: 'dead' })).toBe(1);
    expect(await metric(t, 'agentpdp_webhook_deliveries_total', { outcome: 'retried' })).toBe(2);

    // The notification failed, not the request: still pending, and an approver who learns of it otherwise approves.
    const status = await call(t, 'GET', `/v1/access-requests/${request['id']}`, KEYS.pep);
    expect(status.body['status']).toBe('pending');
    const approved = await call(t, 'POST', `/v1/access-requests/${request['id']}/approve`, KEYS.approver, { duration_seconds: 300, note: 'seen in the dead letters' });
    expect(approved.status).toBe(200);
    expect(approved.body['status']).toBe('approved');
    expect((await decide(t, taskId))['allow']).toBe(true);
  }, 60_000);
});

describe('Slack and PagerDuty formats', () => {
  let pdp: Pdp;
  let t: TestPdp;
  let hook: WebhookReceiver;
  let origin: string;

  beforeAll(async () => {
    hook = await receiver();
    origin = new URL(hook.url).origin;
    pdp = await startPdp({
      outbox: FAST_OUTBOX,
      webhooks: [
        { id: 'oncall-slack', groups: ['platform-oncall'], format: 'slack', url: `${origin}/services/${SLACK_PATH_TOKEN}`, secret_env: 'AGENTPDP_TEST_DELIVERY_SECRET' },
        {
          id: 'oncall-pagerduty',
          groups: ['platform-oncall'],
          format: 'pagerduty',
          url: `${origin}/v2/enqueue`,
          secret_env: 'AGENTPDP_TEST_DELIVERY_SECRET',
          routing_key_env: 'AGENTPDP_TEST_DELIVERY_ROUTING_KEY',
        },
      ],
    });
    t = pdp.t;
  });
  afterAll(async () => {
    await pdp.close();
  });

  it('delivers a Block Kit message with the facts and a review button, and an Events API v2 trigger', async () => {
    // A first attempt fails, so the retry path renders these formats too.
    hook.mode = { status: 503 };
    const { taskId, denial, request } = await pendingRequest(t, 'incident 42 <!channel> & <https://evil.example|click>');
    await waitUntil('both notifications tried', () => hook.arrivals.length >= 2);
    hook.mode = { status: 200 };
    const [first, second] = await hook.waitFor(2, 20_000);
    await pause(SETTLE_MS);
    expect(hook.deliveries).toHaveLength(2);
    const slack = [first!, second!].find((d) => d.path === `/services/${SLACK_PATH_TOKEN}`)!;
    const pd = [first!, second!].find((d) => d.path === '/v2/enqueue')!;
    expect(slack).toBeDefined();
    expect(pd).toBeDefined();
    for (const d of [slack, pd]) {
      expect(d.signatureValid).toBe(true);
      expect(d.headers['content-type']).toBe('application/json');
    }
    expect(deliveryId(slack)).not.toBe(deliveryId(pd));
    const reviewLink = new RegExp(`^${t.url}/v1/access-requests/${request['id']}/review\\?t=[^&]+$`);

    // Slack: header, the facts as section fields (PEP text escaped for mrkdwn), a button to the review page.
    const s = slack.json as Json;
    expect(s['text']).toBe('Access request: release-bot asks for tickets:write on crm');
    const blocks = s['blocks'] as Json[];
    expect(blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: 'Access request: release-bot asks for tickets:write on crm', emoji: false } });
    const fields = (blocks.find((b) => b['type'] === 'section')!['fields'] as Json[]).map((f) => f['text'] as string);
    expect(fields).toEqual(
      expect.arrayContaining([
        '*Agent*\nrelease-bot',
        `*Task*\n${taskId}`,
        '*Integration*\ncrm',
        '*Scopes*\ntickets:write',
        '*Record*\ncustomer 1234',
        '*Reason*\nincident 42 &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;',
        '*Requested duration*\n10 min',
        `*Policy revision*\n${denial['policy_revision']}`,
      ]),
    );
    const button = (blocks.find((b) => b['type'] === 'actions')!['elements'] as Json[])[0]!;
    expect(button).toMatchObject({ type: 'button', text: { type: 'plain_text', text: 'Review and decide' } });
    expect(button['url']).toMatch(reviewLink);
    expect(JSON.stringify(blocks.find((b) => b['type'] === 'context'))).toContain(request['id']);
    // The button opens the review page (a GET changes nothing).
    const page = await fetch(button['url'] as string);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('release-bot');
    expect((await call(t, 'GET', `/v1/access-requests/${request['id']}`, KEYS.pep)).body['status']).toBe('pending');

    // PagerDuty Events API v2: routing key, trigger, one alert per request, the facts in custom_details, the links.
    const p = pd.json as Json;
    expect(p['routing_key']).toBe(ROUTING_KEY);
    expect(p['event_action']).toBe('trigger');
    expect(p['dedup_key']).toBe(request['id']);
    expect(p['payload']).toMatchObject({ source: new URL(t.url).host, severity: 'warning', component: 'crm', group: 'platform-oncall', class: 'access_request' });
    expect(p['payload']['summary']).toBe(`Access request ${request['id']}: release-bot asks for tickets:write on crm (task ${taskId})`);
    expect(p['payload']['custom_details']).toMatchObject({
      access_request_id: request['id'],
      approver_group: 'platform-oncall',
      agent: 'release-bot',
      task: taskId,
      integration: 'crm',
      scopes: 'tickets:write',
      record: 'customer 1234',
      reason: 'incident 42 <!channel> & <https://evil.example|click>',
      requested_duration: '10 min',
    });
    const links = p['links'] as Json[];
    expect(links[0]!['href']).toMatch(reviewLink);
    expect(links.map((l) => l['href'])).toEqual(
      expect.arrayContaining([`${t.url}/v1/access-requests/${request['id']}/approve`, `${t.url}/v1/access-requests/${request['id']}/deny`]),
    );
    expect(p['client_url']).toMatch(reviewLink);

    // One notification per destination in the chain, named by id (never by URL).
    const notified = (await chain(t, denial['decision_id'])).filter((e) => e['type'] === 'access_request.notified');
    expect(notified.map((e) => e['data']['destination']).sort()).toEqual(['oncall-pagerduty', 'oncall-slack']);
    expect(notified.map((e) => e['data']['delivery_id']).sort()).toEqual([deliveryId(pd), deliveryId(slack)].sort());
  }, 60_000);
});

describe('the PDP log', () => {
  it('never carries a webhook URL, its path token, a signing secret or a routing key', () => {
    const text = logLines.join('');
    // Not vacuous: the deliveries, retries and dead letter above were logged (by destination id).
    expect(text).toContain('webhook delivered');
    expect(text).toContain('webhook delivery failed; retrying');
    expect(text).toContain('dead letter');
    expect(text).toContain('oncall-slack');
    expect(text).toContain('oncall-pagerduty');
    for (const secret of [SECRET, ROUTING_KEY, SLACK_PATH_TOKEN, 'slackpathtoken7x9y2z', '/services/', '/v2/enqueue', ...receivers.map((r) => r.url)]) {
      expect(logLines.filter((line) => line.includes(secret)), secret).toEqual([]);
    }
  });
});
