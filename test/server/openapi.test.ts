import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApprovalLinks, loadLinkKey } from '../../src/notify/index.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import { DEFAULT_THRESHOLDS, loadPolicyFolder, runSuggestions } from '../../src/suggest/index.js';
import { decisionRequestSchema, taskRegistrationSchema } from '../../src/wire/decision-v1.js';
import { HTTP_METHODS, OpenApiChecker } from '../support/openapi-check.js';
import { packBundle } from '../support/pack-bundle.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * GET /openapi.json describes the whole HTTP API: every route the app serves is documented, every documented
 * operation is served, and real responses (successes and errors) validate against the document's schemas.
 */

let t: TestPdp;
let api: OpenApiChecker;
let seq = 0;
let policies: string;

beforeAll(async () => {
  // The test fixtures, plus an agent whose write scope is requestable (the access-request routes need one).
  policies = mkdtempSync(join(tmpdir(), 'agent-pdp-openapi-'));
  cpSync('test/fixtures/policies', policies, { recursive: true });
  cpSync('test/escalation/policies/agents/release-bot.yaml', join(policies, 'agents/release-bot.yaml'));
  t = await startTestPdp({ policies });
  api = await OpenApiChecker.fetch(t.url);
});
afterAll(async () => {
  await t.close();
  rmSync(policies, { recursive: true, force: true });
});

/** The routes the pipeline serves, as `METHOD /path/{param}`, from the same route table the router is built from. */
const servedRoutes = (t: TestPdp): string[] => t.pdp.routes.map((r) => `${r.method} ${r.path}`).sort();

const pepDecide = (body: object = { agent_id: 'code-review-agent', task: { id: 'oa' }, integration: 'github', scopes: ['repo:read'] }) =>
  request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(body);

async function newTask(): Promise<string> {
  const id = `openapi-${++seq}`;
  await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'support-resolver', type: 'triage' }).expect(201);
  return id;
}

async function allowedDecision(): Promise<string> {
  const res = await pepDecide().expect(200);
  expect(res.body.allow).toBe(true);
  return res.body.decision_id as string;
}

async function issuedToken(): Promise<string> {
  const res = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: await allowedDecision() }).expect(201);
  return res.body.access_token as string;
}

/** A pending access request for a requestable denial of release-bot (made by the PEP `pep-1`). */
async function pendingRequest(): Promise<string> {
  const id = `openapi-${++seq}`;
  await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'release-bot', type: 'incident' }).expect(201);
  const denial = await pepDecide({ agent_id: 'release-bot', task: { id }, integration: 'crm', scopes: ['tickets:write'] }).expect(200);
  expect(denial.body.access_request).toBeDefined();
  const submitted = await request(t.url).post('/v1/access-requests').set(auth(KEYS.pep)).send({ decision_id: denial.body.decision_id, reason: 'openapi' }).expect(202);
  return submitted.body.id as string;
}

/** The review link's token, as a notification would carry it (signed with the server's link key). */
const linkFor = (requestId: string): string =>
  new ApprovalLinks(loadLinkKey(t.pdp.config.escalation.link_key_file), 900).issue(requestId, 'platform-oncall', t.clock.now);

/**
 * Open suggestions made from real usage (slack tokens of code-review-agent with both scopes, only chat:write used),
 * saved as `agent-pdp suggest` saves them, on low thresholds (recorded in their evidence, so apply rechecks on them).
 */
