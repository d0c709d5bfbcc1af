/**
 * The token endpoints over HTTP: redeem (`POST /v1/tokens`), introspect (RFC 7662), revoke (RFC 7009), and what
 * closing a task does to its tokens. Every refusal is asserted by its code; every attack has a test that fails
 * when its defence is removed. Library-level forgery tests (alg none, HS256 with the public key, unknown kid,
 * changed payload, expiry with a frozen clock) live in test/issuer/ and are not repeated here except where the
 * HTTP path does its own verification (introspection).
 */
import { Writable } from 'node:stream';
import { request as httpRequest } from 'node:http';
import { createRemoteJWKSet } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueAccessToken, signAccessToken } from '../../src/issuer/token-issuer.js';
import type { AccessTokenClaims } from '../../src/issuer/token-claims.js';
import { TokenVerificationError } from '../../src/issuer/verification-error.js';
import { verifyAccessToken, type VerifyAccessTokenOptions } from '../../src/issuer/verify-access-token.js';
import { createLogger } from '../../src/server/logger.js';
import { sha256Hex } from '../../src/config/dev-keys.js';
import { auth, KEYS, startTestPdp, TEST_CALLERS, type TestPdp } from '../support/pdp-harness.js';

const PEP_RS_KEY = 'test-pep-and-resource-server-key';
import {
  b64json,
  completeTask,
  CRM_AUDIENCE,
  decide,
  decodePart,
  introspect,
  issueToken,
  redeem,
  registerTask,
  revoke,
  type TokenResponse,
} from './flow.js';

const MAX_TOKEN_TTL = 600; // below support-resolver's token_ttl (900), so the ring's cap is seen too
const REDEEM_WINDOW = 60;

/** Every log line the PDP writes during this file, at debug level. */
const logLines: string[] = [];
/** Every access token any test obtained: none may ever appear in a log line or an error body. */
const issued = new Set<string>();
/** Every error body any test received. */
const errorBodies: string[] = [];

let t: TestPdp;
beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  t = await startTestPdp({
    logger: createLogger('debug', sink),
    config: {
      issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys', max_token_ttl_seconds: MAX_TOKEN_TTL, redeem_window_seconds: REDEEM_WINDOW },
      // A caller that is both a PEP and a resource server (revocation: it acts on its own tokens only).
      callers: [...TEST_CALLERS, { id: 'pep-rs', role: ['pep', 'resource_server'], key_sha256: sha256Hex(PEP_RS_KEY), agents: ['*'] }],
    },
  });
});
afterAll(async () => {
  await t.close();
});

/** issueToken, remembering the token for the leak checks. */
async function token(options: Parameters<typeof issueToken>[1] = {}): Promise<Awaited<ReturnType<typeof issueToken>>> {
  const result = await issueToken(t, options);
  issued.add(result.token.access_token);
  return result;
}

/** Our error code, from our Error body (JSON requests) or from an RFC 6749 §5.2 body's `pdp_error` (form requests). */
function errorCode(res: request.Response): string {
  errorBodies.push(res.text);
  const body = res.body as { error: { code: string } | string; error_description?: string; pdp_error?: { code: string } };
  if (typeof body.error === 'object') return body.error.code;
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['pragma']).toBe('no-cache');
  expect(typeof body.error_description).toBe('string');
  // RFC 6749 §5.2: printable ASCII without " and \.
  expect(body.error_description).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/);
  return body.pdp_error?.code ?? `oauth:${body.error}`;
}

