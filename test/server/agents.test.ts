/**
 * The agents views of the web console: GET /v1/agents reads every agent's effective ceiling from the compiled
 * policy (roles applied, deny_scope removing, the token TTL capped by roles, requestable scopes), and GET
 * /v1/agents/{agent_id}/activity counts its decisions per UTC day and its scopes granted vs used from the usage
 * aggregates, after real decisions, redemptions and usage reports. Auditors and admins only; `days` is checked.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

let t: TestPdp;
let api: OpenApiChecker;
let policies: string;
let seq = 0;

/** An agent in the support-agent role that states no max_scope of its own and denies one of the role's scopes. */
const ROLE_ONLY = `agent_policy:
  id: role-only-agent
  roles: [support-agent]
  integrations:
    crm:
      deny_scope: [tickets:write]
`;

beforeAll(async () => {
  policies = mkdtempSync(join(tmpdir(), 'agent-pdp-agents-'));
  cpSync('test/fixtures/policies', policies, { recursive: true });
  cpSync('test/escalation/policies/agents/release-bot.yaml', join(policies, 'agents/release-bot.yaml'));
  writeFileSync(join(policies, 'agents/role-only-agent.yaml'), ROLE_ONLY);
  t = await startTestPdp({ policies });
  api = await OpenApiChecker.fetch(t.url);
});
afterAll(async () => {
  await t.close();
  rmSync(policies, { recursive: true, force: true });
});

const agents = (key: string = KEYS.auditor) => request(t.url).get('/v1/agents').set(auth(key));
const activity = (agent: string, query = '', key: string = KEYS.auditor) => request(t.url).get(`/v1/agents/${agent}/activity${query}`).set(auth(key));
const dayOf = (at: Date): string => at.toISOString().slice(0, 10);

describe('GET /v1/agents', () => {
  it('lists every agent of the policy with its effective ceilings after roles, and the revision they are read from', async () => {
    const res = await agents().expect(200);
    api.expectResponse(res);
    expect(res.body.policy_revision).toBe(t.pdp.engine.active?.revision);
    const byId = new Map((res.body.agents as Array<{ agent_id: string }>).map((a) => [a.agent_id, a]));
    expect([...byId.keys()]).toEqual(['code-review-agent', 'feedback-workflow', 'mailbox-summarizer', 'release-bot', 'role-only-agent', 'support-resolver']);
    // Narrower than its role (no tickets:comment); the role's denies with its own; its own TTL below the role's.
    expect(byId.get('support-resolver')).toEqual({
      agent_id: 'support-resolver',
      roles: ['support-agent'],
      task_restricted: true,
      task_types: ['complaint_resolution', 'triage'],
      integrations: [{ integration: 'crm', max_scope: ['tickets:read', 'tickets:write'], deny_scope: ['admin', 'tickets:delete'], token_ttl_seconds: 900, requestable: [] }],
    });
    // The role's ceiling inherited whole, less the agent's own deny; the role's TTL caps the default 3600.
    expect(byId.get('role-only-agent')).toEqual({
      agent_id: 'role-only-agent',
      roles: ['support-agent'],
      task_restricted: false,
      task_types: ['complaint_resolution', 'triage'],
      integrations: [{ integration: 'crm', max_scope: ['tickets:comment', 'tickets:read'], deny_scope: ['admin', 'tickets:delete', 'tickets:write'], token_ttl_seconds: 1800, requestable: [] }],
    });
    // No roles; a scope above the ceiling an approver may grant.
    expect(byId.get('release-bot')).toEqual({
      agent_id: 'release-bot',
      roles: [],
      task_restricted: false,
      task_types: [],
      integrations: [{ integration: 'crm', max_scope: ['tickets:read'], deny_scope: ['admin', 'tickets:delete'], token_ttl_seconds: 1800, requestable: ['tickets:write'] }],
    });
  });

  it('pages by id with limit and after, the pages together being the whole list', async () => {
    const all = (await agents().expect(200)).body as { agents: Array<{ agent_id: string }>; next_after: string | null };
    expect(all.next_after).toBeNull();
    const paged: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const query: Record<string, string | number> = after === null ? { limit: 4 } : { limit: 4, after };
      const res = await request(t.url).get('/v1/agents').query(query).set(auth(KEYS.auditor)).expect(200);
      api.expectResponse(res);
      expect(res.body.agents.length).toBeLessThanOrEqual(4);
      paged.push(...(res.body.agents as Array<{ agent_id: string }>).map((a) => a.agent_id));
      after = res.body.next_after as string | null;
      if (after === null) break;
      expect(after).toBe(paged.at(-1));
    }
    expect(paged).toEqual(all.agents.map((a) => a.agent_id));
    // An id between two agents (none has it) starts the page at the next one.
    const between = await request(t.url).get('/v1/agents').query({ after: 'r', limit: 1 }).set(auth(KEYS.auditor)).expect(200);
    expect(between.body.agents.map((a: { agent_id: string }) => a.agent_id)).toEqual(['release-bot']);
    expect(between.body.next_after).toBe('release-bot');
  });

  it.each([
    { note: 'limit 0', query: { limit: '0' }, path: 'limit' },
    { note: 'limit above 1000', query: { limit: '1001' }, path: 'limit' },
    { note: 'limit not a number', query: { limit: 'all' }, path: 'limit' },
    { note: 'after not an id', query: { after: ' x' }, path: 'after' },
  ])('$note → 400 invalid_request naming $path', async ({ query, path }) => {
    const res = await request(t.url).get('/v1/agents').query(query).set(auth(KEYS.auditor)).expect(400);
    api.expectResponse(res);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path })]);
  });

  it.each([
    { note: 'an admin', key: KEYS.admin, status: 200, code: undefined },
    { note: 'a pep', key: KEYS.pep, status: 403, code: 'forbidden_role' },
    { note: 'an orchestrator', key: KEYS.orchestrator, status: 403, code: 'forbidden_role' },
    { note: 'an approver', key: KEYS.approver, status: 403, code: 'forbidden_role' },
    { note: 'no key', key: 'not-a-key', status: 401, code: 'unauthenticated' },
  ])('$note → $status', async ({ key, status, code }) => {
    const res = await agents(key);
    expect(res.status).toBe(status);
    api.expectResponse(res);
    if (code !== undefined) expect(res.body.error.code).toBe(code);
  });
});