async function suggestionsFromUsage(): Promise<SuggestionRecord[]> {
  for (let i = 0; i < 3; i++) {
    const id = `openapi-${++seq}`;
    await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'code-review-agent', type: 'review' }).expect(201);
    const decision = await pepDecide({ agent_id: 'code-review-agent', task: { id }, integration: 'slack', scopes: ['channels:read', 'chat:write'] }).expect(200);
    const token = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: decision.body.decision_id }).expect(201);
    await request(t.url).post('/v1/usage').set(auth(KEYS.resource)).send({ reports: [{ jti: token.body.jti, integration: 'slack', scope: 'chat:write', used_at: t.clock.now.toISOString() }] }).expect(202);
  }
  const until = t.clock.now.toISOString();
  const since = new Date(t.clock.now.getTime() - 30 * 86_400_000).toISOString();
  const folder = await loadPolicyFolder(join(t.dir, 'policies'));
  const run = await runSuggestions({ store: t.pdp.store, folder, thresholds: { ...DEFAULT_THRESHOLDS, min_days: 1, min_tokens: 2 }, since, until, agent: 'code-review-agent' });
  return run.suggestions.filter((s) => s.status === 'open');
}

/** One successful call of every operation, keyed as the document names them. */
/** A console session's cookie (`name=value`), signed in as the auditor. */
async function consoleCookie(): Promise<string> {
  const res = await request(t.url).post('/console/session').set(auth(KEYS.auditor));
  return (res.headers['set-cookie'] as unknown as string[])[0]?.split(';')[0] ?? '';
}

