import { request as httpRequest } from 'node:http';
import express, { type Express } from 'express';
import { createLocalJWKSet } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  accessTokenClaims,
  createResourceServerAuth,
  PdpClient,
  RESOURCE_REFUSALS,
  type ResourceServerAuthOptions,
} from '../../src/pep/index.js';
import { KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { closedPort } from './fake-pdp.js';

const CRM_AUDIENCE = 'https://crm.example.com/api';

let pdp: TestPdp;
let pep: PdpClient;
let orchestrator: PdpClient;
let issuer: string;
let seq = 0;

beforeAll(async () => {
  pdp = await startTestPdp();
  pep = new PdpClient({ url: pdp.url, apiKey: KEYS.pep });
  orchestrator = new PdpClient({ url: pdp.url, apiKey: KEYS.orchestrator });
  ({ issuer } = await pep.metadata());
});
afterAll(async () => {
  await pdp.close();
});

/** A token from a real decision: registers a task, decides, redeems. */
async function token(opts: { integration?: string; scopes?: string[]; resource?: { type: string; id: string }; agent?: string; type?: string; context?: Record<string, string> } = {}) {
  const taskId = `rs-${++seq}`;
  await orchestrator.registerTask({
    id: taskId, agent_id: opts.agent ?? 'support-resolver', type: opts.type ?? 'complaint_resolution',
    context: opts.context ?? { customer_id: '1234' }, expires_in_seconds: 900,
  });
  const decision = await pep.decide({
    agent_id: opts.agent ?? 'support-resolver', task: { id: taskId }, integration: opts.integration ?? 'crm',
    scopes: opts.scopes ?? ['tickets:write'], resource: opts.resource ?? { type: 'customer', id: '1234' },
  });
  expect(decision.allow).toBe(true);
  return { taskId, token: (await pep.redeem(decision.decision_id)).access_token };
}

/** A CRM-like API: write and delete tickets of the customer in the path. */
function crmApp(options: Partial<ResourceServerAuthOptions> = {}): Express {
  const requireToken = createResourceServerAuth({ issuer, audience: CRM_AUDIENCE, jwksUri: pep.jwksUri, ...options });
  const app = express();
  const customer = { record: (req: { params: Record<string, string | string[] | undefined> }) => ({ type: 'customer', id: String(req.params['id']) }) };
  app.post('/customers/:id/tickets', requireToken({ integration: 'crm', scope: 'tickets:write', ...customer }), (req, res) => {
    res.status(201).json({ customer: req.params.id, agent: accessTokenClaims(res).sub });
  });
  app.delete('/customers/:id/tickets', requireToken({ integration: 'crm', scope: 'tickets:delete', ...customer }), (_req, res) => {
    res.status(204).end();
  });
  app.get('/reports', requireToken({ integration: 'crm', scope: 'tickets:write' }), (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

/** Everything a refusal says, for checking that the token is never echoed. */
const everything = (res: request.Response): string => `${JSON.stringify(res.headers)} ${res.text}`;

describe('createResourceServerAuth: each route checks integration, scope and record', () => {
  it('lets a token through for its own record, and gives the handler its claims', async () => {
    const { token: t } = await token();
    const res = await request(crmApp()).post('/customers/1234/tickets').set('authorization', `Bearer ${t}`).send({});
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ customer: '1234', agent: 'support-resolver' });
  });

  it.each<{ note: string; header: (t: string) => string | undefined; method?: 'post' | 'delete' | 'get'; path?: string; status: number; code: string; challenge: RegExp }>([
    { note: 'no token', header: () => undefined, status: 401, code: 'token_missing', challenge: /^Bearer realm="https:\/\/crm\.example\.com\/api"$/ },
    { note: 'another scheme (no error code: RFC 6750 §3.1)', header: (t) => `Basic ${t}`, status: 401, code: 'token_missing', challenge: /^Bearer realm="https:\/\/crm\.example\.com\/api"$/ },
    { note: 'a Bearer header of two words (400 invalid_request)', header: (t) => `Bearer ${t} extra`, status: 400, code: 'token_malformed', challenge: /^$|^undefined$/ },
    { note: 'not a JWT', header: () => 'Bearer not-a-jwt', status: 401, code: 'token_invalid', challenge: /error="invalid_token"/ },
    { note: 'a tampered signature', header: (t) => `Bearer ${t.slice(0, -4)}AAAA`, status: 401, code: 'token_invalid', challenge: /error="invalid_token"/ },
    { note: 'another customer than the token is bound to', header: (t) => `Bearer ${t}`, path: '/customers/5678/tickets', status: 403, code: 'token_wrong_resource', challenge: /error="insufficient_scope", error_description="[^"]*", scope="tickets:write"/ },
    { note: 'a bound token on a route that names no record', header: (t) => `Bearer ${t}`, method: 'get', path: '/reports', status: 403, code: 'token_wrong_resource', challenge: /error="insufficient_scope"/ },
    { note: 'a scope the token does not carry', header: (t) => `Bearer ${t}`, method: 'delete', status: 403, code: 'token_scope_insufficient', challenge: /error="insufficient_scope".*scope="tickets:delete"/ },
  ])('refuses $note', async ({ header, method = 'post', path = '/customers/1234/tickets', status, code, challenge }) => {
    const { token: t } = await token();
    const value = header(t);
    let req = request(crmApp())[method](path);
    if (value !== undefined) req = req.set('authorization', value);
    const res = await req.send();
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.any(String) } });
    expect(String(res.headers['www-authenticate'] ?? '')).toMatch(challenge);
    expect(everything(res)).not.toContain(t);
    expect(RESOURCE_REFUSALS[code as keyof typeof RESOURCE_REFUSALS].status).toBe(status);
  });

  it('refuses a request with two Authorization headers, the first a good token (400 token_malformed, as the proxy does)', async () => {
    const { token: t } = await token();
    const app = crmApp();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((ok) => server.once('listening', ok));
    try {
      const { port } = server.address() as { port: number };
      // supertest and fetch fold repeated headers into one; raw headers are sent as given (Host too, then).
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/customers/1234/tickets', headers: [['Host', `127.0.0.1:${port}`], ['Authorization', `Bearer ${t}`], ['Authorization', 'Bearer other']].flat() }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject).end();
      });
      expect(answer.status).toBe(400);
      expect(JSON.parse(answer.body)).toEqual({ error: { code: 'token_malformed', message: expect.any(String) } });
      expect(answer.body).not.toContain(t);
    } finally {
      server.close();
    }
  });

  it('refuses a token of another integration (its audience differs)', async () => {
    const { token: t } = await token({
      agent: 'mailbox-summarizer', type: 'categorize', context: { mailbox: 'support@example.com' },
      integration: 'mail', scopes: ['mail:read'], resource: { type: 'mailbox', id: 'support@example.com' },
    });
    const res = await request(crmApp()).post('/customers/1234/tickets').set('authorization', `Bearer ${t}`).send({});
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('token_wrong_audience');
  });

  it('derives the scope from the request when the route says how', async () => {
    const { token: t } = await token({
      agent: 'feedback-workflow', type: 'feedback_read', context: { table: 'customer_feedback' },
      integration: 'database', scopes: ['select:customer_feedback'], resource: { type: 'table', id: 'customer_feedback' },
    });
    const requireToken = createResourceServerAuth({ issuer, audience: 'https://db-gateway.example.com', jwksUri: pep.jwksUri });
    const app = express();
    app.get('/tables/:table/rows', requireToken({
      integration: 'database', scope: (req) => `select:${String(req.params['table'])}`, record: (req) => ({ type: 'table', id: String(req.params['table']) }),
    }), (_req, res) => void res.json({ rows: [] }));
    expect((await request(app).get('/tables/customer_feedback/rows').set('authorization', `Bearer ${t}`)).status).toBe(200);
    const other = await request(app).get('/tables/customers/rows').set('authorization', `Bearer ${t}`);
    expect(other.status).toBe(403);
    expect(other.headers['www-authenticate']).toContain('scope="select:customers"');
  });
});