describe('the flow: register → decide → redeem → introspect → revoke → complete', () => {
  it('issues a token for an allow, which is active until revoked, and completion revokes the rest', async () => {
    const taskId = await registerTask(t);
    const decision = await decide(t, taskId);
    expect(decision).toMatchObject({ allow: true, granted_scopes: ['tickets:write'] });

    const res = await redeem(t, decision.decision_id).expect(201);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.body as TokenResponse;
    issued.add(body.access_token);
    expect(Object.keys(body).sort()).toEqual(['access_token', 'authorization_details', 'expires_in', 'jti', 'scope', 'token_type']);
    expect(body).toMatchObject({
      token_type: 'Bearer',
      scope: 'tickets:write',
      authorization_details: [{ type: 'crm', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }],
    });

    const active = await introspect(t, body.access_token).expect(200);
    expect(active.headers['cache-control']).toBe('no-store');
    expect(active.body).toMatchObject({
      active: true,
      token_type: 'Bearer',
      jti: body.jti,
      sub: 'support-resolver',
      client_id: 'pep-1',
      aud: CRM_AUDIENCE,
      scope: 'tickets:write',
      task_id: taskId,
      decision_id: decision.decision_id,
    });

    await revoke(t, body.access_token).expect(200);
    expect((await introspect(t, body.access_token)).body).toEqual({ active: false });

    // A second token on the same task, then the task completes: it is revoked with it.
    const second = await redeem(t, (await decide(t, taskId)).decision_id).expect(201);
    issued.add((second.body as TokenResponse).access_token);
    const completed = await completeTask(t, taskId).expect(200);
    expect(completed.body).toMatchObject({ status: 'completed', revoked_tokens: 1 });
    expect((await introspect(t, (second.body as TokenResponse).access_token)).body).toEqual({ active: false });
  });
});

describe('token lifetime', () => {
  it.each([
    { note: 'the ring maximum caps the agent TTL (900)', ttl: undefined, expiresIn: undefined, want: MAX_TOKEN_TTL },
    { note: 'a shorter TTL asked in the decision request', ttl: 120, expiresIn: undefined, want: 120 },
    { note: 'a task that expires sooner caps the token', ttl: undefined, expiresIn: 90, want: 90 },
  ])('$note: exp - iat = $want', async ({ ttl, expiresIn, want }) => {
    const { decision, token: body } = await token({ ...(ttl === undefined ? {} : { ttl }), ...(expiresIn === undefined ? {} : { expiresIn }) });
    const claims = decodePart(body.access_token, 1) as { iat: number; exp: number };
    expect(claims.iat).toBe(Math.floor(t.clock.now.getTime() / 1000));
    expect(claims.exp - claims.iat).toBe(want);
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(decision.token_ttl_seconds);
    expect(body.expires_in).toBe(want);
  });
});

