/**
 * A standard OAuth client against the issuer, unchanged: openid-client 6 (the reference OAuth client for Node)
 * discovers the RFC 8414 metadata, redeems decisions with the RFC 6749 §4.5 extension grant through its generic
 * grant request, introspects (RFC 7662) and revokes (RFC 7009), authenticating with client_secret_basic and with
 * client_secret_post (client id = the caller's id, secret = its API key). Errors arrive as RFC 6749 §5.2 bodies.
 */
import * as oauth from 'openid-client';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DECISION_GRANT_TYPE } from '../../src/wire/token-v1.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { CRM_AUDIENCE, decide, registerTask } from './flow.js';

let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp({ issuerIsUrl: true });
});
afterAll(async () => {
  await t.close();
});

const METHODS = [
  { note: 'client_secret_basic', auth: (secret: string) => oauth.ClientSecretBasic(secret) },
  { note: 'client_secret_post', auth: (secret: string) => oauth.ClientSecretPost(secret) },
];

/** A client configuration discovered from the issuer (plain http on loopback needs the insecure opt-in). */
async function discover(clientId: string, secret: string, method: (secret: string) => oauth.ClientAuth): Promise<oauth.Configuration> {
  return oauth.discovery(new URL(t.pdp.config.issuer.issuer), clientId, secret, method(secret), {
    algorithm: 'oauth2',
    execute: [oauth.allowInsecureRequests],
  });
}

/** An allowed decision of pep-1 (support-resolver, tickets:write on customer 1234). */
async function allowedDecision(): Promise<string> {
  const decision = await decide(t, await registerTask(t));
  expect(decision.allow).toBe(true);
  return decision.decision_id;
}

/** The RFC 6749 §5.2 body of a refused request, however openid-client surfaces it. */
async function oauthError(call: Promise<unknown>): Promise<{ status: number; body: { error: string; error_description: string; pdp_error: { code: string } } }> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeDefined();
  if (err instanceof oauth.ResponseBodyError) return { status: err.status, body: err.cause as never };
  if (err instanceof oauth.WWWAuthenticateChallengeError) return { status: err.response.status, body: (await err.response.json()) as never };
  throw err;
}

describe('discovery', () => {
  it('finds the metadata, with the grant and the client authentication methods each endpoint accepts', async () => {
    const config = await discover('pep-1', KEYS.pep, oauth.ClientSecretBasic);
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(t.pdp.config.issuer.issuer);
    expect(metadata.grant_types_supported).toEqual([DECISION_GRANT_TYPE]);
    for (const endpoint of ['token', 'introspection', 'revocation'] as const) {
      expect(metadata[`${endpoint}_endpoint_auth_methods_supported`]).toEqual(expect.arrayContaining(['client_secret_basic', 'client_secret_post']));
    }
  });
});

describe.each(METHODS)('with $note', ({ auth: method }) => {
  it('redeems a decision through the generic grant request: RFC 6749 §5.1 / RFC 9396 answer', async () => {
    const pep = await discover('pep-1', KEYS.pep, method);
    const decision_id = await allowedDecision();
    const token = await oauth.genericGrantRequest(pep, DECISION_GRANT_TYPE, { decision_id });
    expect(token.token_type).toBe('bearer'); // openid-client lowercases it
    expect(token.expires_in).toBeGreaterThan(0);
    expect(token.scope).toBe('tickets:write');
    expect(token.authorization_details).toEqual([{ type: 'crm', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }]);
    const claims = JSON.parse(Buffer.from(token.access_token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    expect(claims).toMatchObject({ decision_id, client_id: 'pep-1', aud: CRM_AUDIENCE });
  });

  it('introspects and revokes as a resource server', async () => {
    const pep = await discover('pep-1', KEYS.pep, method);
    const rs = await discover('crm-api', KEYS.resource, method);
    const { access_token } = await oauth.genericGrantRequest(pep, DECISION_GRANT_TYPE, { decision_id: await allowedDecision() });
    const active = await oauth.tokenIntrospection(rs, access_token);
    expect(active).toMatchObject({ active: true, client_id: 'pep-1', scope: 'tickets:write', aud: CRM_AUDIENCE });
    await oauth.tokenRevocation(pep, access_token);
    expect(await oauth.tokenIntrospection(rs, access_token)).toEqual({ active: false });
  });

  it('a replayed decision is an RFC 6749 invalid_grant, our code kept in pdp_error', async () => {
    const pep = await discover('pep-1', KEYS.pep, method);
    const decision_id = await allowedDecision();
    await oauth.genericGrantRequest(pep, DECISION_GRANT_TYPE, { decision_id });
    const { status, body } = await oauthError(oauth.genericGrantRequest(pep, DECISION_GRANT_TYPE, { decision_id }));
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringContaining('already redeemed'), pdp_error: { code: 'decision_already_redeemed' } });
  });

  it('a bad secret is an RFC 6749 invalid_client (401), and nothing is redeemed', async () => {
    const wrong = await discover('pep-1', 'not-the-key', method);
    const decision_id = await allowedDecision();
    const { status, body } = await oauthError(oauth.genericGrantRequest(wrong, DECISION_GRANT_TYPE, { decision_id }));
    expect(status).toBe(401);
    expect(body).toMatchObject({ error: 'invalid_client', pdp_error: { code: 'unauthenticated' } });
    expect((await t.pdp.store.getDecision(decision_id))?.redeemed_jti ?? null).toBeNull();
  });
});

