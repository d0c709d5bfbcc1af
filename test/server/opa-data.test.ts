import { request as httpRequest } from 'node:http';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenApiChecker } from '../support/openapi-check.js';
import { packBundle } from '../support/pack-bundle.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';

/**
 * OPA's data API (`/v1/data/{path}`) on the real server with a bundle holding the example pack
 * (authzen/certification) and the tests' own (opa_data: an undefined rule, an echo): OPA's answers, the agent
 * decision decided as a decision request (never a way around the trusted task context), one audit event per answer
 * in the OPA export, and bad input refused by code while the server keeps serving.
 */

let t: TestPdp;
let api: OpenApiChecker;
let seq = 0;

beforeAll(async () => {
  t = await startTestPdp({ bundle: await packBundle(['examples/packs/authzen-certification', 'test/fixtures/packs/opa-data', 'test/fixtures/packs/opa-default']) });
  api = await OpenApiChecker.fetch(t.url);
}, 60_000);
afterAll(async () => {
  await t.close();
});

const post = (path: string, body: unknown, key: string = KEYS.pep) => request(t.url).post(path).set(auth(key)).send(body as object);
const get = (path: string, key: string = KEYS.pep) => request(t.url).get(path).set(auth(key));
const q = (input: unknown): string => `?input=${encodeURIComponent(JSON.stringify(input))}`;

/** A request with its path sent byte for byte (supertest and fetch would normalise `..` and `.` away). */
function raw(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { code?: string; pdp_error?: { code: string; details: Array<{ path: string }> } } & Record<string, unknown> }> {
  const { hostname, port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers: { ...auth(KEYS.pep), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const alice = { type: 'user', id: 'alice' };
const bob = { type: 'user', id: 'bob' };
const record1 = { type: 'record', id: 'record-1' };
const DECISION = '/v1/data/authzen/certification/decision';

describe('answers like OPA', () => {
  it.each([
    { note: 'allowed (POST)', method: 'POST', path: DECISION, input: { subject: alice, action: { name: 'read' }, resource: record1 }, result: { decision: true } },
    {
      note: 'denied, with its reason (POST)',
      method: 'POST',
      path: DECISION,
      input: { subject: bob, action: { name: 'write' }, resource: record1 },
      result: { decision: false, context: { reason_admin: { en: 'live records are written by editors only' } } },
    },
    { note: 'allowed (GET, input in the query)', method: 'GET', path: DECISION, input: { subject: alice, action: { name: 'write' }, resource: record1 }, result: { decision: true } },
    { note: 'a rule defined for the input', method: 'POST', path: '/v1/data/opa_data/allow', input: { x: 1 }, result: true },
    { note: 'an array input echoed', method: 'POST', path: '/v1/data/opa_data/echo', input: [1, 'a', null], result: [1, 'a', null] },
    { note: 'a string input echoed (GET)', method: 'GET', path: '/v1/data/opa_data/echo', input: 'text', result: 'text' },
    { note: 'a data document that takes no input', method: 'GET', path: '/v1/data/authzen/certification/entities', input: undefined, result: expect.objectContaining({ actions: [{ name: 'read' }, { name: 'write' }, { name: 'delete' }] }) },
  ])('$note: { result, decision_id }', async ({ method, path, input, result }) => {
    const res = method === 'POST' ? await post(path, { input }) : await get(input === undefined ? path : `${path}${q(input)}`);
    api.expectResponse(res);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['decision_id', 'result']);
    expect(res.body.result).toEqual(result);
    expect(res.body.decision_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    { note: 'POST, the rule undefined for the input', call: () => post('/v1/data/opa_data/allow', { input: { x: 2 } }) },
    { note: 'GET, the rule undefined for the input', call: () => get(`/v1/data/opa_data/allow${q({ x: 2 })}`) },
    { note: 'GET without input, a rule that needs one', call: () => get('/v1/data/opa_data/echo') },
  ])('$note: { decision_id } and no result (OPA\'s `{}` with decision logging on)', async ({ call }) => {
    const res = await call();
    api.expectResponse(res);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['decision_id']);
  });

  it('a POST body without `input` is answered with OPA\'s warning (and the rule sees no input)', async () => {
    for (const res of [await post('/v1/data/opa_data/echo', {}), await post('/v1/data/opa_data/echo', { inputs: { x: 1 } }), await request(t.url).post('/v1/data/opa_data/echo').set(auth(KEYS.pep)).type('json').send('')]) {
      api.expectResponse(res);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ decision_id: expect.any(String), warning: { code: 'api_usage_warning', message: "'input' key missing from the request" } });
    }
  });

  it('`pretty` and unknown query parameters are ignored; the OPA options set to false are too', async () => {
    for (const query of ['?pretty=true', '?metrics=false&instrument=false&provenance=false&explain=off', '?unknown=1']) {
      const res = await get(`/v1/data/opa_data/allow${q({ x: 1 })}&${query.slice(1)}`).expect(200);
      expect(res.body.result).toBe(true);
    }
  });
});