const OPERATIONS: Record<string, { status: number; call: () => Promise<request.Response> }> = {
  'POST /v1/decide': { status: 200, call: async () => pepDecide() },
  'POST /v1/data/{path}': {
    status: 200,
    call: async () => request(t.url).post('/v1/data/agentpdp/decision').set(auth(KEYS.pep)).send({ input: { agent_id: 'code-review-agent', task: { id: 'oa' }, integration: 'github', scopes: ['repo:read'] } }),
  },
  'GET /v1/data/{path}': {
    status: 200,
    call: async () =>
      request(t.url)
        .get('/v1/data/agentpdp/decision')
        .query({ input: JSON.stringify({ agent_id: 'code-review-agent', task: { id: 'oa' }, integration: 'github', scopes: ['repo:read'] }) })
        .set(auth(KEYS.pep)),
  },
  // OPA's default decision needs a bundle with system/main (a test pack), on a PDP of its own.
  'POST /': {
    status: 200,
    call: async () => {
      const packed = await startTestPdp({ bundle: await packBundle(['examples/packs/authzen-certification', 'test/fixtures/packs/opa-default']) });
      try {
        return await request(packed.url).post('/').set(auth(KEYS.pep)).send({ subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } });
      } finally {
        await packed.close();
      }
    },
  },
  'POST /access/v1/evaluation': {
    status: 200,
    call: async () => request(t.url).post('/access/v1/evaluation').set(auth(KEYS.pep)).send({ subject: { type: 'agent', id: 'code-review-agent' }, action: { name: 'repo:read' }, resource: { type: 'integration', id: 'github' }, context: { task_id: 'oa' } }),
  },
  'POST /access/v1/evaluations': {
    status: 200,
    call: async () =>
      request(t.url)
        .post('/access/v1/evaluations')
        .set(auth(KEYS.pep))
        .send({ subject: { type: 'agent', id: 'code-review-agent' }, resource: { type: 'integration', id: 'github' }, context: { task_id: 'oa' }, evaluations: [{ action: { name: 'repo:read' } }, { action: { name: 'repo:write' } }] }),
  },
  'POST /access/v1/search/subject': {
    status: 200,
    call: async () => request(t.url).post('/access/v1/search/subject').set(auth(KEYS.pep)).send({ subject: { type: 'user' }, action: { name: 'read' }, resource: { type: 'record', id: 'record-1' } }),
  },
  'POST /access/v1/search/resource': {
    status: 200,
    call: async () => request(t.url).post('/access/v1/search/resource').set(auth(KEYS.pep)).send({ subject: { type: 'user', id: 'alice' }, action: { name: 'read' }, resource: { type: 'record' } }),
  },
  'POST /access/v1/search/action': {
    status: 200,
    call: async () => request(t.url).post('/access/v1/search/action').set(auth(KEYS.pep)).send({ subject: { type: 'agent', id: 'code-review-agent' }, resource: { type: 'integration', id: 'github' }, context: { task_id: 'oa' } }),
  },
  'GET /.well-known/authzen-configuration': { status: 200, call: async () => request(t.url).get('/.well-known/authzen-configuration') },
  'POST /v1/grantable-scopes': {
    status: 200,
    call: async () => {
      const id = `openapi-${++seq}`;
      await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: 7 } }).expect(201);
      return request(t.url).post('/v1/grantable-scopes').set(auth(KEYS.pep)).send({ agent_id: 'support-resolver', task: { id } });
    },
  },
  'POST /v1/tasks': {
    status: 201,
    call: async () => request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id: `openapi-${++seq}`, agent_id: 'support-resolver', type: 'triage', context: { customer_id: 7 } }),
  },
  'GET /v1/tasks/{id}': { status: 200, call: async () => request(t.url).get(`/v1/tasks/${await newTask()}`).set(auth(KEYS.auditor)) },
  'POST /v1/tasks/{id}/complete': { status: 200, call: async () => request(t.url).post(`/v1/tasks/${await newTask()}/complete`).set(auth(KEYS.orchestrator)) },
  'POST /v1/admin/reload': { status: 200, call: async () => request(t.url).post('/v1/admin/reload').set(auth(KEYS.admin)) },
  'POST /v1/tokens': { status: 201, call: async () => request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: await allowedDecision() }) },
  'POST /v1/introspect': { status: 200, call: async () => request(t.url).post('/v1/introspect').set(auth(KEYS.resource)).type('form').send({ token: await issuedToken() }) },
  'POST /v1/revoke': { status: 200, call: async () => request(t.url).post('/v1/revoke').set(auth(KEYS.pep)).send({ token: await issuedToken() }) },
  'POST /v1/usage': {
    status: 202,
    call: async () => {
      const res = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: await allowedDecision() }).expect(201);
      const used = { jti: res.body.jti, integration: 'github', used_at: t.clock.now.toISOString() };
      // One recorded, one unknown, one refused: every member of the answer.
      return request(t.url).post('/v1/usage').set(auth(KEYS.resource)).send({
        reports: [{ ...used, scope: 'repo:read', route: '/repos/:owner/:repo' }, { ...used, jti: 'unknown-jti', scope: 'repo:read' }, { ...used, scope: 'repo:write', record: null }],
      });
    },
  },
  'GET /v1/audit/decisions/{decision_id}': { status: 200, call: async () => request(t.url).get(`/v1/audit/decisions/${await allowedDecision()}`).set(auth(KEYS.auditor)) },
  'GET /v1/audit/export': { status: 200, call: async () => request(t.url).get('/v1/audit/export?format=jsonl&type=decision').set(auth(KEYS.auditor)) },
  'GET /v1/audit/decisions': { status: 200, call: async () => (await allowedDecision(), request(t.url).get('/v1/audit/decisions?limit=5').set(auth(KEYS.auditor))) },
  'GET /v1/audit/integrity': { status: 200, call: async () => request(t.url).get('/v1/audit/integrity').set(auth(KEYS.auditor)) },
  'POST /v1/audit/verify': { status: 200, call: async () => request(t.url).post('/v1/audit/verify').set(auth(KEYS.auditor)) },
  'GET /v1/audit/overview': { status: 200, call: async () => request(t.url).get('/v1/audit/overview?minutes=10').set(auth(KEYS.admin)) },
  'GET /.well-known/jwks.json': { status: 200, call: async () => request(t.url).get('/.well-known/jwks.json') },
  'GET /.well-known/oauth-authorization-server': { status: 200, call: async () => request(t.url).get('/.well-known/oauth-authorization-server') },
  'GET /healthz': { status: 200, call: async () => request(t.url).get('/healthz') },
  // The console's page and files are the build's (make build compiles console-ui/ into dist/console-ui/).
  'GET /console': { status: 200, call: async () => request(t.url).get('/console') },
  'GET /console/assets/{file}': { status: 200, call: async () => request(t.url).get('/console/assets/app.js') },
  'POST /console/session': { status: 201, call: async () => request(t.url).post('/console/session').set(auth(KEYS.auditor)) },
  'GET /console/session': { status: 200, call: async () => request(t.url).get('/console/session').set('cookie', await consoleCookie()) },
  'POST /console/session/end': {
    status: 204,
    call: async () => {
      const signIn = await request(t.url).post('/console/session').set(auth(KEYS.admin));
      const cookie = (signIn.headers['set-cookie'] as unknown as string[])[0]?.split(';')[0] ?? '';
      return request(t.url).post('/console/session/end').set('cookie', cookie).set('x-csrf-token', (signIn.body as { csrf_token: string }).csrf_token);
    },
  },
  'GET /readyz': { status: 200, call: async () => request(t.url).get('/readyz') },
  'GET /metrics': { status: 200, call: async () => request(t.url).get('/metrics') },
  'GET /openapi.json': { status: 200, call: async () => request(t.url).get('/openapi.json') },
  'POST /v1/access-requests': {
    status: 202,
    call: async () => {
      const id = `openapi-${++seq}`;
      await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'release-bot', type: 'incident' }).expect(201);
      const denial = await pepDecide({ agent_id: 'release-bot', task: { id }, integration: 'crm', scopes: ['tickets:write'] }).expect(200);
      return request(t.url).post('/v1/access-requests').set(auth(KEYS.pep)).set('idempotency-key', id).send({ decision_id: denial.body.decision_id, reason: 'openapi' });
    },
  },
  'GET /v1/access-requests': { status: 200, call: async () => (await pendingRequest(), request(t.url).get('/v1/access-requests?status=pending').set(auth(KEYS.approver))) },
  'GET /v1/access-requests/{id}': { status: 200, call: async () => request(t.url).get(`/v1/access-requests/${await pendingRequest()}`).set(auth(KEYS.pep)) },
  'POST /v1/access-requests/{id}/approve': {
    status: 200,
    call: async () => request(t.url).post(`/v1/access-requests/${await pendingRequest()}/approve`).set(auth(KEYS.approver)).send({ duration_seconds: 60, note: 'ok' }),
  },
  'POST /v1/access-requests/{id}/deny': { status: 200, call: async () => request(t.url).post(`/v1/access-requests/${await pendingRequest()}/deny`).set(auth(KEYS.approver)).send({}) },
  'GET /v1/access-requests/{id}/review': {
    status: 200,
    call: async () => {
      const id = await pendingRequest();
      return request(t.url).get(`/v1/access-requests/${id}/review`).query({ t: linkFor(id) });
    },
  },
  'POST /v1/access-requests/{id}/review': {
    status: 200,
    call: async () => {
      const id = await pendingRequest();
      return request(t.url).post(`/v1/access-requests/${id}/review`).type('form').send({ t: linkFor(id), action: 'deny', api_key: KEYS.approver });
    },
  },
  'GET /v1/admin/notifications': { status: 200, call: async () => request(t.url).get('/v1/admin/notifications?status=pending').set(auth(KEYS.admin)) },
  'GET /v1/suggestions': {
    status: 200,
    call: async () => {
      const at = t.clock.now.toISOString();
      const proposal = { summary: 'remove repo:write', edits: [], diff: '' };
      await t.pdp.store.saveSuggestions([
        { id: 'sg_openapi', agent_id: 'code-review-agent', integration: 'github', kind: 'remove_scope', target: 'repo:write', proposal, evidence: { confidence: 'high' }, evidence_hash: 'h', file: 'agents/code-review-agent.yaml', file_sha256: '0'.repeat(64), status: 'open', created_at: at, updated_at: at, decided_by: null, decided_at: null },
      ]);
      return request(t.url).get('/v1/suggestions?status=open').set(auth(KEYS.auditor));
    },
  },
  'GET /v1/agents': { status: 200, call: async () => request(t.url).get('/v1/agents').set(auth(KEYS.auditor)) },
  'GET /v1/agents/{agent_id}/activity': {
    status: 200,
    call: async () => (await issuedToken(), request(t.url).get('/v1/agents/code-review-agent/activity?days=7').set(auth(KEYS.auditor))),
  },
  // A dry run: the policy the other calls decide on stays as it is.
  'POST /v1/suggestions/{id}/apply': {
    status: 200,
    call: async () => {
      const removal = (await suggestionsFromUsage()).find((s) => s.kind === 'remove_scope' && s.target === 'channels:read');
      return request(t.url).post(`/v1/suggestions/${removal?.id ?? 'none'}/apply`).set(auth(KEYS.admin)).send({ dry_run: true, note: 'openapi' });
    },
  },
  'POST /v1/suggestions/{id}/dismiss': {
    status: 200,
    call: async () => {
      const open = await suggestionsFromUsage();
      return request(t.url).post(`/v1/suggestions/${open[0]?.id ?? 'none'}/dismiss`).set(auth(KEYS.admin)).send({ note: 'openapi' });
    },
  },
};

