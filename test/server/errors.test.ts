import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { sampleValue } from '../support/prometheus-text.js';

/**
 * Every error class of the HTTP API, each asserted by status, code and the field its details name:
 * 400 malformed bodies, 401 credentials, 403 roles and agents, 404 routes, 415 encodings.
 */

const BODY_LIMIT = 65536;
const VALID = {
  agent_id: 'code-review-agent',
  task: { id: 'task-1', type: 'review', context: { repo: 'acme/web' } },
  integration: 'github',
  scopes: ['repo:read'],
  resource: { type: 'repo', id: 'acme/web' },
  ttl_seconds: 300,
};

let t: TestPdp;
let api: OpenApiChecker;

beforeAll(async () => {
  t = await startTestPdp();
  api = await OpenApiChecker.fetch(t.url);
});
afterAll(async () => {
  await t.close();
});

/** `nest(3, 'x')` → `{ a: { a: { a: 'x' } } }` */
const nest = (depth: number, leaf: unknown): unknown => (depth === 0 ? leaf : { a: nest(depth - 1, leaf) });
const deepArray = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('400: a malformed decision request names the offending field', () => {
  it('the valid baseline is answered (so each row below fails only for its own change)', async () => {
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(VALID).expect(200);
    expect(res.body.outcome).toBe('allow');
  });

  it.each([
    // wrong types
    { note: 'agent_id a number', body: { ...VALID, agent_id: 42 }, path: 'agent_id', message: 'must be string' },
    { note: 'agent_id null', body: { ...VALID, agent_id: null }, path: 'agent_id', message: 'must be string' },
    { note: 'task a string', body: { ...VALID, task: 'task-1' }, path: 'task', message: 'must be object' },
    { note: 'task an array', body: { ...VALID, task: [{ id: 'task-1' }] }, path: 'task', message: 'must be object' },
    { note: 'task.id a boolean', body: { ...VALID, task: { id: true } }, path: 'task.id', message: 'must be string' },
    { note: 'scopes a string', body: { ...VALID, scopes: 'repo:read' }, path: 'scopes', message: 'must be array' },
    { note: 'a scope a number', body: { ...VALID, scopes: ['repo:read', 7] }, path: 'scopes[1]', message: 'must be string' },
    { note: 'ttl_seconds a string', body: { ...VALID, ttl_seconds: '300' }, path: 'ttl_seconds', message: 'must be integer' },
    { note: 'ttl_seconds a fraction', body: { ...VALID, ttl_seconds: 1.5 }, path: 'ttl_seconds', message: 'must be integer' },
    { note: 'ttl_seconds zero', body: { ...VALID, ttl_seconds: 0 }, path: 'ttl_seconds', message: 'must be >= 1' },
    { note: 'resource an array', body: { ...VALID, resource: ['repo', 'acme/web'] }, path: 'resource', message: 'must be object' },
    { note: 'context an array', body: { ...VALID, task: { id: 't', context: ['a'] } }, path: 'task.context', message: 'must be object' },
    { note: 'a context value null', body: { ...VALID, task: { id: 't', context: { repo: null } } }, path: 'task.context.repo', message: 'must be string' },
    // missing and empty
    { note: 'agent_id missing', body: { ...VALID, agent_id: undefined }, path: 'agent_id', message: 'is required' },
    { note: 'task.id missing', body: { ...VALID, task: { type: 'review' } }, path: 'task.id', message: 'is required' },
    { note: 'scopes empty', body: { ...VALID, scopes: [] }, path: 'scopes', message: 'must NOT have fewer than 1 items' },
    { note: 'agent_id empty', body: { ...VALID, agent_id: '' }, path: 'agent_id', message: expect.stringContaining('must match pattern') },
    { note: 'resource.id empty', body: { ...VALID, resource: { type: 'repo', id: '' } }, path: 'resource.id', message: 'must NOT have fewer than 1 characters' },
    // unknown fields, at every level
    { note: 'unknown top-level field', body: { ...VALID, admin: true }, path: 'admin', message: 'unknown field' },
    { note: 'unknown field in task', body: { ...VALID, task: { id: 't', registered: true } }, path: 'task.registered', message: 'unknown field' },
    { note: 'unknown field in resource', body: { ...VALID, resource: { type: 'repo', id: 'x', owner: 'me' } }, path: 'resource.owner', message: 'unknown field' },
    { note: '__proto__ as a field', raw: '{"__proto__":{"allow":true},"agent_id":"code-review-agent","task":{"id":"t"},"integration":"github","scopes":["repo:read"]}', path: '__proto__', message: 'unknown field' },
    // over-long and out-of-pattern strings
    { note: 'agent_id over 128 characters', body: { ...VALID, agent_id: `a${'b'.repeat(128)}` }, path: 'agent_id', message: expect.stringContaining('must match pattern') },
    { note: 'task.id with a space', body: { ...VALID, task: { id: 'task 1' } }, path: 'task.id', message: expect.stringContaining('must match pattern') },
    { note: 'a scope over 128 characters', body: { ...VALID, scopes: ['s'.repeat(129)] }, path: 'scopes[0]', message: expect.stringContaining('must match pattern') },
    { note: 'resource.id over 256 characters', body: { ...VALID, resource: { type: 'repo', id: 'x'.repeat(257) } }, path: 'resource.id', message: 'must NOT have more than 256 characters' },
    { note: 'a context value over 256 characters', body: { ...VALID, task: { id: 't', context: { repo: 'x'.repeat(257) } } }, path: 'task.context.repo', message: 'must NOT have more than 256 characters' },
    { note: 'a context key that is not a name', body: { ...VALID, task: { id: 't', context: { 'bad key': 'x' } } }, path: 'task.context.bad key', message: 'is not a valid field name' },
    { note: 'too many scopes', body: { ...VALID, scopes: Array.from({ length: 33 }, (_, i) => `s${i}`) }, path: 'scopes', message: 'must NOT have more than 32 items' },
    { note: 'too many context keys', body: { ...VALID, task: { id: 't', context: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])) } }, path: 'task.context', message: 'must NOT have more than 32 properties' },
    { note: 'ttl_seconds over a day', body: { ...VALID, ttl_seconds: 86401 }, path: 'ttl_seconds', message: 'must be <= 86400' },
    // too deep
    { note: 'a context value that is a deep object', body: { ...VALID, task: { id: 't', context: { repo: nest(200, 'x') } } }, path: 'task.context.repo', message: 'must be string' },
    { note: 'a deep object where a scope belongs', body: { ...VALID, scopes: [nest(500, 'repo:read')] }, path: 'scopes[0]', message: 'must be string' },
    { note: 'a deep array as the whole body', raw: deepArray(20_000), path: '(body)', message: 'must be object' },
    { note: 'a deep object in an unknown field', body: { ...VALID, extra: nest(1000, 1) }, path: 'extra', message: 'unknown field' },
    // not text
    { note: 'a lone surrogate in a context value', raw: JSON.stringify(VALID).replace('acme/web"}}', 'acme/web\\ud800"}}'), path: 'task.context.repo', message: expect.stringContaining('well-formed Unicode') },
    { note: 'a lone surrogate in resource.id', raw: JSON.stringify({ ...VALID, resource: { type: 'repo', id: 'REPLACE' } }).replace('REPLACE', '\\udfff'), path: 'resource.id', message: expect.stringContaining('well-formed Unicode') },
    { note: 'a non-finite number (1e400) in the context', raw: JSON.stringify(VALID).replace('"acme/web"}', '1e400}'), path: 'task.context.repo', message: 'must be number' },
    // not a decision request at all
    { note: 'invalid JSON', raw: '{"agent_id": "code-review-agent",', path: '(body)', message: 'not valid JSON' },
    { note: 'JSON with a trailing comma', raw: '{"agent_id": "x",}', path: '(body)', message: 'not valid JSON' },
    { note: 'a JSON string (strict parsing)', raw: '"agent_id"', path: '(body)', message: 'not a JSON object or array' },
    { note: 'JSON null', raw: 'null', path: '(body)', message: 'not a JSON object or array' },
    { note: 'an empty body: read as {}', raw: '', path: 'agent_id', message: 'is required' },
    { note: 'a JSON array', raw: '[]', path: '(body)', message: 'must be object' },
    { note: 'an empty object', raw: '{}', path: 'agent_id', message: 'is required' },
  ])('$note → 400 invalid_request at $path', async ({ body, raw, path, message }) => {
    const req = request(t.url).post('/v1/decide').set(auth(KEYS.pep));
    const res = await (raw !== undefined ? req.set('content-type', 'application/json').send(raw) : req.send(body)).expect(400);
    api.expectResponse(res);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toContainEqual({ path, message });
    expect(res.body).not.toHaveProperty('allow');
  });

  it('a body whose bytes are not UTF-8 → 400 invalid_request (never read as U+FFFD and decided on)', async () => {
    const text = JSON.stringify({ ...VALID, resource: { type: 'repo', id: 'REPLACE' } });
    const [before, after] = text.split('REPLACE') as [string, string];
    const raw = Buffer.concat([Buffer.from(before), Buffer.from([0x61, 0xff, 0x62]), Buffer.from(after)]);
    // fetch sends the bytes as they are (supertest would serialise a Buffer as JSON).
    const res = await fetch(`${t.url}/v1/decide`, { method: 'POST', headers: { ...auth(KEYS.pep), 'content-type': 'application/json' }, body: raw });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({ code: 'invalid_request', details: [{ path: '(body)', message: 'not valid UTF-8' }] });
  });

  it.each([
    { note: 'one byte over the limit', size: BODY_LIMIT + 1 },
    { note: 'a megabyte', size: 1 << 20 },
  ])('a body over the size limit → 400 body_too_large ($note)', async ({ size }) => {
    // A decision request padded with a long (otherwise valid) context value, to exactly `size` bytes.
    const skeleton = JSON.stringify({ ...VALID, task: { id: 't', context: { pad: '' } } });
    const raw = skeleton.replace('"pad":""', `"pad":"${'x'.repeat(size - skeleton.length)}"`);
    expect(Buffer.byteLength(raw)).toBe(size);
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).set('content-type', 'application/json').send(raw).expect(400);
    api.expectResponse(res);
    expect(res.body.error).toMatchObject({ code: 'body_too_large', details: [{ path: '(body)', message: 'too large' }] });
  });

  it('a body at exactly the size limit is parsed (and then judged on its fields)', async () => {
    const skeleton = JSON.stringify({ ...VALID, task: { id: 't', context: { pad: '' } } });
    const raw = skeleton.replace('"pad":""', `"pad":"${'x'.repeat(BODY_LIMIT - skeleton.length)}"`);
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).set('content-type', 'application/json').send(raw).expect(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toContainEqual({ path: 'task.context.pad', message: 'must NOT have more than 256 characters' });
  });

  /** Raw bytes through fetch: supertest would pick a content-type (and serialise a Buffer) on its own. */
  const sendRaw = async (headers: Record<string, string | undefined>, raw: string) => {
    const set = Object.fromEntries(Object.entries(headers).filter((e): e is [string, string] => e[1] !== undefined));
    const res = await fetch(`${t.url}/v1/decide`, { method: 'POST', headers: { ...auth(KEYS.pep), ...set }, body: new TextEncoder().encode(raw) });
    const body = (await res.json()) as { error: { code: string; details: unknown[] } };
    api.expectResponseMatches('POST', '/v1/decide', res.status, body);
    return { status: res.status, body };
  };

  it.each([
    { note: 'text/plain', headers: { 'content-type': 'text/plain' }, path: '(body)', message: 'missing' },
    { note: 'no content-type', headers: {}, path: '(body)', message: 'missing' },
    { note: 'a form (decide reads JSON only)', headers: { 'content-type': 'application/x-www-form-urlencoded' }, raw: 'agent_id=code-review-agent&integration=github', path: '(body)', message: 'missing' },
  ])('a body that is not JSON → 400 ($note)', async ({ headers, raw, path, message }) => {
    const res = await sendRaw(headers, raw ?? JSON.stringify(VALID));
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.details).toContainEqual({ path, message });
  });

  it.each([
    { note: 'a charset other than UTF', headers: { 'content-type': 'application/json; charset=iso-8859-1' } },
    { note: 'an unknown content-encoding', headers: { 'content-type': 'application/json', 'content-encoding': 'br2' } },
  ])('415 unsupported_media_type: $note', async ({ headers }) => {
    const res = await sendRaw(headers, JSON.stringify(VALID));
    expect(res.status).toBe(415);
    expect(res.body.error.code).toBe('unsupported_media_type');
  });

  it('task registration names its offending fields too', async () => {
    const res = await request(t.url)
      .post('/v1/tasks')
      .set(auth(KEYS.orchestrator))
      .send({ id: 'task-x', agent_id: 'support-resolver', type: 'triage', context: { customer_id: ['1234'] }, expires_in_seconds: -1, owner: 'me' })
      .expect(400);
    api.expectResponse(res);
    expect(res.body.error.details).toEqual(
      expect.arrayContaining([
        { path: 'context.customer_id', message: 'must be string' },
        { path: 'expires_in_seconds', message: 'must be >= 1' },
        { path: 'owner', message: 'unknown field' },
      ]),
    );
  });
});