describe('POST /v1/tokens refuses', () => {
  it.each([
    {
      note: 'an unknown decision id',
      code: 'decision_not_found',
      status: 404,
      setup: async () => ({ id: 'no-such-decision' }),
    },
    {
      note: 'a deny',
      code: 'decision_not_allowed',
      status: 409,
      setup: async () => {
        const d = await decide(t, await registerTask(t), { scopes: ['tickets:delete'] });
        expect(d.outcome).toBe('deny');
        return { id: d.decision_id };
      },
    },
    {
      note: 'a decision made for another caller',
      code: 'decision_wrong_caller',
      status: 403,
      setup: async () => ({ id: (await decide(t, await registerTask(t))).decision_id, key: KEYS.strictPep }),
    },
    {
      note: 'a replayed decision id',
      code: 'decision_already_redeemed',
      status: 409,
      setup: async () => {
        const d = await decide(t, await registerTask(t));
        issued.add(((await redeem(t, d.decision_id).expect(201)).body as TokenResponse).access_token);
        return { id: d.decision_id };
      },
    },
    {
      note: 'a decision past its redeem window',
      code: 'decision_expired',
      status: 409,
      setup: async () => {
        const d = await decide(t, await registerTask(t));
        t.clock.advance(REDEEM_WINDOW + 1);
        return { id: d.decision_id };
      },
    },
    {
      note: 'a decision whose task completed after the allow',
      code: 'task_not_active',
      status: 409,
      setup: async () => {
        const taskId = await registerTask(t);
        const d = await decide(t, taskId);
        await completeTask(t, taskId).expect(200);
        return { id: d.decision_id };
      },
    },
    {
      note: 'a decision whose task expired after the allow',
      code: 'task_not_active',
      status: 409,
      setup: async () => {
        const taskId = await registerTask(t, { expiresIn: 30 });
        const d = await decide(t, taskId);
        t.clock.advance(30);
        return { id: d.decision_id };
      },
    },
    {
      note: 'a decision whose task expires within the second (999 ms left, wherever the second boundary falls)',
      code: 'task_not_active',
      status: 409,
      setup: async () => {
        const taskId = await registerTask(t, { expiresIn: 30 });
        const d = await decide(t, taskId);
        t.clock.advance(29.001);
        return { id: d.decision_id };
      },
    },
  ])('$note: $status $code', async ({ setup, code, status }) => {
    const { id, key } = await setup() as { id: string; key?: string };
    const res = await redeem(t, id, key);
    expect(res.status).toBe(status);
    expect(errorCode(res)).toBe(code);
    expect(res.body).not.toHaveProperty('access_token');
  });

  it('redeems with a second left of the task, and the token ends by the task\'s end', async () => {
    const taskId = await registerTask(t, { expiresIn: 30 });
    const d = await decide(t, taskId);
    t.clock.advance(29);
    const res = await redeem(t, d.decision_id).expect(201);
    const body = res.body as TokenResponse;
    issued.add(body.access_token);
    expect(body.expires_in).toBe(1);
  });

  it('does not burn a decision on a refused attempt: the right caller still redeems it after the wrong one', async () => {
    const d = await decide(t, await registerTask(t));
    expect(errorCode(await redeem(t, d.decision_id, KEYS.strictPep).expect(403))).toBe('decision_wrong_caller');
    issued.add(((await redeem(t, d.decision_id).expect(201)).body as TokenResponse).access_token);
  });

  it('redeems a decision exactly once when redemptions race', async () => {
    const d = await decide(t, await registerTask(t));
    const results = await Promise.all(Array.from({ length: 8 }, () => redeem(t, d.decision_id)));
    const won = results.filter((r) => r.status === 201);
    expect(won).toHaveLength(1);
    issued.add((won[0]?.body as TokenResponse).access_token);
    for (const r of results.filter((x) => x.status !== 201)) {
      expect([r.status, errorCode(r)]).toEqual([409, 'decision_already_redeemed']);
    }
  });
});

