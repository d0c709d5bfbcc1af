import { connect } from 'node:net';
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server/logger.js';
import { OpenApiChecker } from '../support/openapi-check.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { sampleValue } from '../support/prometheus-text.js';

/**
 * The one request pipeline (src/server/request-pipeline.ts) every route goes through: the order of its steps,
 * what it writes for every route alike (request id, trace header, access log line, latency metric), and the
 * edges of HTTP itself (percent-encoding, pipelining, HEAD, charsets).
 */

const lines: Array<Record<string, unknown>> = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

let t: TestPdp;
let api: OpenApiChecker;
beforeAll(async () => {
  t = await startTestPdp({ logger: createLogger('info', sink) });
  api = await OpenApiChecker.fetch(t.url);
});
afterAll(async () => {
  await t.close();
});

const DECIDE = { agent_id: 'code-review-agent', task: { id: 'pipe-1' }, integration: 'github', scopes: ['repo:read'] };

describe('order of the steps', () => {
  it('the role gate comes before the body: a forbidden caller gets 403 whatever it sends', async () => {
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.orchestrator)).set('content-type', 'application/json').send('{not json').expect(403);
    expect(res.body.error.code).toBe('forbidden_role');
  });

  it('routing comes before authentication: an unknown path is 404 with or without a key', async () => {
    await request(t.url).get('/v1/nothing').expect(404);
    await request(t.url).get('/v1/nothing').set(auth(KEYS.admin)).expect(404);
  });

  it.each([
    { method: 'delete', path: '/v1/decide', allow: 'POST' },
    { method: 'get', path: '/v1/tokens', allow: 'POST' },
    { method: 'post', path: '/.well-known/jwks.json', allow: 'GET, HEAD' },
    { method: 'put', path: '/v1/tasks/some-task', allow: 'GET, HEAD' },
    { method: 'options', path: '/v1/introspect', allow: 'POST' },
  ] as const)('$method $path, a path served with other methods → 405 method_not_allowed, Allow: $allow (before authentication)', async ({ method, path, allow }) => {
    for (const key of [undefined, KEYS.pep]) {
      const req = request(t.url)[method](path);
      if (key !== undefined) req.set(auth(key));
      const res = await req.expect(405);
      expect(res.headers['allow']).toBe(allow);
      expect(res.body.error).toMatchObject({ code: 'method_not_allowed', details: [] });
    }
  });

  it.each([
    { note: 'a trailing slash', method: 'post', path: '/v1/decide/' },
    { note: 'another case', method: 'post', path: '/V1/DECIDE' },
  ] as const)('$note → 404 not_found', async ({ method, path }) => {
    const res = await request(t.url)[method](path).set(auth(KEYS.pep)).send(DECIDE).expect(404);
    api.expectResponseMatches(method.toUpperCase(), '/nowhere', 404, res.body);
    expect(res.body.error.code).toBe('not_found');
  });
});

describe('what every answer carries', () => {
  it.each([
    ['/healthz', undefined],
    ['/v1/nothing', undefined],
    ['/v1/tasks/x', KEYS.orchestrator],
  ] as const)('X-Content-Type-Options: nosniff on %s (a JSON body that echoes client text is never sniffed as HTML)', async (path, key) => {
    const req = request(t.url).get(path);
    if (key !== undefined) req.set(auth(key));
    const res = await req;
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });
});

describe('credentials', () => {
  it.each(['Bearer', 'bearer', 'BEARER', 'BeArEr'])('the %s scheme is accepted (RFC 7235: schemes are case-insensitive)', async (scheme) => {
    const res = await request(t.url).post('/v1/decide').set('authorization', `${scheme} ${KEYS.pep}`).send(DECIDE).expect(200);
    expect(res.body.outcome).toBe('allow');
  });

  it.each([
    { note: 'two spaces', header: `Bearer  ${KEYS.pep}` },
    { note: 'Basic', header: `Basic ${KEYS.pep}` },
    { note: 'no key', header: 'Bearer ' },
  ])('a malformed header ($note) → 401', async ({ header }) => {
    const res = await request(t.url).post('/v1/decide').set('authorization', header).send(DECIDE).expect(401);
    expect(res.body.error.code).toBe('unauthenticated');
  });
});