describe('401: no credential or a wrong one', () => {
  it.each([
    { note: 'no authorization header', headers: {}, reason: 'missing' },
    { note: 'an unknown key', headers: auth('not-a-key'), reason: 'unknown_key' },
    { note: 'a key hash instead of the key', headers: auth('f'.repeat(64)), reason: 'unknown_key' },
    { note: 'the right key with a different case', headers: auth(KEYS.pep.toUpperCase()), reason: 'unknown_key' },
    { note: 'Basic instead of Bearer', headers: { authorization: `Basic ${Buffer.from(`pep-1:${KEYS.pep}`).toString('base64')}` }, reason: 'malformed' },
    { note: 'Bearer with nothing after it', headers: { authorization: 'Bearer ' }, reason: 'malformed' },
    { note: 'the key without a scheme', headers: { authorization: KEYS.pep }, reason: 'malformed' },
    { note: 'a key with a space in it', headers: { authorization: `Bearer ${KEYS.pep} extra` }, reason: 'malformed' },
    { note: 'a key over 512 characters', headers: auth('k'.repeat(513)), reason: 'malformed' },
  ])('$note → 401 unauthenticated', async ({ headers, reason }) => {
    const before = (await request(t.url).get('/metrics')).text;
    const res = await request(t.url).post('/v1/decide').set(headers).send(VALID).expect(401);
    api.expectResponse(res);
    expect(res.body.error).toEqual({ code: 'unauthenticated', message: 'missing or invalid API key', details: [] });
    // RFC 6750 §3.1: invalid_token once a credential was presented; the challenge is Bearer, the one scheme here.
    expect(res.headers['www-authenticate']).toBe(reason === 'missing' ? 'Bearer realm="agent-pdp"' : 'Bearer realm="agent-pdp", error="invalid_token"');
    expect(res.text).not.toContain(KEYS.pep);
    const after = (await request(t.url).get('/metrics')).text;
    expect(sampleValue(after, 'agentpdp_auth_failures_total', { reason }) - sampleValue(before, 'agentpdp_auth_failures_total', { reason })).toBe(1);
  });

  it.each([
    { note: 'task registration', method: 'post', path: '/v1/tasks' },
    { note: 'task read', method: 'get', path: '/v1/tasks/task-1' },
    { note: 'task completion', method: 'post', path: '/v1/tasks/task-1/complete' },
    { note: 'reload', method: 'post', path: '/v1/admin/reload' },
  ] as const)('$note without a credential → 401', async ({ method, path }) => {
    const res = await request(t.url)[method](path).expect(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });

  it('an unknown route without a credential → 404: routing comes first (the routes are public in /openapi.json), so no auth.failed is written for paths nobody serves', async () => {
    const before = (await request(t.url).get('/metrics')).text;
    const res = await request(t.url).get(`/v1/${'x'.repeat(15_000)}`).expect(404);
    expect(res.body.error.code).toBe('not_found');
    const after = (await request(t.url).get('/metrics')).text;
    expect(sampleValue(after, 'agentpdp_auth_failures_total', { reason: 'missing' })).toBe(sampleValue(before, 'agentpdp_auth_failures_total', { reason: 'missing' }));
  });

  it('a body is not parsed before the caller is authenticated', async () => {
    const res = await request(t.url).post('/v1/decide').set('content-type', 'application/json').send('{not json').expect(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });
});

describe('403: a role or agent the caller may not use', () => {
  it.each([
    { note: 'orchestrator asks for a decision', key: KEYS.orchestrator, method: 'post', path: '/v1/decide', body: VALID, role: 'orchestrator' },
    { note: 'auditor asks for a decision', key: KEYS.auditor, method: 'post', path: '/v1/decide', body: VALID, role: 'auditor' },
    { note: 'resource server asks for a decision', key: KEYS.resource, method: 'post', path: '/v1/decide', body: VALID, role: 'resource_server' },
    { note: 'admin asks for a decision', key: KEYS.admin, method: 'post', path: '/v1/decide', body: VALID, role: 'admin' },
    { note: 'pep registers a task', key: KEYS.pep, method: 'post', path: '/v1/tasks', body: { id: 't', agent_id: 'support-resolver', type: 'triage' }, role: 'pep' },
    { note: 'auditor registers a task', key: KEYS.auditor, method: 'post', path: '/v1/tasks', body: { id: 't', agent_id: 'support-resolver', type: 'triage' }, role: 'auditor' },
    { note: 'pep reads a task', key: KEYS.pep, method: 'get', path: '/v1/tasks/t', body: undefined, role: 'pep' },
    { note: 'admin completes a task', key: KEYS.admin, method: 'post', path: '/v1/tasks/t/complete', body: undefined, role: 'admin' },
    { note: 'pep reloads the policy', key: KEYS.pep, method: 'post', path: '/v1/admin/reload', body: undefined, role: 'pep' },
    { note: 'orchestrator reloads the policy', key: KEYS.orchestrator, method: 'post', path: '/v1/admin/reload', body: undefined, role: 'orchestrator' },
  ] as const)('$note → 403 forbidden_role', async ({ key, method, path, body, role }) => {
    const res = await request(t.url)[method](path).set(auth(key)).send(body).expect(403);
    api.expectResponse(res);
    expect(res.body.error).toEqual({ code: 'forbidden_role', message: `role ${role} may not use this endpoint`, details: [] });
  });

  it.each([
    { note: 'strict pep, an agent not in its list', key: KEYS.strictPep, agent: 'code-review-agent' },
    { note: 'strict pep, an agent no policy names', key: KEYS.strictPep, agent: 'ghost-agent' },
    { note: 'pep-1, an agent not in its list', key: KEYS.pep, agent: 'ghost-agent' },
  ])('caller/agent mismatch: $note → 403 forbidden_agent', async ({ key, agent }) => {
    const res = await request(t.url).post('/v1/decide').set(auth(key)).send({ ...VALID, agent_id: agent }).expect(403);
    api.expectResponse(res);
    expect(res.body.error).toMatchObject({ code: 'forbidden_agent', details: [{ path: 'agent_id', message: 'not an agent this caller may speak for' }] });
  });

  it.each([
    { note: 'task context', task: { id: 'unregistered-1', context: { customer_id: '1234' } }, path: 'task.context' },
    { note: 'task type', task: { id: 'unregistered-2', type: 'complaint_resolution' }, path: 'task.type' },
    { note: 'an empty context is still an assertion', task: { id: 'unregistered-3', context: {} }, path: 'task.context' },
  ])('a pep that may not assert context sends $note → 403 context_assertion_forbidden at $path', async ({ task, path }) => {
    const res = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.strictPep))
      .send({ agent_id: 'support-resolver', task, integration: 'crm', scopes: ['tickets:read'] })
      .expect(403);
    api.expectResponse(res);
    expect(res.body.error).toMatchObject({ code: 'context_assertion_forbidden', details: [{ path }] });
  });
});