/** A registered complaint task of support-resolver for customer 1234. */
async function task(): Promise<string> {
  const id = `agents-${++seq}`;
  await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } }).expect(201);
  return id;
}

const decide = (taskId: string, scopes: string[]) =>
  request(t.url)
    .post('/v1/decide')
    .set(auth(KEYS.pep))
    .send({ agent_id: 'support-resolver', task: { id: taskId }, integration: 'crm', scopes, resource: { type: 'customer', id: '1234' } })
    .expect(200);

describe('GET /v1/agents/{agent_id}/activity', () => {
  it('counts decisions and denials per UTC day, and tokens granted vs uses reported per scope', async () => {
    const first = t.clock.now;
    const taskId = await task();
    // Day 1: an allow of two scopes, redeemed, one of them used (a resource server's report); a denial of one.
    const allowed = await decide(taskId, ['tickets:read', 'tickets:write']);
    expect(allowed.body.allow).toBe(true);
    const token = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: allowed.body.decision_id }).expect(201);
    const reported = await request(t.url)
      .post('/v1/usage')
      .set(auth(KEYS.resource))
      .send({ reports: [{ jti: token.body.jti, integration: 'crm', scope: 'tickets:read', record: { type: 'customer', id: '1234' }, used_at: t.clock.now.toISOString() }] })
      .expect(202);
    expect(reported.body.accepted).toBe(1);
    expect((await decide(taskId, ['tickets:delete'])).body.allow).toBe(false);
    // An introspection says a token was presented, not which scope: never a use.
    await request(t.url).post('/v1/introspect').set(auth(KEYS.resource)).type('form').send({ token: token.body.access_token }).expect(200);

    // Day 2: one more allow of one scope.
    t.clock.advance(86_400);
    expect((await decide(await task(), ['tickets:read'])).body.allow).toBe(true);

    const res = await activity('support-resolver', '?days=3').expect(200);
    api.expectResponse(res);
    const today = t.clock.now;
    expect(res.body).toMatchObject({ agent_id: 'support-resolver', in_policy: true, until: today.toISOString() });
    expect(res.body.since).toBe(`${dayOf(new Date(today.getTime() - 2 * 86_400_000))}T00:00:00.000Z`);
    expect(res.body.days).toEqual([
      { day: dayOf(new Date(today.getTime() - 2 * 86_400_000)), decisions: 0, denials: 0 },
      { day: dayOf(first), decisions: 3, denials: 1 },
      { day: dayOf(today), decisions: 1, denials: 0 },
    ]);
    expect(res.body.scopes).toEqual([
      { integration: 'crm', scope: 'tickets:delete', granted: 0, used: 0, requested: 1, denied: 1 },
      { integration: 'crm', scope: 'tickets:read', granted: 1, used: 1, requested: 2, denied: 0 },
      { integration: 'crm', scope: 'tickets:write', granted: 1, used: 0, requested: 1, denied: 0 },
    ]);

    // A one-day window is today alone.
    const todayOnly = await activity('support-resolver', '?days=1', KEYS.admin).expect(200);
    expect(todayOnly.body.days).toEqual([{ day: dayOf(today), decisions: 1, denials: 0 }]);
    expect(todayOnly.body.scopes).toEqual([{ integration: 'crm', scope: 'tickets:read', granted: 0, used: 0, requested: 1, denied: 0 }]);
  });

  it('answers for an agent the policy does not name from its history, and zeros for an id nothing knows', async () => {
    // A PEP that may speak for any agent asks for one the policy does not have: a denial, still the agent's history.
    const denied = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.pepApprover))
      .send({ agent_id: 'retired-agent', task: { id: 'agents-retired' }, integration: 'crm', scopes: ['tickets:read'] })
      .expect(200);
    expect(denied.body.allow).toBe(false);
    const retired = await activity('retired-agent').expect(200);
    api.expectResponse(retired);
    expect(retired.body.in_policy).toBe(false);
    expect(retired.body.days).toHaveLength(14);
    // Refused as a whole (unknown agent), the decision names no refused scope: asked for, but not a scope denial.
    expect(denied.body.denied_scopes).toEqual([]);
    expect(retired.body.days.at(-1)).toEqual({ day: dayOf(t.clock.now), decisions: 1, denials: 0 });
    expect(retired.body.scopes).toEqual([{ integration: 'crm', scope: 'tickets:read', granted: 0, used: 0, requested: 1, denied: 0 }]);

    const nobody = await activity('nobody-at-all', '?days=90').expect(200);
    api.expectResponse(nobody);
    expect(nobody.body.in_policy).toBe(false);
    expect(nobody.body.days).toHaveLength(90);
    expect(nobody.body.days.every((d: { decisions: number; denials: number }) => d.decisions === 0 && d.denials === 0)).toBe(true);
    expect(nobody.body.scopes).toEqual([]);
  });

  it.each([
    { note: 'zero', query: '?days=0' },
    { note: 'above 90', query: '?days=91' },
    { note: 'not a number', query: '?days=two' },
    { note: 'a fraction', query: '?days=1.5' },
    { note: 'negative', query: '?days=-3' },
    { note: 'empty', query: '?days=' },
    { note: 'repeated', query: '?days=3&days=4' },
  ])('days $note → 400 invalid_request naming days', async ({ query }) => {
    const res = await activity('support-resolver', query).expect(400);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'days' })]);
  });

  it('an agent id that is no id → 400 naming agent_id', async () => {
    const res = await activity('%20spaced%20out').expect(400);
    api.expectResponse(res);
    expect(res.body.error.details).toEqual([expect.objectContaining({ path: 'agent_id' })]);
  });

  it.each([
    { note: 'a pep', key: KEYS.pep },
    { note: 'a resource server', key: KEYS.resource },
    { note: 'an orchestrator', key: KEYS.orchestrator },
  ])('$note → 403 forbidden_role', async ({ key }) => {
    const res = await activity('support-resolver', '', key).expect(403);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('forbidden_role');
  });
});