describe('POST /v1/introspect', () => {
  /** A real token with its payload changed and its signature kept. */
  const withPayload = (jwt: string, change: Record<string, unknown>): string => {
    const [h, p, s] = jwt.split('.');
    const payload = { ...JSON.parse(Buffer.from(p ?? '', 'base64url').toString('utf8')), ...change };
    return `${h}.${b64json(payload)}.${s}`;
  };

  it.each([
    { note: 'garbage', make: async () => 'not-a-token' },
    { note: 'a JWT-shaped string', make: async () => `${b64json({ alg: 'EdDSA' })}.${b64json({})}.AAAA` },
    {
      note: 'a real token re-headed with alg none and no signature',
      make: async () => {
        const { token: b } = await token();
        return `${b64json({ ...decodePart(b.access_token, 0), alg: 'none' })}.${b.access_token.split('.')[1]}.`;
      },
    },
    {
      note: 'a real token bound to another customer by editing its payload',
      make: async () => {
        const { token: b } = await token();
        const details = [{ type: 'crm', actions: ['tickets:write'], identifier: '5678', resource_type: 'customer' }];
        return withPayload(b.access_token, { authorization_details: details });
      },
    },
    {
      note: 'a well-signed token the PDP never issued (no record)',
      make: async () => {
        const forged = await issueAccessToken({
          keyRing: t.pdp.keys.ring,
          issuer: t.pdp.config.issuer.issuer,
          agent_id: 'support-resolver',
          caller_id: 'pep-1',
          integration: 'crm',
          scopes: ['tickets:write'],
          task_id: 'task-none',
          decision_id: 'dec-none',
          ttl_seconds: 60,
          now: t.clock.now,
        });
        return forged.access_token;
      },
    },
    {
      note: 'an expired token (clock past exp)',
      make: async () => {
        const { token: b } = await token({ ttl: 60 });
        t.clock.advance(60);
        return b.access_token;
      },
    },
    ...[
      { what: 'another scope', claims: { scope: 'tickets:read tickets:write', authorization_details: [{ type: 'crm', actions: ['tickets:read', 'tickets:write'], identifier: '1234', resource_type: 'customer' }] } },
      { what: 'another customer', claims: { authorization_details: [{ type: 'crm', actions: ['tickets:write'], identifier: '5678', resource_type: 'customer' }] } },
      { what: 'a later exp', claims: { exp: 0 } },
      { what: 'another integration', claims: { authorization_details: [{ type: 'github', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }] } },
      { what: 'a second integration', claims: { authorization_details: [{ type: 'crm', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }, { type: 'github', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }] } },
    ].map(({ what, claims }) => ({
      note: `a real token's claims with ${what}, re-signed with the PDP's own key (a leaked signing key cannot widen a token)`,
      make: async () => {
        const { token: b } = await token();
        const real = decodePart(b.access_token, 1) as unknown as AccessTokenClaims;
        const widened = { ...real, ...claims, ...(claims.exp === 0 ? { exp: real.exp + 60 } : {}) } as AccessTokenClaims;
        return (await signAccessToken(t.pdp.keys.ring, widened)).access_token;
      },
    })),
    {
      note: 'a revoked token',
      make: async () => {
        const { token: b } = await token();
        await revoke(t, b.access_token).expect(200);
        return b.access_token;
      },
    },
    {
      note: 'a token whose task completed',
      make: async () => {
        const { token: b, taskId } = await token();
        await completeTask(t, taskId).expect(200);
        return b.access_token;
      },
    },
    {
      note: 'a token whose task expired',
      make: async () => {
        const { token: b } = await token({ expiresIn: 120 });
        t.clock.advance(120);
        return b.access_token;
      },
    },
  ])('answers exactly { active: false } for $note', async ({ make }) => {
    const jwt = await make();
    for (const key of [KEYS.resource, KEYS.pep]) {
      const res = await introspect(t, jwt, key).expect(200);
      expect(res.body).toStrictEqual({ active: false });
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('answers active for a token whose task context was asserted by a trusted PEP (a task never registered)', async () => {
    const d = await request(t.url)
      .post('/v1/decide')
      .set(auth(KEYS.pep))
      .send({
        agent_id: 'support-resolver',
        task: { id: 'asserted-task-1', type: 'complaint_resolution', context: { customer_id: '1234' } },
        integration: 'crm',
        scopes: ['tickets:write'],
        resource: { type: 'customer', id: '1234' },
      })
      .expect(200);
    expect(d.body).toMatchObject({ outcome: 'allow' });
    const b = (await redeem(t, (d.body as { decision_id: string }).decision_id).expect(201)).body as TokenResponse;
    issued.add(b.access_token);
    expect((await introspect(t, b.access_token)).body).toMatchObject({ active: true, task_id: 'asserted-task-1' });
  });

  it('records each introspection in the audit trail as a use of the token, by the introspecting caller', async () => {
    const { token: b, decision } = await token();
    await introspect(t, b.access_token).expect(200);
    await revoke(t, b.access_token).expect(200);
    await introspect(t, b.access_token).expect(200);
    const uses = [];
    for await (const e of t.pdp.store.iterateEvents({ jti: b.jti, types: ['token.used'] })) uses.push(e);
    expect(uses.map((e) => [e.caller_id, e.decision_id, e.data])).toEqual([
      ['crm-api', decision.decision_id, { action: 'introspect', active: true }],
      ['crm-api', decision.decision_id, { action: 'introspect', active: false }],
    ]);
    const chain = await t.pdp.store.decisionChain(decision.decision_id);
    expect(chain.map((e) => e.type)).toEqual(['decision', 'token.issued', 'token.used', 'token.revoked', 'token.used']);
  });

  it('records the introspection of a token long expired too (inactive), but not of a token that is not ours', async () => {
    const { token: b } = await token();
    t.clock.advance(b.expires_in + 3600);
    expect((await introspect(t, b.access_token).expect(200)).body).toEqual({ active: false });
    const uses = [];
    for await (const e of t.pdp.store.iterateEvents({ jti: b.jti, types: ['token.used'] })) uses.push(e);
    expect(uses.map((e) => [e.caller_id, e.data])).toEqual([['crm-api', { action: 'introspect', active: false }]]);
    // One byte changed: not a token of ours, nothing to record.
    const head = await t.pdp.store.chainHead();
    const forged = b.access_token.slice(0, -2) + (b.access_token.endsWith('AA') ? 'BB' : 'AA');
    expect((await introspect(t, forged).expect(200)).body).toEqual({ active: false });
    expect(await t.pdp.store.chainHead()).toEqual(head);
  });
});

describe('closing a task revokes its tokens', () => {
  it.each([
    {
      note: 'completion',
      reason: 'task_completed',
      close: async (taskId: string) => {
        await completeTask(t, taskId).expect(200);
      },
    },
    {
      note: 'expiry (the sweep)',
      reason: 'task_expired',
      close: async () => {
        t.clock.advance(300);
        await t.pdp.tasks.expireDue();
      },
    },
  ])('on $note, every token of the task is marked revoked in the store', async ({ close, reason }) => {
    const taskId = await registerTask(t, { expiresIn: 300 });
    const jtis: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await redeem(t, (await decide(t, taskId)).decision_id).expect(201);
      issued.add((res.body as TokenResponse).access_token);
      jtis.push((res.body as TokenResponse).jti);
    }
    await close(taskId);
    for (const jti of jtis) {
      expect(await t.pdp.store.getToken(jti)).toMatchObject({ revoked_at: t.clock.now.toISOString(), revoke_reason: reason });
    }
  });
});

describe('POST /v1/revoke', () => {
  it.each([
    { note: 'an unknown token', token: 'no-such-token' },
    { note: 'a JWT-shaped string', token: `${b64json({ alg: 'EdDSA', kid: 'x' })}.${b64json({ jti: 'x' })}.AAAA` },
  ])('answers 200 with an empty body for $note', async ({ token: value }) => {
    const res = await revoke(t, value).expect(200);
    expect(res.text).toBe('');
  });

  it('a caller that is both a PEP and a resource server revokes only its own tokens, as it introspects only its own', async () => {
    const { token: b } = await token();
    await revoke(t, b.access_token, PEP_RS_KEY).expect(200);
    expect((await introspect(t, b.access_token)).body).toMatchObject({ active: true, jti: b.jti });
  });

  it('lets another PEP revoke nothing of pep-1: 200, and the token stays active', async () => {
    const { token: b } = await token();
    await revoke(t, b.access_token, KEYS.strictPep).expect(200);
    expect((await introspect(t, b.access_token)).body).toMatchObject({ active: true, jti: b.jti });
    expect(await t.pdp.store.getToken(b.jti)).toMatchObject({ revoked_at: null });
  });

  it('lets a resource server revoke a token presented to it (a leaked one): inactive at once, the resource server recorded', async () => {
    const { token: b } = await token();
    await revoke(t, b.access_token, KEYS.resource).expect(200);
    expect((await introspect(t, b.access_token)).body).toEqual({ active: false });
    const stored = await t.pdp.store.getToken(b.jti);
    expect(stored).toMatchObject({ revoke_reason: 'revoked_by_caller' });
    expect(stored?.revoked_by).toBe('crm-api');
    const revocations = [];
    for await (const e of t.pdp.store.iterateEvents({ jti: b.jti, types: ['token.revoked'] })) revocations.push(e);
    expect(revocations).toHaveLength(1);
    expect(revocations[0]?.caller_id).toBe(stored?.revoked_by);
  });

  it('revokes a token of its own caller, once; a second revocation is still 200', async () => {
    const { token: b } = await token();
    await revoke(t, b.access_token).expect(200);
    await revoke(t, b.access_token).expect(200);
    expect(await t.pdp.store.getToken(b.jti)).toMatchObject({ revoked_by: 'pep-1', revoke_reason: 'revoked_by_caller' });
    const revocations = [];
    for await (const e of t.pdp.store.iterateEvents({ jti: b.jti, types: ['token.revoked'] })) revocations.push(e);
    expect(revocations).toHaveLength(1);
  });
});

describe('credentials and roles', () => {
  const endpoints = [
    { path: '/v1/tokens', body: { decision_id: 'd' }, roles: { wrong: KEYS.resource } },
    { path: '/v1/introspect', body: { token: 'x' }, roles: { wrong: KEYS.orchestrator } },
    { path: '/v1/revoke', body: { token: 'x' }, roles: { wrong: KEYS.auditor } },
  ];

  it.each(endpoints)('$path: 401 without credentials and with an unknown key', async ({ path, body }) => {
    const none = await request(t.url).post(path).send(body);
    expect([none.status, errorCode(none)]).toEqual([401, 'unauthenticated']);
    expect(none.headers['www-authenticate']).toMatch(/Bearer realm="agent-pdp"/);
    const unknown = await request(t.url).post(path).set(auth('not-a-key')).send(body);
    expect([unknown.status, errorCode(unknown)]).toEqual([401, 'unauthenticated']);
  });

  it.each(endpoints)('$path: 403 for a caller of another role', async ({ path, body, roles }) => {
    const res = await request(t.url).post(path).set(auth(roles.wrong)).send(body);
    expect([res.status, errorCode(res)]).toEqual([403, 'forbidden_role']);
  });

  it('a token presented as an API key does not authenticate', async () => {
    const { token: b } = await token();
    const res = await request(t.url).post('/v1/introspect').set(auth(b.access_token)).type('form').send({ token: b.access_token });
    expect([res.status, errorCode(res)]).toEqual([401, 'unauthenticated']);
  });

  it('an introspection or revocation without credentials changes and records nothing', async () => {
    const { token: b } = await token();
    await request(t.url).post('/v1/revoke').type('form').send({ token: b.access_token }).expect(401);
    await request(t.url).post('/v1/introspect').type('form').send({ token: b.access_token }).expect(401);
    expect(await t.pdp.store.getToken(b.jti)).toMatchObject({ revoked_at: null });
    const uses = [];
    for await (const e of t.pdp.store.iterateEvents({ jti: b.jti, types: ['token.used'] })) uses.push(e);
    expect(uses).toEqual([]);
  });
});

describe('introspecting a token again (its verification is remembered, its state is not)', () => {
  it('a token introspected before stays refused once revoked, expired, or changed in one byte', async () => {
    const { token: b } = await token();
    expect((await introspect(t, b.access_token)).body).toMatchObject({ active: true });
    const [head, payload, signature] = b.access_token.split('.') as [string, string, string];
    const flipped = `${head}.${payload}.${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`;
    expect((await introspect(t, flipped)).body).toEqual({ active: false });
    const otherPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')), scope: 'tickets:delete' })).toString('base64url');
    expect((await introspect(t, `${head}.${otherPayload}.${signature}`)).body).toEqual({ active: false });
    await revoke(t, b.access_token).expect(200);
    expect((await introspect(t, b.access_token)).body).toEqual({ active: false });

    const { token: c } = await token();
    expect((await introspect(t, c.access_token)).body).toMatchObject({ active: true });
    t.clock.advance(c.expires_in + 6);
    expect((await introspect(t, c.access_token)).body).toEqual({ active: false });
  });
});

describe('who may introspect what (RFC 7662 §4)', () => {
  it('a PEP sees only the tokens issued to itself; a resource server sees every token', async () => {
    const { token: b } = await token();
    expect((await introspect(t, b.access_token, KEYS.strictPep)).body).toEqual({ active: false });
    expect((await introspect(t, b.access_token, KEYS.pep)).body).toMatchObject({ active: true, client_id: 'pep-1' });
    expect((await introspect(t, b.access_token, KEYS.resource)).body).toMatchObject({ active: true, client_id: 'pep-1' });
  });
});

describe('parameters sent without a value are treated as omitted (RFC 6749 §3.2)', () => {
  it('resource= and client_id= beside Basic redeem as if absent; grant_type= is a missing grant_type (invalid_request)', async () => {
    const decision = await decide(t, await registerTask(t));
    const basic = `Basic ${Buffer.from(`pep-1:${KEYS.pep}`).toString('base64')}`;
    const ok = await request(t.url).post('/v1/tokens').set('authorization', basic).type('form').send({ grant_type: 'urn:agent-pdp:params:oauth:grant-type:decision', decision_id: decision.decision_id, resource: '', client_id: '' });
    expect(ok.status, ok.text).toBe(200);
    issued.add(ok.body.access_token);
    const missing = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).type('form').send({ grant_type: '', decision_id: decision.decision_id });
    expect([missing.status, missing.body.error]).toEqual([400, 'invalid_request']);
    expect(missing.body.pdp_error.details).toEqual([expect.objectContaining({ path: 'grant_type' })]);
  });
});

describe('an OAuth error echoing the client\'s value (RFC 6749 §5.2 error_description)', () => {
  it('a decision id with a line break, a quote and a right-to-left override: error_description stays in the ASCII subset, pdp_error keeps the text', async () => {
    const odd = 'a"b\\c\nd\u202ee';
    const res = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).type('form').send({ grant_type: 'urn:agent-pdp:params:oauth:grant-type:decision', decision_id: odd });
    expect(res.status).toBe(400);
    const body = res.body as { error: string; error_description: string; pdp_error: { message: string } };
    expect(body.error_description).toMatch(/^[\x20\x21\x23-\x5b\x5d-\x7e]*$/);
    expect(errorCode(res)).toBe('decision_not_found');
    expect(body.pdp_error.message).toContain(odd);
    expect(body.error_description).toContain("a'b/c?d?e");
  });
});

