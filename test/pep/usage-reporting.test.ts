/**
 * createResourceServerAuth({ reportUsage }): each request the middleware lets through queues one usage report (the
 * token's jti, the route's scope, integration and record, the express route template, the time), sent to the real
 * PDP in batches (`POST /v1/usage`) in the background, where it lands as a token.used event correlated with the
 * token's decision, task and agent. The request is never held for the report: with the PDP hanging, the answer
 * arrives while the report is still in flight; with the PDP gone, the report is counted failed. The queue is
 * bounded and counts what it drops; every report offered is in exactly one of queued, sent, dropped, failed.
 */
import express, { type Express } from 'express';
import { createLocalJWKSet } from 'jose';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import {
  createResourceServerAuth,
  PdpClient,
  UsageReporter,
  type ResourceServerAuth,
  type ResourceServerAuthOptions,
  type UsageReportV1,
  type UsageStats,
} from '../../src/pep/index.js';
import { REPORT_GRAMMAR } from '../../src/pep/usage-reporter.js';
import { ID_PATTERN, SCOPE_PATTERN } from '../../src/wire/decision-v1.js';
import { USAGE_ROUTE_PATTERN, USAGE_TIME_PATTERN, usageBatchSchema } from '../../src/wire/usage-v1.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { closedPort } from './fake-pdp.js';

const CRM_AUDIENCE = 'https://crm.example.com/api';

let pdp: TestPdp;
let pep: PdpClient;
let orchestrator: PdpClient;
let issuer: string;
let seq = 0;
/** Every auth made in a test, closed after it (their timers are unref'd, but a test leaves nothing behind). */
const made: ResourceServerAuth[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  pdp = await startTestPdp();
  pep = new PdpClient({ url: pdp.url, apiKey: KEYS.pep });
  orchestrator = new PdpClient({ url: pdp.url, apiKey: KEYS.orchestrator });
  ({ issuer } = await pep.metadata());
});
afterEach(async () => {
  await Promise.all(made.splice(0).map((a) => a.close()));
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((ok) => s.close(() => ok()));
  }
});
afterAll(async () => {
  await pdp.close();
});

interface Issued {
  token: string;
  jti: string;
  decisionId: string;
  taskId: string;
}