describe("OPA's default decision (POST /): system/main with the body as input", () => {
  it('answers the value alone, recorded like any evaluation', async () => {
    const res = await post('/', { subject: alice, action: { name: 'read' }, resource: record1 });
    api.expectResponse(res);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ decision: true });
  });

  it('undefined for the input: 404 not_found', async () => {
    const res = await post('/', { action: { name: 'read' } });
    api.expectResponse(res);
    expect(res.status).toBe(404);
    expect(res.body.pdp_error.code).toBe('not_found');
    expect(res.body.code).toBe('undefined_document');
  });

  it('a body that is not JSON: 400', async () => {
    const res = await request(t.url).post('/').set(auth(KEYS.pep)).type('json').send('{"subject": ');
    api.expectResponse(res);
    expect(res.status).toBe(400);
    expect(res.body.pdp_error.code).toBe('invalid_request');
  });
});

describe('agentpdp/decision: a decision request, decided as POST /v1/decide decides it', () => {
  const PATH = '/v1/data/agentpdp/decision';
  const registerTask = async (context: Record<string, string>): Promise<string> => {
    const id = `opa-data-${++seq}`;
    await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id, agent_id: 'support-resolver', type: 'complaint_resolution', context }).expect(201);
    return id;
  };
  const ask = (task: object, customer: string, key: string = KEYS.strictPep) =>
    post(PATH, { input: { agent_id: 'support-resolver', task, integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer', id: customer } } }, key);

  it('answers { result: DecisionResponseV1, decision_id }; the decision is recorded and redeemable for a token', async () => {
    const task = await registerTask({ customer_id: '1234' });
    const res = await ask({ id: task }, '1234');
    api.expectResponse(res);
    expect(res.status).toBe(200);
    expect(res.body.result).toMatchObject({ allow: true, outcome: 'allow', granted_scopes: ['tickets:write'], task_id: task, decision_id: res.body.decision_id });
    await request(t.url).get(`/v1/audit/decisions/${res.body.decision_id}`).set(auth(KEYS.auditor)).expect(200);
    const token = await post('/v1/tokens', { decision_id: res.body.decision_id }, KEYS.strictPep);
    expect(token.status).toBe(201);
    expect(token.body.access_token).toEqual(expect.any(String));
  });

  it('a registered task\'s own context decides: the record binding is judged on the registered customer', async () => {
    const task = await registerTask({ customer_id: '1234' });
    const other = await ask({ id: task }, '5678');
    expect(other.status).toBe(200);
    expect(other.body.result).toMatchObject({ allow: false, granted_scopes: [] });
    expect((other.body.result.reasons as Array<{ code: string }>).map((r) => r.code)).toContain('record_binding_mismatch');
    // A caller that may assert context claims the other customer for the registered task: the registration wins
    // (a contradicted task is denied), the claimed customer never binds the record.
    const claimed = await ask({ id: task, type: 'complaint_resolution', context: { customer_id: '5678' } }, '5678', KEYS.pep);
    expect(claimed.status).toBe(200);
    expect(claimed.body.result).toMatchObject({ allow: false, granted_scopes: [] });
    expect((claimed.body.result.reasons as Array<{ code: string }>).map((r) => r.code)).toContain('task_context_mismatch');
  });

  it('a caller without may_assert_context claiming context: 403 context_assertion_forbidden', async () => {
    const res = await ask({ id: `unregistered-${++seq}`, type: 'complaint_resolution', context: { customer_id: '5678' } }, '5678');
    api.expectResponse(res);
    expect(res.status).toBe(403);
    expect(res.body.pdp_error.code).toBe('context_assertion_forbidden');
  });

  it.each([
    { note: 'an input claiming task.registered: true', input: { agent_id: 'support-resolver', task: { id: 'x', registered: true, context: { customer_id: '5678' } }, integration: 'crm', scopes: ['tickets:write'] }, path: 'input.task.registered' },
    { note: 'the evaluation input of the rule itself', input: { agent: { id: 'support-resolver' }, task: { id: 'x', registered: true }, integration: 'crm', scopes: ['tickets:write'] }, path: 'input.agent_id' },
    { note: 'no input', input: undefined, path: 'input' },
  ])('$note: 400 invalid_request naming $path', async ({ input, path }) => {
    const res = await post(PATH, input === undefined ? {} : { input });
    api.expectResponse(res);
    expect(res.status).toBe(400);
    expect(res.body.pdp_error.code).toBe('invalid_request');
    expect(res.body.pdp_error.details.map((d: { path: string }) => d.path)).toContain(path);
  });

  it('a caller that may not speak for the agent: 403 forbidden_agent', async () => {
    const res = await post(PATH, { input: { agent_id: 'code-review-agent', task: { id: 'x' }, integration: 'github', scopes: ['repo:read'] } }, KEYS.strictPep);
    expect(res.status).toBe(403);
    expect(res.body.pdp_error.code).toBe('forbidden_agent');
  });
});

describe('audit: every answer is an event, in the OPA export with its path and decision_id', () => {
  it('one OPA decision-log line per data-API answer', async () => {
    const task = `opa-audit-${++seq}`;
    await request(t.url).post('/v1/tasks').set(auth(KEYS.orchestrator)).send({ id: task, agent_id: 'support-resolver', type: 'complaint_resolution', context: { customer_id: '1234' } }).expect(201);
    const answers = [
      { path: 'authzen/certification/decision', res: await post(DECISION, { input: { subject: alice, action: { name: 'read' }, resource: record1 } }).expect(200) },
      { path: 'opa_data/allow', res: await get(`/v1/data/opa_data/allow${q({ x: 2 })}`).expect(200) },
      { path: 'opa_data/echo', res: await post('/v1/data/opa_data/echo', {}).expect(200) },
      { path: 'agentpdp/decision', res: await post('/v1/data/agentpdp/decision', { input: { agent_id: 'support-resolver', task: { id: task }, integration: 'crm', scopes: ['tickets:write'] } }, KEYS.strictPep).expect(200) },
    ];
    const exported = await get('/v1/audit/export?format=opa', KEYS.auditor).expect(200);
    const lines = exported.text.trim().split('\n').map((l) => JSON.parse(l) as { decision_id: string; path: string; requested_by: string; result?: unknown });
    for (const { path, res } of answers) {
      const mine = lines.filter((l) => l.decision_id === res.body.decision_id);
      expect(mine, path).toHaveLength(1);
      expect(mine[0]).toMatchObject({ path, requested_by: path === 'agentpdp/decision' ? 'pep-strict' : 'pep-1' });
      if (path !== 'agentpdp/decision') expect(mine[0]?.result).toEqual(res.body.result);
    }
    // Refused requests are no answers: a 404 leaves no evaluation line behind.
    const before = lines.length;
    await post('/v1/data/opa_data/nothing', { input: {} }).expect(404);
    const after = (await get('/v1/audit/export?format=opa', KEYS.auditor).expect(200)).text.trim().split('\n');
    expect(after).toHaveLength(before);
  });
});

describe('bad input: refused by code, the server keeps serving', () => {
  it.each([
    { note: '..', path: '/v1/data/authzen/../agentpdp/decision' },
    { note: 'a lone ..', path: '/v1/data/..' },
    { note: '.', path: '/v1/data/authzen/./certification/decision' },
    { note: 'an encoded slash', path: '/v1/data/authzen%2Fcertification%2Fdecision' },
    { note: 'an encoded slash, lower case', path: '/v1/data/authzen/certification%2fdecision' },
    { note: 'an encoded ..', path: '/v1/data/authzen/%2E%2E/agentpdp/decision' },
    { note: 'an encoded backslash', path: '/v1/data/authzen%5Ccertification' },
    { note: 'an empty segment', path: '/v1/data/authzen//certification/decision' },
    { note: 'a trailing slash', path: '/v1/data/authzen/certification/decision/' },
    { note: 'the data root with a slash', path: '/v1/data/' },
    { note: 'a malformed escape', path: '/v1/data/authzen/%E0%A4%A' },
    { note: 'outside the grammar (a hyphen)', path: '/v1/data/authzen-certification/decision' },
    { note: 'outside the grammar (a leading digit)', path: '/v1/data/1authzen/decision' },
    { note: 'Rego\'s dotted form', path: '/v1/data/authzen.certification.decision' },
  ])('path with $note: 400 invalid_request (details: path)', async ({ path }) => {
    for (const method of ['POST', 'GET']) {
      const res = await raw(method, path, method === 'POST' ? '{"input":{}}' : undefined);
      expect(res.status, `${method} ${path}`).toBe(400);
      expect(res.body.pdp_error?.code).toBe('invalid_request');
      expect(res.body.pdp_error?.details.map((d) => d.path)).toEqual(['path']);
      api.expectResponseMatches(method, '/v1/data/x', res.status, res.body);
    }
  });

  it.each([
    { note: 'an entrypoint the bundle does not have', path: '/v1/data/opa_data/nothing' },
    { note: 'a package, not an entrypoint', path: '/v1/data/authzen/certification' },
    { note: 'the compiled policies document', path: '/v1/data/policies' },
    { note: 'a rule of a pack that is not an entrypoint', path: '/v1/data/authzen/certification/subjects' },
  ])('$note: 404 entrypoint_not_found', async ({ path }) => {
    for (const res of [await post(path, { input: {} }), await get(path)]) {
      api.expectResponse(res);
      expect(res.status).toBe(404);
      expect(res.body.pdp_error).toMatchObject({ code: 'entrypoint_not_found', details: [{ path: 'path' }] });
    }
  });

  it.each(['POST', 'GET'] as const)('%s /v1/data, the whole data document: 400 invalid_request (not exposed)', async (method) => {
    const res = method === 'POST' ? await post('/v1/data', { input: {} }) : await get('/v1/data');
    api.expectResponseMatches(method, '/v1/data/{path}', res.status, res.body);
    expect(res.status).toBe(400);
    expect(res.body.pdp_error).toMatchObject({ code: 'invalid_request', details: [{ path: 'path' }] });
  });

  it.each([
    { note: 'malformed JSON', send: () => request(t.url).post(DECISION).set(auth(KEYS.pep)).type('json').send('{"input": '), code: 'invalid_request', path: '(body)' },
    { note: 'a body that is an array', send: () => request(t.url).post(DECISION).set(auth(KEYS.pep)).type('json').send('[{"input": {}}]'), code: 'invalid_request', path: '(body)' },
    { note: 'a body that is a string', send: () => request(t.url).post(DECISION).set(auth(KEYS.pep)).type('json').send('"input"'), code: 'invalid_request', path: '(body)' },
    { note: 'a body that is not JSON (no content type)', send: () => request(t.url).post(DECISION).set(auth(KEYS.pep)).set('content-type', 'text/plain').send('input=1'), code: 'invalid_request', path: '(body)' },
    { note: 'an oversized body', send: () => post(DECISION, { input: { pad: 'x'.repeat(70_000) } }), code: 'body_too_large', path: '(body)' },
    { note: 'GET input that is not JSON', send: () => get(`${DECISION}?input=notjson`), code: 'invalid_request', path: 'query.input' },
    { note: 'GET input given twice', send: () => get(`${DECISION}?input=1&input=2`), code: 'invalid_request', path: 'query.input' },
    { note: 'explain', send: () => get(`${DECISION}?explain=full`), code: 'invalid_request', path: 'query.explain' },
    { note: 'metrics (bare, as OPA reads it: true)', send: () => get(`${DECISION}?metrics`), code: 'invalid_request', path: 'query.metrics' },
    { note: 'instrument', send: () => post(`${DECISION}?instrument=true`, { input: {} }), code: 'invalid_request', path: 'query.instrument' },
    { note: 'provenance', send: () => get(`${DECISION}?provenance=TRUE`), code: 'invalid_request', path: 'query.provenance' },
    { note: 'strict-builtin-errors', send: () => get(`${DECISION}?strict-builtin-errors=true`), code: 'invalid_request', path: 'query.strict-builtin-errors' },
  ])('$note: 400 $code ($path)', async ({ send, code, path }) => {
    const res = await send();
    api.expectResponse(res);
    expect(res.status).toBe(400);
    expect(res.body.pdp_error.code).toBe(code);
    expect(res.body.pdp_error.details.map((d: { path: string }) => d.path)).toContain(path);
  });

  it.each([
    { note: 'POST: arrays nested 5,000 deep in the input', send: () => request(t.url).post(DECISION).set(auth(KEYS.pep)).type('json').send(`{"input":{"x":${'['.repeat(5000)}${']'.repeat(5000)}}}`), at: /^input\.x\[0\]\[0\].*…$/ },
    { note: 'POST: objects nested 4,500 deep in the input', send: () => request(t.url).post(DECISION).set(auth(KEYS.pep)).type('json').send(`{"input":${'{"a":'.repeat(4500)}1${'}'.repeat(4500)}}`), at: /^input\.a\.a.*…$/ },
    { note: 'GET: arrays nested 200 deep in ?input=', send: () => get(`${DECISION}?input=${encodeURIComponent(`${'['.repeat(200)}${']'.repeat(200)}`)}`), at: /^query\.input/ },
    { note: 'POST: a lone surrogate in the input', send: () => request(t.url).post(DECISION).set(auth(KEYS.pep)).type('json').send('{"input":{"subject":{"id":"alice\\ud800"}}}'), at: /^input\.subject\.id$/ },
  ])('$note: 400 invalid_request naming where, before anything evaluates it', async ({ send, at }) => {
    const res = await send();
    api.expectResponse(res);
    expect(res.status).toBe(400);
    expect(res.body.pdp_error.code).toBe('invalid_request');
    expect(res.body.pdp_error.details.map((d: { path: string }) => d.path)).toContainEqual(expect.stringMatching(at));
  });

  it.each([
    { note: 'wrong role (auditor)', headers: auth(KEYS.auditor), status: 403, code: 'forbidden_role' },
    { note: 'wrong role (orchestrator)', headers: auth(KEYS.orchestrator), status: 403, code: 'forbidden_role' },
    { note: 'no key', headers: {}, status: 401, code: 'unauthenticated' },
    { note: 'an unknown key', headers: auth('not-a-key'), status: 401, code: 'unauthenticated' },
  ])('$note: $status $code, on both methods', async ({ headers, status, code }) => {
    for (const res of [await request(t.url).post(DECISION).set(headers).send({ input: {} }), await request(t.url).get(DECISION).set(headers)]) {
      api.expectResponse(res);
      expect(res.status).toBe(status);
      expect(res.body.pdp_error.code).toBe(code);
    }
  });

  it('POST / on a bundle without system/main: 404 entrypoint_not_found', async () => {
    const plain = await startTestPdp();
    try {
      const res = await request(plain.url).post('/').set(auth(KEYS.pep)).send({});
      expect(res.status).toBe(404);
      expect(res.body.pdp_error.code).toBe('entrypoint_not_found');
    } finally {
      await plain.close();
    }
  });

  it.each(['PUT', 'PATCH', 'DELETE'] as const)('%s /v1/data/{path}: 405 method_not_allowed, Allow: GET, HEAD, POST (data is never written over HTTP)', async (method) => {
    const res = await request(t.url)[method.toLowerCase() as 'put' | 'patch' | 'delete'](DECISION).set(auth(KEYS.pep)).send({ input: {} });
    expect(res.status).toBe(405);
    expect(res.headers['allow']).toBe('GET, HEAD, POST');
    expect(res.body.error.code).toBe('method_not_allowed');
  });

  it('still serves after all of that', async () => {
    const res = await post(DECISION, { input: { subject: alice, action: { name: 'read' }, resource: record1 } }).expect(200);
    expect(res.body.result).toEqual({ decision: true });
  });
});