describe('the document', () => {
  it('is OpenAPI 3.1 and names this server', () => {
    expect(api.document.openapi).toBe('3.1.0');
    expect(api.document).toMatchObject({ servers: [{ url: t.pdp.config.issuer.issuer }] });
  });

  it('documents exactly the routes the app serves', () => {
    expect(api.operations().sort()).toEqual(servedRoutes(t));
  });

  it('has a call in this file for every documented operation', () => {
    expect(Object.keys(OPERATIONS).sort()).toEqual(api.operations().sort());
  });

  it('publishes the request schemas the server validates with', () => {
    const { $id: _a, ...decision } = decisionRequestSchema;
    const { $id: _b, ...task } = taskRegistrationSchema;
    expect(api.document.components.schemas['DecisionRequestV1']).toEqual(decision);
    expect(api.document.components.schemas['TaskRegistrationV1']).toEqual(task);
  });

  it('every error response of an operation is the Error schema (readiness has its own 503 body; the OAuth endpoints answer RFC 6749 errors to form requests; OPA\'s data API answers OPA\'s error body)', () => {
    const OAUTH = new Set(['/v1/tokens', '/v1/introspect', '/v1/revoke']);
    // OPA's data API answers OPA's error body (ours inside it).
    const OPA = new Set(['/v1/data/{path}', '/']);
    for (const [path, item] of Object.entries(api.document.paths)) {
      for (const method of HTTP_METHODS) {
        for (const [status, response] of Object.entries(item[method]?.responses ?? {})) {
          // Readiness has its own 503 body; a failed scrape of /metrics (workers) is plain text, as the exposition is.
          if (Number(status) < 400 || path === '/readyz' || path === '/metrics') continue;
          if (path.endsWith('/review')) {
            // The approval page answers its own refusals as pages; what the pipeline refuses first is JSON.
            const content = response.content as Record<string, { schema: unknown }>;
            expect({ op: `${method} ${path} ${status}`, types: Object.keys(content).filter((t) => t !== 'application/json' && t !== 'text/html') }).toEqual({ op: `${method} ${path} ${status}`, types: [] });
            if (content['application/json']) expect(content['application/json']).toEqual({ schema: { $ref: '#/components/schemas/Error' } });
            continue;
          }
          const schema = OAUTH.has(path)
            ? { oneOf: [{ $ref: '#/components/schemas/Error' }, { $ref: '#/components/schemas/OAuthError' }] }
            : OPA.has(path)
              ? { $ref: '#/components/schemas/OpaError' }
              : { $ref: '#/components/schemas/Error' };
          expect({ op: `${method} ${path} ${status}`, ...response.content }).toEqual({ op: `${method} ${path} ${status}`, 'application/json': { schema } });
        }
      }
    }
  });
});

