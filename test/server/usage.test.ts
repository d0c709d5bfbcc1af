/**
 * POST /v1/usage: a resource server reports the requests its middleware let through. Each report for a token the
 * PDP issued, agreeing with it (integration, a granted scope, its bound record, a time within its life ± 60 s, not
 * ahead of the PDP's clock), becomes one token.used event (action resource_server, caller = the resource server,
 * correlated with the token's decision, task and agent), all in one transaction committed before the 202; unknown
 * jtis are counted, contradicting reports refused by index with a code and never recorded. Only resource servers
 * may report; the body is validated field by field.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventV1 } from '../../src/audit/index.js';
import { USAGE_REJECTION_CODES, USAGE_REPORTS_MAX, type UsageReportV1 } from '../../src/wire/usage-v1.js';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let t: TestPdp;
let api: OpenApiChecker;
let seq = 0;

beforeAll(async () => {
  t = await startTestPdp();
  api = await OpenApiChecker.fetch(t.url);
});
afterAll(async () => {
  await t.close();
});

interface Issued {
  jti: string;
  decisionId: string;
  taskId: string;
  issuedAt: number;
  expiresAt: number;
}

/**
 * A real token: a registered task of support-resolver, a decision, a redemption. Bound to customer 1234 (and
 * granting tickets:read and tickets:write) unless `unbound` (tickets:read only, no record).
 */
async function issued(unbound = false): Promise<Issued> {
  const taskId = `usage-${++seq}`;
  await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id: taskId, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } }).expect(201);
  const decided = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send({
    agent_id: 'support-resolver', task: { id: taskId }, integration: 'crm',
    ...(unbound ? { scopes: ['tickets:read'] } : { scopes: ['tickets:read', 'tickets:write'], resource: { type: 'customer', id: '1234' } }),
  }).expect(200);
  expect(decided.body.allow).toBe(true);
  const redeemed = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: decided.body.decision_id }).expect(201);
  const issuedAt = t.clock.now.getTime();
  return { jti: redeemed.body.jti as string, decisionId: decided.body.decision_id as string, taskId, issuedAt: Math.floor(issuedAt / 1000) * 1000, expiresAt: Math.floor(issuedAt / 1000) * 1000 + redeemed.body.expires_in * 1000 };
}

const report = (token: Issued, more: Partial<UsageReportV1> = {}): UsageReportV1 => ({
  jti: token.jti,
  scope: 'tickets:read',
  integration: 'crm',
  record: { type: 'customer', id: '1234' },
  route: '/customers/:id/tickets',
  used_at: new Date(token.issuedAt + 5000).toISOString(),
  ...more,
});

const post = (body: unknown, key: string = KEYS.resource) => request(t.url).post('/v1/usage').set(auth(key)).send(body as object);

async function usesOf(decisionId: string): Promise<AuditEventV1[]> {
  const res = await request(t.url).get(`/v1/audit/decisions/${decisionId}`).set(auth(KEYS.auditor)).expect(200);
  return (res.body.events as AuditEventV1[]).filter((e) => e.type === 'token.used' && (e.data as { action?: string }).action === 'resource_server');
}

describe('POST /v1/usage records what the token agrees with', () => {
  it('writes each report as a token.used event of the resource server, with the token’s decision, task and agent, before the 202', async () => {
    const token = await issued();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await post({
      reports: [
        report(token),
        report(token, { scope: 'tickets:write', route: null, used_at: new Date(token.issuedAt + 7000).toISOString().replace('.000Z', 'Z') }),
      ],
    }).set('traceparent', traceparent);
    expect(res.status).toBe(202);
    api.expectResponse(res);
    expect(res.body).toEqual({ accepted: 2, unknown: 0, rejected: [] });
    const uses = await usesOf(token.decisionId);
    expect(uses).toHaveLength(2);
    expect(uses[0]).toMatchObject({
      type: 'token.used',
      time: t.clock.now.toISOString(),
      jti: token.jti,
      decision_id: token.decisionId,
      task_id: token.taskId,
      agent_id: 'support-resolver',
      caller_id: 'crm-api',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      data: {
        action: 'resource_server', integration: 'crm', scope: 'tickets:read', record: { type: 'customer', id: '1234' },
        route: '/customers/:id/tickets', used_at: new Date(token.issuedAt + 5000).toISOString(),
      },
    });
    // used_at is kept in the trail's one time format, whatever fraction the report had.
    expect(uses[1]?.data).toEqual({
      action: 'resource_server', integration: 'crm', scope: 'tickets:write', record: { type: 'customer', id: '1234' }, route: null,
      used_at: new Date(token.issuedAt + 7000).toISOString(),
    });
  });

  it('takes a report without record or route for an unbound token (absent members are null)', async () => {
    const token = await issued(true);
    const { record: _r, route: _p, ...bare } = report(token);
    const res = await post({ reports: [bare, report(token, { record: { type: 'ticket', id: 'T-9' } })] }).expect(202);
    expect(res.body).toEqual({ accepted: 2, unknown: 0, rejected: [] });
    const uses = await usesOf(token.decisionId);
    expect(uses.map((e) => [(e.data as { record: unknown }).record, (e.data as { route: unknown }).route])).toEqual([
      [null, null],
      [{ type: 'ticket', id: 'T-9' }, '/customers/:id/tickets'],
    ]);
  });

  it('counts a jti the PDP never issued as unknown and records nothing for it', async () => {
    const token = await issued();
    const before = await t.pdp.store.chainHead();
    const res = await post({ reports: [report(token, { jti: 'not-a-token-of-ours' }), report(token, { jti: 'AAAAAAAAAAAAAAAAAAAAAA' })] }).expect(202);
    expect(res.body).toEqual({ accepted: 0, unknown: 2, rejected: [] });
    expect(await t.pdp.store.chainHead()).toEqual(before);
  });

  it('writes a batch of 500 accepted reports in one transaction (short ones: 500 fit in the default 64 KiB body)', async () => {
    const token = await issued(true);
    const reports = Array.from({ length: USAGE_REPORTS_MAX }, (_, i) => {
      const { record: _r, route: _p, ...bare } = report(token, { used_at: new Date(token.issuedAt + i * 10).toISOString() });
      return bare;
    });
    const before = t.pdp.store.stats().transactions;
    const res = await post({ reports }).expect(202);
    expect(res.body).toEqual({ accepted: USAGE_REPORTS_MAX, unknown: 0, rejected: [] });
    expect(t.pdp.store.stats().transactions - before).toBe(1);
    expect(await usesOf(token.decisionId)).toHaveLength(USAGE_REPORTS_MAX);
  });
});