describe('createResourceServerAuth: revocation needs introspection', () => {
  it('without introspection a token of a completed task still passes; with it, it is refused', async () => {
    const { taskId, token: t } = await token();
    const plain = crmApp();
    const introspecting = crmApp({ introspect: true, pdp: new PdpClient({ url: pdp.url, apiKey: KEYS.resource }) });
    const call = (app: Express) => request(app).post('/customers/1234/tickets').set('authorization', `Bearer ${t}`).send({});

    expect((await call(introspecting)).status).toBe(201);
    await orchestrator.completeTask(taskId);
    expect((await call(plain)).status).toBe(201); // a JWT alone cannot know
    const refused = await call(introspecting);
    expect(refused.status).toBe(401);
    expect(refused.body.error.code).toBe('token_inactive');
    expect(refused.headers['www-authenticate']).toMatch(/error="invalid_token"/);
    expect(everything(refused)).not.toContain(t);
  });

  it.each<{ note: string; client: () => Promise<PdpClient>; code: string }>([
    { note: 'the PDP is unreachable', client: async () => new PdpClient({ url: `http://127.0.0.1:${await closedPort()}`, apiKey: KEYS.resource, retryDelayMs: 1 }), code: 'pdp_unavailable' },
    { note: 'the PDP refuses this server\'s API key', client: async () => new PdpClient({ url: pdp.url, apiKey: 'wrong-key' }), code: 'pdp_error' },
  ])('refuses with 503 when introspection is on and $note', async ({ client, code }) => {
    const { token: t } = await token();
    const app = crmApp({ introspect: true, pdp: await client(), jwks: createLocalJWKSet(pdp.pdp.keys.jwks) });
    const res = await request(app).post('/customers/1234/tickets').set('authorization', `Bearer ${t}`).send({});
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: { code, message: 'the access token could not be checked; nothing was allowed' } });
    expect(res.headers['www-authenticate']).toBeUndefined();
  });

  it('refuses with 503 jwks_unavailable when the keys cannot be fetched', async () => {
    const { token: t } = await token();
    const app = crmApp({ jwksUri: `http://127.0.0.1:${await closedPort()}/.well-known/jwks.json` });
    const res = await request(app).post('/customers/1234/tickets').set('authorization', `Bearer ${t}`).send({});
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('jwks_unavailable');
  });

  it.each<{ note: string; options: Record<string, unknown> }>([
    { note: 'no issuer', options: { audience: 'a', jwksUri: 'http://127.0.0.1/jwks' } },
    { note: 'no audience', options: { issuer: 'i', jwksUri: 'http://127.0.0.1/jwks' } },
    { note: 'no way to get keys', options: { issuer: 'i', audience: 'a' } },
    { note: 'introspection without a client', options: { issuer: 'i', audience: 'a', jwksUri: 'http://127.0.0.1/jwks', introspect: true } },
  ])('refuses misuse at construction: $note', ({ options }) => {
    expect(() => createResourceServerAuth(options as never)).toThrow(TypeError);
  });

  it('refuses a route without integration or scope', () => {
    const requireToken = createResourceServerAuth({ issuer: 'i', audience: 'a', jwksUri: 'http://127.0.0.1/jwks' });
    expect(() => requireToken({ integration: '', scope: 'x' })).toThrow(TypeError);
    expect(() => requireToken({ integration: 'crm', scope: '' })).toThrow(TypeError);
  });
});