describe('every documented operation is served and answers as documented', () => {
  it.each(Object.entries(OPERATIONS).map(([operation, { status, call }]) => ({ operation, status, call })))(
    '$operation → $status',
    async ({ status, call }) => {
      const res = await call();
      expect(res.status).toBe(status);
      api.expectResponse(res);
    },
  );
});

describe('error responses of the token endpoints match the document', () => {
  it.each([
    { note: 'unknown decision', status: 404, code: 'decision_not_found', key: KEYS.pep, body: async () => ({ decision_id: 'no-such-decision' }) },
    {
      note: 'a denied decision',
      status: 409,
      code: 'decision_not_allowed',
      key: KEYS.pep,
      body: async () => ({ decision_id: (await pepDecide({ agent_id: 'code-review-agent', task: { id: 'oa' }, integration: 'github', scopes: ['repo:write'] })).body.decision_id }),
    },
    { note: "another pep's decision", status: 403, code: 'decision_wrong_caller', key: KEYS.strictPep, body: async () => ({ decision_id: await allowedDecision() }) },
    { note: 'no decision_id', status: 400, code: 'invalid_request', key: KEYS.pep, body: async () => ({}) },
    { note: 'an orchestrator', status: 403, code: 'forbidden_role', key: KEYS.orchestrator, body: async () => ({ decision_id: 'x' }) },
  ])('POST /v1/tokens, $note → $status $code', async ({ status, code, key, body }) => {
    const res = await request(t.url).post('/v1/tokens').set(auth(key)).send(await body());
    expect(res.status).toBe(status);
    api.expectResponse(res);
    expect(res.body.error.code).toBe(code);
  });

  it('a decision redeemed twice → 409 decision_already_redeemed', async () => {
    const decision_id = await allowedDecision();
    await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id }).expect(201);
    const res = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id }).expect(409);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('decision_already_redeemed');
  });

  it('introspecting a revoked token answers just { active: false }', async () => {
    const token = await issuedToken();
    await request(t.url).post('/v1/revoke').set(auth(KEYS.pep)).type('form').send({ token }).expect(200);
    const res = await request(t.url).post('/v1/introspect').set(auth(KEYS.resource)).send({ token }).expect(200);
    api.expectResponse(res);
    expect(res.body).toEqual({ active: false });
  });
});