describe('POST /v1/usage refuses, report by report, what the token does not grant', () => {
  it.each<{ note: string; code: (typeof USAGE_REJECTION_CODES)[number]; change: (token: Issued) => Partial<UsageReportV1> }>([
    { note: 'another integration', code: 'integration_mismatch', change: () => ({ integration: 'github' }) },
    { note: 'a scope the token does not grant (a denied one)', code: 'scope_not_granted', change: () => ({ scope: 'tickets:delete' }) },
    { note: 'a scope the agent has but this token lacks', code: 'scope_not_granted', change: () => ({ scope: 'tickets:comment' }) },
    { note: 'another record than the token is bound to', code: 'record_mismatch', change: () => ({ record: { type: 'customer', id: '5678' } }) },
    { note: 'a record of another type', code: 'record_mismatch', change: () => ({ record: { type: 'account', id: '1234' } }) },
    { note: 'no record for a bound token', code: 'record_mismatch', change: () => ({ record: null }) },
    { note: 'a time 61 s before the token was issued', code: 'outside_token_lifetime', change: (k) => ({ used_at: new Date(k.issuedAt - 61_000).toISOString() }) },
    { note: 'a time 61 s ahead of the PDP’s clock', code: 'used_in_future', change: () => ({ used_at: new Date(t.clock.now.getTime() + 61_000).toISOString() }) },
  ])('$note → $code, not recorded', async ({ code, change }) => {
    const token = await issued();
    const before = await t.pdp.store.chainHead();
    const res = await post({ reports: [report(token, change(token))] }).expect(202);
    api.expectResponse(res);
    expect(res.body).toEqual({ accepted: 0, unknown: 0, rejected: [{ index: 0, code }] });
    expect(await t.pdp.store.chainHead()).toEqual(before);
  });

  it('gives the clocks 60 s of slack: before issue, after expiry (the clock moved on) and ahead of the PDP', async () => {
    const token = await issued();
    const res = await post({
      reports: [
        report(token, { used_at: new Date(token.issuedAt - 59_000).toISOString() }),
        report(token, { used_at: new Date(t.clock.now.getTime() + 59_000).toISOString() }),
      ],
    }).expect(202);
    expect(res.body).toEqual({ accepted: 2, unknown: 0, rejected: [] });
    t.clock.advance(3600);
    const late = await post({
      reports: [report(token, { used_at: new Date(token.expiresAt + 59_000).toISOString() }), report(token, { used_at: new Date(token.expiresAt + 61_000).toISOString() })],
    }).expect(202);
    expect(late.body).toEqual({ accepted: 1, unknown: 0, rejected: [{ index: 1, code: 'outside_token_lifetime' }] });
  });

  it('answers a mixed batch by index and records only the reports that agree', async () => {
    const token = await issued();
    const res = await post({
      reports: [
        report(token, { scope: 'tickets:delete' }),
        report(token),
        report(token, { jti: 'unknown-jti' }),
        report(token, { record: { type: 'customer', id: '9' } }),
        report(token, { scope: 'tickets:write' }),
      ],
    }).expect(202);
    expect(res.body).toEqual({ accepted: 2, unknown: 1, rejected: [{ index: 0, code: 'scope_not_granted' }, { index: 3, code: 'record_mismatch' }] });
    expect((await usesOf(token.decisionId)).map((e) => (e.data as { scope: string }).scope)).toEqual(['tickets:read', 'tickets:write']);
  });
});