describe('request encodings (RFC 7662 / RFC 7009 say form; JSON is accepted too)', () => {
  it.each(['/v1/introspect', '/v1/revoke'])('%s takes token= form-encoded and { token } as JSON', async (path) => {
    for (const encode of [(r: request.Test, b: object) => r.type('form').send(b), (r: request.Test, b: object) => r.send(b)]) {
      const { token: b } = await token();
      await encode(request(t.url).post(path).set(auth(KEYS.pep)), { token: b.access_token, token_type_hint: 'access_token' }).expect(200);
      const after = (await introspect(t, b.access_token, KEYS.pep)).body as { active: boolean };
      expect(after.active).toBe(path === '/v1/introspect');
    }
  });

  it.each([
    { path: '/v1/introspect', form: true },
    { path: '/v1/introspect', form: false },
    { path: '/v1/revoke', form: true },
    { path: '/v1/revoke', form: false },
  ])('$path without a token (form: $form) is 400 naming the field token', async ({ path, form }) => {
    const r = request(t.url).post(path).set(auth(KEYS.pep));
    const res = await (form ? r.type('form').send({ token_type_hint: 'access_token' }) : r.send({}));
    expect([res.status, errorCode(res)]).toEqual([400, 'invalid_request']);
    const body = res.body as { error: { details: Array<{ path: string }> } | string; pdp_error?: { details: Array<{ path: string }> } };
    const details = typeof body.error === 'object' ? body.error.details : (body.pdp_error?.details ?? []);
    expect(details.map((d) => d.path)).toEqual(['token']);
  });

  it('a token repeated in a form body is refused, not picked from', async () => {
    const { token: b } = await token();
    const res = await request(t.url).post('/v1/introspect').set(auth(KEYS.resource)).type('form').send(`token=${b.access_token}&token=x`);
    expect([res.status, errorCode(res)]).toEqual([400, 'invalid_request']);
  });
});