describe('unknown routes', () => {
  it.each(Object.keys(OPERATIONS).map((operation) => ({ operation })))('a path below or beside $operation → 404 not_found', async ({ operation }) => {
    const template = operation.split(' ')[1] ?? '';
    const path = template.replace(/\{[^}]+\}/g, 'some-id');
    // Beside a templated last segment is just another id, so only literal paths get a sibling.
    // A path below a multi-segment parameter (`/v1/data/{path}`) is that route's own (its route refuses what it cannot name).
    const unknowns = (template.endsWith('}') ? [`${path}/unknown/deeper`] : [`${path}/unknown/deeper`, `${path}x`]).filter((u) => api.templateOf(u) !== template);
    for (const unknown of unknowns) {
      const res = await request(t.url).get(unknown).set(auth(KEYS.admin)).expect(404);
      api.expectResponse(res);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('the checker itself refuses what the document does not describe', () => {
    expect(() => api.expectResponseMatches('GET', '/nowhere', 200, {})).toThrow(/not in the OpenAPI document/);
    expect(() => api.expectResponseMatches('POST', '/v1/decide', 418, {})).toThrow(/not documented/);
    expect(() => api.expectResponseMatches('POST', '/v1/decide', 200, { allow: 'yes' })).toThrow(/does not match/);
    expect(() => api.expectResponseMatches('POST', '/v1/decide', 400, { error: { code: 'x', message: 'y' } })).toThrow(/does not match/);
  });
});