describe('404: unknown routes', () => {
  it.each([
    { note: 'an unknown path', method: 'get', path: '/v1/nothing-here' },
    { note: 'a retired version', method: 'post', path: '/v2/decide' },
    { note: 'a path below decide', method: 'post', path: '/v1/decide/now' },
  ] as const)('$note → 404 not_found', async ({ method, path }) => {
    const res = await request(t.url)[method](path).set(auth(KEYS.admin)).expect(404);
    api.expectResponse(res);
    expect(res.body.error).toEqual({ code: 'not_found', message: `no route for ${method.toUpperCase()} ${path}`, details: [] });
  });
});

describe('405: a path served with other methods', () => {
  it.each([
    { note: 'decide with GET', method: 'get', path: '/v1/decide', allow: 'POST' },
    { note: 'the task collection with GET', method: 'get', path: '/v1/tasks', allow: 'POST' },
    { note: 'task deletion', method: 'delete', path: '/v1/tasks/task-1', allow: 'GET, HEAD' },
    { note: 'the root with GET (OPA\'s default decision is POST /)', method: 'get', path: '/', allow: 'POST' },
  ] as const)('$note → 405 method_not_allowed, Allow: $allow', async ({ method, path, allow }) => {
    const res = await request(t.url)[method](path).set(auth(KEYS.admin)).expect(405);
    expect(res.headers['allow']).toBe(allow);
    expect(res.body.error).toEqual({ code: 'method_not_allowed', message: `${method.toUpperCase()} is not allowed on ${path}; allowed: ${allow}`, details: [] });
  });
});