describe('path parameters', () => {
  it.each([
    { note: 'an invalid UTF-8 byte', path: '/v1/tasks/%ff', param: 'id', key: KEYS.auditor },
    { note: 'a truncated escape', path: '/v1/audit/decisions/%E0%A4%A', param: 'decision_id', key: KEYS.auditor },
    { note: 'an invalid escape on completion', path: '/v1/tasks/%zz/complete', param: 'id', key: KEYS.orchestrator },
  ])('malformed percent-encoding ($note) → 400 naming the parameter, never 500', async ({ path, param, key }) => {
    const res = await request(t.url)[path.endsWith('complete') ? 'post' : 'get'](path).set(auth(key)).expect(400);
    api.expectResponse(res);
    expect(res.body.error).toMatchObject({ code: 'invalid_request', details: [{ path: `path.${param}`, message: 'malformed percent-encoding' }] });
  });

  it('a percent-encoded id is decoded once', async () => {
    const res = await request(t.url).get('/v1/tasks/a%2Fb').set(auth(KEYS.auditor)).expect(404);
    expect(res.body.error.code).toBe('task_not_found');
    expect(res.body.error.message).toContain('a/b');
  });
});

describe('bodies', () => {
  it.each(['utf-16', 'UTF-16LE', 'utf-7', 'latin1'])('a JSON body in charset %s → 415 (RFC 8259: JSON is UTF-8)', async (charset) => {
    const res = await fetch(`${t.url}/v1/decide`, {
      method: 'POST',
      headers: { ...auth(KEYS.pep), 'content-type': `application/json; charset=${charset}` },
      body: JSON.stringify(DECIDE),
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
  });

  it('a form body with more than 20 parameters → 400', async () => {
    const form = Array.from({ length: 21 }, (_, i) => `p${i}=x`).join('&');
    const res = await request(t.url).post('/v1/introspect').set(auth(KEYS.resource)).type('form').send(form).expect(400);
    expect(res.body).toMatchObject({ error: 'invalid_request', pdp_error: { code: 'invalid_request' } });
  });
});

describe('HTTP edges', () => {
  it('a request pipelined after a 401 on the same connection is still answered', async () => {
    const body = JSON.stringify(DECIDE);
    const req = (key: string): string =>
      `POST /v1/decide HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const { port } = new URL(t.url);
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      let got = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        got += chunk;
        if ((got.match(/HTTP\/1\.1 /g) ?? []).length >= 2 && got.includes('"decision_id"')) socket.end();
      });
      socket.on('end', () => resolve(got));
      socket.on('close', () => resolve(got));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy());
      socket.write(req('not-a-key') + req(KEYS.pep));
    });
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    expect(statuses).toEqual(['401', '200']);
  });

  it('HEAD of a GET route answers its headers without a body', async () => {
    const res = await fetch(`${t.url}/healthz`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });
});

describe('what every route gets alike', () => {
  it.each([
    { note: 'decide', method: 'POST', call: () => request(t.url).post('/v1/decide').set(auth(KEYS.pep)), route: '/v1/decide', status: 400 },
    { note: 'task read', method: 'GET', call: () => request(t.url).get('/v1/tasks/nope').set(auth(KEYS.auditor)), route: '/v1/tasks/{id}', status: 404 },
    { note: 'health', method: 'GET', call: () => request(t.url).get('/healthz'), route: '/healthz', status: 200 },
  ])('$note: a request id, the traceparent echoed, one access log line and a latency sample under the route template', async ({ method, call, route, status }) => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const before = (await request(t.url).get('/metrics')).text;
    const res = await call().set('traceparent', traceparent).send();
    expect(res.status).toBe(status);
    const requestId = res.headers['x-request-id'];
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['traceparent']).toBe(traceparent);
    const line = lines.find((l) => l['request_id'] === requestId);
    expect(line).toMatchObject({ msg: 'request', route, status, trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(Object.keys(line ?? {}).filter((k) => /auth|key|token/i.test(k))).toEqual([]);
    const after = (await request(t.url).get('/metrics')).text;
    const count = (text: string): number =>
      sampleValue(text, 'agentpdp_http_request_duration_seconds_count', { route, method, status: String(status) });
    expect(count(after) - count(before)).toBe(1);
  });
});