describe('POST /v1/usage: who may report, and what', () => {
  it.each([
    { note: 'a PEP', key: KEYS.pep },
    { note: 'an orchestrator', key: KEYS.orchestrator },
    { note: 'an auditor', key: KEYS.auditor },
  ])('refuses $note: 403 forbidden_role, nothing recorded', async ({ key }) => {
    const token = await issued();
    const before = await t.pdp.store.chainHead();
    const res = await post({ reports: [report(token)] }, key);
    expect(res.status).toBe(403);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('forbidden_role');
    expect(await usesOf(token.decisionId)).toEqual([]);
    // The refusal itself is audited (access.refused); no token.used.
    expect((await t.pdp.store.chainHead()).seq).toBeGreaterThanOrEqual(before.seq);
  });

  it('refuses a request without a key: 401', async () => {
    const res = await request(t.url).post('/v1/usage').send({ reports: [] });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });

  const valid: UsageReportV1 = { jti: 'j-1', scope: 'tickets:read', integration: 'crm', used_at: '2026-01-01T00:00:00.000Z' };
  it.each<{ note: string; body: unknown; path: string }>([
    { note: 'no reports', body: {}, path: 'reports' },
    { note: 'an empty batch', body: { reports: [] }, path: 'reports' },
    { note: 'a batch of 501', body: { reports: Array.from({ length: USAGE_REPORTS_MAX + 1 }, () => valid) }, path: 'reports' },
    { note: 'an unknown top-level field', body: { reports: [valid], extra: 1 }, path: 'extra' },
    { note: 'an unknown report field (a concrete path)', body: { reports: [{ ...valid, path: '/customers/1234' }] }, path: 'reports[0].path' },
    { note: 'a report without jti', body: { reports: [valid, { ...valid, jti: undefined }] }, path: 'reports[1].jti' },
    { note: 'a jti that is not base64url', body: { reports: [{ ...valid, jti: 'a b' }] }, path: 'reports[0].jti' },
    { note: 'a scope outside the grammar', body: { reports: [{ ...valid, scope: 'tickets read' }] }, path: 'reports[0].scope' },
    { note: 'an integration that is no id', body: { reports: [{ ...valid, integration: '../crm' }] }, path: 'reports[0].integration' },
    { note: 'a route that is no template', body: { reports: [{ ...valid, route: 'customers/1234' }] }, path: 'reports[0].route' },
    { note: 'a route of 257 characters', body: { reports: [{ ...valid, route: '/' + 'a'.repeat(256) }] }, path: 'reports[0].route' },
    { note: 'a route with a line break', body: { reports: [{ ...valid, route: '/a\nb' }] }, path: 'reports[0].route' },
    { note: 'a record id of 257 characters', body: { reports: [{ ...valid, record: { type: 'customer', id: 'x'.repeat(257) } }] }, path: 'reports[0].record' },
    { note: 'a record without a type', body: { reports: [{ ...valid, record: { id: '1' } }] }, path: 'reports[0].record' },
    { note: 'a time without a zone', body: { reports: [{ ...valid, used_at: '2026-01-01T00:00:00' }] }, path: 'reports[0].used_at' },
    { note: 'a time with an offset', body: { reports: [{ ...valid, used_at: '2026-01-01T00:00:00+02:00' }] }, path: 'reports[0].used_at' },
    { note: 'a day that does not exist', body: { reports: [valid, { ...valid, used_at: '2026-02-30T00:00:00Z' }] }, path: 'reports[1].used_at' },
    { note: 'hour 24', body: { reports: [{ ...valid, used_at: '2026-01-01T24:00:00Z' }] }, path: 'reports[0].used_at' },
    { note: 'a lone surrogate in a record id', body: { reports: [{ ...valid, record: { type: 'customer', id: '\ud800' } }] }, path: 'reports[0].record.id' },
  ])('refuses $note: 400 invalid_request naming $path', async ({ body, path }) => {
    const before = await t.pdp.store.chainHead();
    const res = await post(body);
    expect(res.status).toBe(400);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('invalid_request');
    expect((res.body.error.details as Array<{ path: string }>).map((d) => d.path)).toContain(path);
    expect(await t.pdp.store.chainHead()).toEqual(before);
  });

  it('refuses a batch larger than server.body_limit_bytes (64 KiB by default): 400 body_too_large, nothing recorded', async () => {
    const token = await issued(true);
    const before = await t.pdp.store.chainHead();
    const res = await post({ reports: Array.from({ length: 300 }, () => report(token, { record: null, route: '/' + 'r'.repeat(255) })) });
    expect(res.status).toBe(400);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('body_too_large');
    expect(await t.pdp.store.chainHead()).toEqual(before);
  });
});