/** A real token of support-resolver: tickets:read and tickets:write bound to customer 1234, or tickets:read unbound. */
async function issued(unbound = false): Promise<Issued> {
  pdp.clock.now = new Date(); // the PDP's clock at real time: the middleware checks iat and exp against it
  const taskId = `usage-rs-${++seq}`;
  await orchestrator.registerTask({ id: taskId, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' }, expires_in_seconds: 900 });
  const decision = await pep.decide({
    agent_id: 'support-resolver', task: { id: taskId }, integration: 'crm',
    ...(unbound ? { scopes: ['tickets:read'] } : { scopes: ['tickets:read', 'tickets:write'], resource: { type: 'customer', id: '1234' } }),
  });
  expect(decision.allow).toBe(true);
  const redeemed = await pep.redeem(decision.decision_id);
  return { token: redeemed.access_token, jti: redeemed.jti, decisionId: decision.decision_id, taskId };
}

/** A client of the PDP with the resource server's key, whose fetch records each usage batch it sends (and the status). */
function resourceClient(options: { url?: string; timeoutMs?: number; maxAttempts?: number; key?: string } = {}): { client: PdpClient; batches: Array<{ size: number; status: number | 'error' }> } {
  const batches: Array<{ size: number; status: number | 'error' }> = [];
  const counting: typeof fetch = async (input, init) => {
    const usage = String(input).endsWith('/v1/usage');
    const size = usage ? (JSON.parse(String(init?.body)) as { reports: unknown[] }).reports.length : 0;
    try {
      const res = await fetch(input, init);
      if (usage) batches.push({ size, status: res.status });
      return res;
    } catch (err) {
      if (usage) batches.push({ size, status: 'error' });
      throw err;
    }
  };
  const client = new PdpClient({
    url: options.url ?? pdp.url, apiKey: options.key ?? KEYS.resource, fetch: counting, retryDelayMs: 1,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
  });
  return { client, batches };
}

/** A CRM-like API on 127.0.0.1: tickets of the customer in the path (read, write) and notes of any id (read). */
async function crm(options: Partial<ResourceServerAuthOptions>): Promise<{ auth: ResourceServerAuth; url: string }> {
  const requireToken = createResourceServerAuth({ issuer, audience: CRM_AUDIENCE, jwks: createLocalJWKSet(pdp.pdp.keys.jwks), ...options });
  made.push(requireToken);
  const app: Express = express();
  const customer = { record: (req: { params: Record<string, string | string[] | undefined> }) => ({ type: 'customer', id: String(req.params['id']) }) };
  app.get('/customers/:id/tickets', requireToken({ integration: 'crm', scope: 'tickets:read', ...customer }), (_req, res) => void res.json({ tickets: [] }));
  app.post('/customers/:id/tickets', requireToken({ integration: 'crm', scope: 'tickets:write', ...customer }), (_req, res) => void res.status(201).json({ ok: true }));
  app.get('/notes/:id', requireToken({ integration: 'crm', scope: 'tickets:read', record: (req) => ({ type: 'note', id: String(req.params['id']) }) }), (_req, res) => void res.json({ ok: true }));
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise<void>((ok) => server.once('listening', ok));
  return { auth: requireToken, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const call = (url: string, token: string, method = 'GET', path = '/customers/1234/tickets'): Promise<Response> =>
  fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });

async function usesOf(decisionId: string): Promise<AuditEventV1[]> {
  const res = await fetch(`${pdp.url}/v1/audit/decisions/${decisionId}`, { headers: auth(KEYS.auditor) });
  const body = (await res.json()) as { events: AuditEventV1[] };
  return body.events.filter((e) => e.type === 'token.used' && (e.data as { action?: string }).action === 'resource_server');
}

const total = (s: UsageStats): number => s.queued + s.sent + s.dropped + s.failed;

describe('reportUsage: what is reported, and where it lands', () => {
  it('reports each request let through (not the refused ones) as a token.used event of the resource server', async () => {
    const { client } = resourceClient();
    const { auth: rs, url } = await crm({ pdp: client, reportUsage: { flushMs: 20 } });
    const token = await issued();
    const before = new Date().toISOString();
    expect((await call(url, token.token)).status).toBe(200);
    expect((await call(url, token.token, 'POST')).status).toBe(201);
    expect((await call(url, token.token, 'GET', '/customers/5678/tickets')).status).toBe(403);
    const after = new Date().toISOString();
    await rs.usage?.flush();
    expect(rs.usage?.stats()).toEqual({ queued: 0, sent: 2, dropped: 0, failed: 0 });
    const uses = await usesOf(token.decisionId);
    expect(uses.map((e) => ({ ...e.data as object, used_at: undefined }))).toEqual([
      { action: 'resource_server', integration: 'crm', scope: 'tickets:read', record: { type: 'customer', id: '1234' }, route: '/customers/:id/tickets', used_at: undefined },
      { action: 'resource_server', integration: 'crm', scope: 'tickets:write', record: { type: 'customer', id: '1234' }, route: '/customers/:id/tickets', used_at: undefined },
    ]);
    for (const use of uses) {
      expect(use).toMatchObject({ jti: token.jti, decision_id: token.decisionId, task_id: token.taskId, agent_id: 'support-resolver', caller_id: 'crm-api' });
      const usedAt = (use.data as { used_at: string }).used_at;
      expect(usedAt >= before && usedAt <= after).toBe(true);
    }
  });

  it('sends on its own: at batchSize at once, the rest on the timer, flush() the remainder', async () => {
    const { client, batches } = resourceClient();
    const { auth: rs, url } = await crm({ pdp: client, reportUsage: { batchSize: 3, flushMs: 60_000 } });
    const token = await issued();
    for (let i = 0; i < 7; i++) expect((await call(url, token.token)).status).toBe(200);
    await vi.waitFor(() => expect(rs.usage?.stats().sent).toBe(6));
    expect(batches).toEqual([{ size: 3, status: 202 }, { size: 3, status: 202 }]);
    expect(rs.usage?.stats()).toEqual({ queued: 1, sent: 6, dropped: 0, failed: 0 });
    await rs.usage?.flush();
    expect(batches.map((b) => b.size)).toEqual([3, 3, 1]);
    expect(await usesOf(token.decisionId)).toHaveLength(7);

    // The timer alone sends what waits.
    const timed = resourceClient();
    const { auth: quick, url: quickUrl } = await crm({ pdp: timed.client, reportUsage: { batchSize: 100, flushMs: 20 } });
    expect((await call(quickUrl, token.token)).status).toBe(200);
    await vi.waitFor(() => expect(quick.usage?.stats().sent).toBe(1));
    expect(timed.batches).toEqual([{ size: 1, status: 202 }]);
  });

  it('names no route when express has none to give (a router-level middleware)', async () => {
    const { client } = resourceClient();
    const requireToken = createResourceServerAuth({ issuer, audience: CRM_AUDIENCE, jwks: createLocalJWKSet(pdp.pdp.keys.jwks), pdp: client, reportUsage: true });
    made.push(requireToken);
    const app = express();
    app.use('/api', requireToken({ integration: 'crm', scope: 'tickets:read' }));
    app.get('/api/anything', (_req, res) => void res.json({ ok: true }));
    const server = app.listen(0, '127.0.0.1');
    servers.push(server);
    await new Promise<void>((ok) => server.once('listening', ok));
    const token = await issued(true);
    expect((await call(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, token.token, 'GET', '/api/anything')).status).toBe(200);
    await requireToken.usage?.flush();
    expect((await usesOf(token.decisionId)).map((e) => e.data)).toEqual([
      expect.objectContaining({ scope: 'tickets:read', record: null, route: null }),
    ]);
  });
});

describe('reportUsage never holds or fails the request', () => {
  it('answers while the report is still in flight to a PDP that does not answer; the report is then counted failed', async () => {
    const hanging = createServer(() => {
      /* never answers */
    });
    servers.push(hanging);
    hanging.listen(0, '127.0.0.1');
    await new Promise<void>((ok) => hanging.once('listening', ok));
    const { client, batches } = resourceClient({ url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`, timeoutMs: 300, maxAttempts: 1 });
    const { auth: rs, url } = await crm({ pdp: client, reportUsage: { batchSize: 1 } });
    const token = await issued();
    const res = await call(url, token.token);
    expect(res.status).toBe(200);
    // The answer is here; its report is not settled: it was not waited for.
    expect(rs.usage?.stats()).toEqual({ queued: 1, sent: 0, dropped: 0, failed: 0 });
    await rs.usage?.flush();
    expect(rs.usage?.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 1 });
    expect(batches).toEqual([{ size: 1, status: 'error' }]);
  });

  it('answers every request with the PDP gone, and counts the reports failed', async () => {
    const { client } = resourceClient({ url: `http://127.0.0.1:${await closedPort()}` });
    const { auth: rs, url } = await crm({ pdp: client, reportUsage: { batchSize: 2, flushMs: 10 } });
    const token = await issued();
    for (let i = 0; i < 5; i++) expect((await call(url, token.token)).status).toBe(200);
    await rs.usage?.flush();
    expect(rs.usage?.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 5 });
    expect(await usesOf(token.decisionId)).toEqual([]);
  });

  it('counts as failed the batches a PDP refuses (a key without the resource_server role: 403)', async () => {
    const { client, batches } = resourceClient({ key: KEYS.pep });
    const { auth: rs, url } = await crm({ pdp: client, reportUsage: true });
    const token = await issued();
    expect((await call(url, token.token)).status).toBe(200);
    await rs.close();
    expect(rs.usage?.stats()).toEqual({ queued: 0, sent: 0, dropped: 0, failed: 1 });
    expect(batches).toEqual([{ size: 1, status: 403 }]);
  });

  it('bounds its queue: past maxQueue a report is dropped and counted, the request answered; close() sends the rest and drops what follows', async () => {
    const { client, batches } = resourceClient();
    const { auth: rs, url } = await crm({ pdp: client, reportUsage: { maxQueue: 2, batchSize: 100, flushMs: 60_000 } });
    const token = await issued();
    for (let i = 0; i < 5; i++) expect((await call(url, token.token)).status).toBe(200);
    expect(rs.usage?.stats()).toEqual({ queued: 2, sent: 0, dropped: 3, failed: 0 });
    await rs.close();
    expect(rs.usage?.stats()).toEqual({ queued: 0, sent: 2, dropped: 3, failed: 0 });
    expect((await call(url, token.token)).status).toBe(200);
    expect(rs.usage?.stats()).toEqual({ queued: 0, sent: 2, dropped: 4, failed: 0 });
    expect(batches).toEqual([{ size: 2, status: 202 }]);
    expect(await usesOf(token.decisionId)).toHaveLength(2);
  });
});

describe('UsageReporter', () => {
  const report = (token: Issued, more: Partial<UsageReportV1> = {}): UsageReportV1 => ({
    jti: token.jti, scope: 'tickets:read', integration: 'crm', record: null, route: '/notes/:id', used_at: new Date().toISOString(), ...more,
  });

  it('halves a batch the PDP refuses as larger than its body limit, and every report arrives once', async () => {
    const token = await issued(true);
    const { client, batches } = resourceClient();
    const reporter = new UsageReporter(client, { batchSize: 500, flushMs: 60_000 });
    for (let i = 0; i < 300; i++) reporter.report(report(token, { record: { type: 'note', id: `${i}-`.padEnd(200, 'n') } }));
    await reporter.close();
    expect(reporter.stats()).toEqual({ queued: 0, sent: 300, dropped: 0, failed: 0 });
    expect(batches).toEqual([{ size: 300, status: 400 }, { size: 150, status: 202 }, { size: 150, status: 202 }]);
    const ids = (await usesOf(token.decisionId)).map((e) => (e.data as { record: { id: string } }).record.id);
    expect(new Set(ids).size).toBe(300);
  });

  it('drops (and counts) a report the PDP’s schema would refuse, so it cannot fail its batch; cuts a long record id', async () => {
    const token = await issued(true);
    const { client } = resourceClient();
    const reporter = new UsageReporter(client, { flushMs: 60_000 });
    const bad: Array<Partial<UsageReportV1>> = [
      { scope: 'tickets read' }, { integration: '../crm' }, { jti: 'a b' }, { used_at: 'yesterday' }, { used_at: '2026-01-01T00:00:00+02:00' },
      { record: { type: 'a note', id: '1' } }, { record: { type: 'note', id: '' } },
    ];
    for (const b of bad) reporter.report(report(token, b));
    // A route that is no template is left out rather than sent; a lone surrogate in a record id becomes U+FFFD.
    reporter.report(report(token, { route: 'notes/1', record: { type: 'note', id: 'x'.repeat(300) } }));
    reporter.report(report(token, { route: '/notes/:id\n', record: { type: 'note', id: 'a\ud800' } }));
    expect(reporter.stats()).toEqual({ queued: 2, sent: 0, dropped: bad.length, failed: 0 });
    await reporter.close();
    expect(reporter.stats()).toEqual({ queued: 0, sent: 2, dropped: bad.length, failed: 0 });
    expect((await usesOf(token.decisionId)).map((e) => e.data)).toEqual([
      expect.objectContaining({ route: null, record: { type: 'note', id: 'x'.repeat(255) + '…' } }),
      expect.objectContaining({ route: null, record: { type: 'note', id: 'a\ufffd' } }),
    ]);
  });

  it('keeps the PDP’s grammar: its copies of the patterns are the wire’s', () => {
    const item = usageBatchSchema.properties.reports.items.properties;
    expect(REPORT_GRAMMAR).toEqual({ jti: item.jti.pattern, scope: SCOPE_PATTERN, id: ID_PATTERN, route: USAGE_ROUTE_PATTERN, time: USAGE_TIME_PATTERN });
    expect(item.scope.pattern).toBe(SCOPE_PATTERN);
    expect(item.integration.pattern).toBe(ID_PATTERN);
  });

  it('every report offered is in exactly one count', async () => {
    const { client } = resourceClient({ url: `http://127.0.0.1:${await closedPort()}` });
    const reporter = new UsageReporter(client, { maxQueue: 3, batchSize: 2, flushMs: 5 });
    const token = await issued(true);
    for (let i = 0; i < 10; i++) {
      reporter.report(report(token));
      expect(total(reporter.stats())).toBe(i + 1);
    }
    await reporter.close();
    expect(total(reporter.stats())).toBe(10);
    expect(reporter.stats().queued).toBe(0);
  });

  it.each([
    { note: 'reportUsage without pdp', make: () => createResourceServerAuth({ issuer: 'i', audience: 'a', jwksUri: 'http://127.0.0.1/jwks', reportUsage: true }) },
    { note: 'reportUsage that is no object', make: () => createResourceServerAuth({ issuer: 'i', audience: 'a', pdp: pep, reportUsage: 'yes' as unknown as boolean }) },
    { note: 'a batchSize above the PDP’s 500', make: () => new UsageReporter(pep, { batchSize: 501 }) },
    { note: 'a batchSize of 0', make: () => new UsageReporter(pep, { batchSize: 0 }) },
    { note: 'a fractional flushMs', make: () => new UsageReporter(pep, { flushMs: 1.5 }) },
    { note: 'a maxQueue of 0', make: () => new UsageReporter(pep, { maxQueue: 0 }) },
    { note: 'no client', make: () => new UsageReporter(undefined as unknown as PdpClient) },
  ])('refuses $note with a TypeError', ({ make }) => {
    expect(make).toThrow(TypeError);
  });

  it('is off by default: no reporter, close() is harmless', async () => {
    const rs = createResourceServerAuth({ issuer: 'i', audience: 'a', pdp: pep });
    expect(rs.usage).toBeUndefined();
    await expect(rs.close()).resolves.toBeUndefined();
  });

  it('PdpClient.reportUsage refuses an empty or oversized batch before sending', async () => {
    const { client, batches } = resourceClient();
    await expect(client.reportUsage([])).rejects.toThrow(TypeError);
    await expect(client.reportUsage(Array.from({ length: 501 }, () => ({ jti: 'j', scope: 's', integration: 'crm', used_at: new Date().toISOString() })))).rejects.toThrow(TypeError);
    expect(batches).toEqual([]);
  });
});