describe('the token endpoint over plain HTTP', () => {
  const form = (fields: Record<string, string | undefined>): string =>
    new URLSearchParams(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined)).toString();

  it('answers RFC 6749 §5.1 with 200 and no-store, ignoring parameters it does not know (RFC 6749 §3.2)', async () => {
    const res = await request(t.url)
      .post('/v1/tokens')
      .set(auth(KEYS.pep))
      .type('form')
      .send(form({ grant_type: DECISION_GRANT_TYPE, decision_id: await allowedDecision(), scope: 'ignored', client_id: 'pep-1', foo: 'bar' }))
      .expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['pragma']).toBe('no-cache');
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'tickets:write' });
  });

  it.each([
    { note: 'another grant type', fields: { grant_type: 'client_credentials' }, error: 'unsupported_grant_type', code: 'unsupported_grant_type' },
    { note: 'no grant type', fields: {}, error: 'invalid_request', code: 'invalid_request' },
    { note: 'a resource that is not the audience (RFC 8707)', fields: { grant_type: DECISION_GRANT_TYPE, resource: 'https://evil.example.com' }, error: 'invalid_target', code: 'invalid_target' },
    { note: 'a resource given twice', fields: { grant_type: DECISION_GRANT_TYPE, resource: CRM_AUDIENCE, extra: '' }, twice: true, error: 'invalid_request', code: 'invalid_request' },
  ])('$note → 400 $error', async ({ fields, error, code, twice }) => {
    const decision_id = await allowedDecision();
    let body = form({ decision_id, ...fields });
    if (twice) body += `&resource=${encodeURIComponent(CRM_AUDIENCE)}`;
    const res = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).type('form').send(body).expect(400);
    expect(res.body).toMatchObject({ error, pdp_error: { code } });
    expect((await t.pdp.store.getDecision(decision_id))?.redeemed_jti ?? null).toBeNull();
  });

  it('resource naming the audience (RFC 8707) is accepted and is the token aud', async () => {
    const res = await request(t.url)
      .post('/v1/tokens')
      .set(auth(KEYS.pep))
      .type('form')
      .send(form({ grant_type: DECISION_GRANT_TYPE, decision_id: await allowedDecision(), resource: CRM_AUDIENCE }))
      .expect(200);
    const claims = JSON.parse(Buffer.from(String(res.body.access_token).split('.')[1] ?? '', 'base64url').toString('utf8')) as { aud: string };
    expect(claims.aud).toBe(CRM_AUDIENCE);
  });

  it.each([
    { note: 'Basic and a posted secret together', headers: { authorization: `Basic ${Buffer.from(`pep-1:${KEYS.pep}`).toString('base64')}` }, fields: { client_id: 'pep-1', client_secret: KEYS.pep }, challenge: /Basic realm/ },
    { note: 'a posted client_id of another caller beside a Basic header', headers: { authorization: `Basic ${Buffer.from(`pep-1:${KEYS.pep}`).toString('base64')}` }, fields: { client_id: 'crm-api' }, challenge: /^Basic realm/ },
    { note: 'Basic with the right key under another client id', headers: { authorization: `Basic ${Buffer.from(`crm-api:${KEYS.pep}`).toString('base64')}` }, fields: {}, challenge: /^Basic realm/ },
    { note: 'a posted secret without a client_id', headers: {}, fields: { client_secret: KEYS.pep }, challenge: /Basic realm="agent-pdp", Bearer realm/ },
    { note: 'no credentials at all (client_id only)', headers: {}, fields: { client_id: 'pep-1' }, challenge: /Basic realm="agent-pdp", Bearer realm/ },
  ])('$note → 401 invalid_client with the challenge of the scheme tried', async ({ headers, fields, challenge }) => {
    const decision_id = await allowedDecision();
    const res = await request(t.url).post('/v1/tokens').set(headers).type('form').send(form({ grant_type: DECISION_GRANT_TYPE, decision_id, ...fields })).expect(401);
    expect(res.body).toMatchObject({ error: 'invalid_client', pdp_error: { code: 'unauthenticated' } });
    expect(res.headers['www-authenticate']).toMatch(challenge);
  });

  it('our JSON API keeps refusing unknown fields and answers 201 with our Error shape', async () => {
    const decision_id = await allowedDecision();
    const bad = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id, grant_type: DECISION_GRANT_TYPE }).expect(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_request', details: [{ path: 'grant_type', message: 'unknown field' }] });
    await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id }).expect(201);
  });
});