describe('a resource server holding only the JWKS URL and verifyAccessToken', () => {
  let jwt: string;
  let options: VerifyAccessTokenOptions;
  beforeAll(async () => {
    jwt = (await token()).token.access_token;
    options = {
      jwks: createRemoteJWKSet(new URL(`${t.url}/.well-known/jwks.json`)),
      issuer: t.pdp.config.issuer.issuer,
      audience: CRM_AUDIENCE,
      integration: 'crm',
      scope: 'tickets:write',
      resource: { type: 'customer', id: '1234' },
      currentDate: t.clock.now,
    };
  });

  it('accepts the token for customer 1234, tickets:write on crm', async () => {
    await expect(verifyAccessToken(jwt, options)).resolves.toMatchObject({ client_id: 'pep-1', sub: 'support-resolver' });
  });

  it.each([
    { note: 'customer 5678', change: () => ({ resource: { type: 'customer', id: '5678' } }), code: 'token_wrong_resource' },
    { note: 'no record named', change: () => ({ resource: undefined }), code: 'token_wrong_resource' },
    { note: 'another scope (tickets:delete)', change: () => ({ scope: 'tickets:delete' }), code: 'token_scope_insufficient' },
    { note: 'another integration (mail)', change: () => ({ integration: 'mail' }), code: 'token_wrong_integration' },
    { note: "another integration's audience", change: () => ({ audience: 'https://mail.example.com' }), code: 'token_wrong_audience' },
    { note: 'a time past exp + tolerance', change: () => ({ currentDate: new Date(options.currentDate!.getTime() + (MAX_TOKEN_TTL + 6) * 1000) }), code: 'token_expired' },
  ])('refuses it for $note: $code', async ({ change, code }) => {
    const err = await verifyAccessToken(jwt, { ...options, ...change() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenVerificationError);
    expect((err as TokenVerificationError).code).toBe(code);
  });
});

describe('secrets stay out of logs and error bodies', () => {
  it('no log line and no error body carries an access token', async () => {
    // Some failures that see a token: a bad field next to it, a redeem with it as decision id.
    const { token: b } = await token();
    const extra = await request(t.url).post('/v1/introspect').set(auth(KEYS.resource)).send({ token: b.access_token, extra: 1 });
    expect(errorCode(extra)).toBe('invalid_request');
    const asId = await request(t.url).post('/v1/tokens').set(auth(KEYS.pep)).send({ decision_id: b.access_token });
    expect(errorCode(asId)).toBe('invalid_request');

    expect(issued.size).toBeGreaterThan(20);
    expect(logLines.some((l) => l.includes('"route":"/v1/introspect"'))).toBe(true);
    const signatures = [...issued].map((jwt) => jwt.split('.')[2] ?? '');
    for (const text of [...logLines, ...errorBodies]) {
      for (const [i, jwt] of [...issued].entries()) {
        expect(text.includes(jwt) || text.includes(signatures[i] ?? '')).toBe(false);
      }
    }
    for (const key of Object.values(KEYS)) expect(logLines.join('').includes(key)).toBe(false);
  });
});

describe('several Authorization headers (node keeps only the first)', () => {
  const send = (path: string, headers: Record<string, string | string[]>, body: string): Promise<{ status: number; body: Record<string, any> }> =>
    new Promise((ok, fail) => {
      const url = new URL(path, t.url);
      const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => ok({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, any> }));
      });
      req.on('error', fail);
      req.end(body);
    });

  it('are one malformed credential: 401, whichever comes first, on the OAuth endpoints and every other route', async () => {
    const basic = `Basic ${Buffer.from(`crm-api:${KEYS.resource}`).toString('base64')}`;
    for (const pair of [[`Bearer ${KEYS.resource}`, basic], ['Bearer wrong', basic], [basic, 'Bearer wrong']]) {
      const res = await send('/v1/introspect', { authorization: pair, 'content-type': 'application/x-www-form-urlencoded' }, 'token=x');
      expect(res.status).toBe(401);
      expect(res.body['error']).toBe('invalid_client');
    }
    const decide = await send('/v1/decide', { authorization: [`Bearer ${KEYS.pep}`, `Bearer ${KEYS.pep}`], 'content-type': 'application/json' }, '{}');
    expect(decide.status).toBe(401);
    // One header still works.
    expect((await send('/v1/introspect', { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, 'token=x')).body).toEqual({ active: false });
  });
});
