import fc from 'fast-check';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PdpError } from '../../src/errors/pdp-error.js';
import { publicJwks } from '../../src/issuer/jwks.js';
import { loadKeyRing } from '../../src/issuer/key-ring.js';
import type { KeyRing } from '../../src/issuer/key-ring.js';
import { issueAccessToken } from '../../src/issuer/token-issuer.js';
import { decodePart, ISSUER, MAX_TTL, NOW, NOW_S, removeTempDirs, tempKeyDir, tokenRequest } from './fixtures.js';

let ring: KeyRing;
beforeAll(async () => {
  ring = await loadKeyRing(tempKeyDir(), { now: NOW, maxTokenTtlSeconds: MAX_TTL });
});
afterAll(removeTempDirs);

describe('issueAccessToken', () => {
  it('writes an RFC 9068 header and exactly the agreed claims', async () => {
    const issued = await issueAccessToken(tokenRequest(ring));
    expect(decodeProtectedHeader(issued.access_token)).toEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: ring.signingKey.kid });
    const detail = { type: 'crm', actions: ['tickets:read', 'tickets:write'], identifier: '1234', resource_type: 'customer' };
    expect(decodePart(issued.access_token, 1)).toEqual({
      iss: ISSUER, sub: 'support-resolver', aud: 'crm', client_id: 'support-middleware', iat: NOW_S, exp: NOW_S + 300,
      jti: issued.jti, scope: 'tickets:read tickets:write', authorization_details: [detail], task_id: 'task-42', decision_id: 'dec-7',
    });
    expect(issued).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'tickets:read tickets:write', authorization_details: [detail], iat: NOW_S, exp: NOW_S + 300 });
  });

  it('verifies with plain jose against the published JWKS, without our helper', async () => {
    const issued = await issueAccessToken(tokenRequest(ring));
    const { payload, protectedHeader } = await jwtVerify(issued.access_token, createLocalJWKSet(publicJwks(ring)), {
      issuer: ISSUER, audience: 'crm', typ: 'at+jwt', algorithms: ['EdDSA'], currentDate: NOW,
    });
    expect([payload.sub, protectedHeader.kid]).toEqual(['support-resolver', ring.signingKey.kid]);
  });

  it.each(['EdDSA', 'ES256'] as const)('%s: a token signed through node:crypto verifies with plain jose (raw r||s for ES256), and one changed byte does not', async (alg) => {
    const keys = await loadKeyRing(tempKeyDir(), { alg, now: NOW, maxTokenTtlSeconds: MAX_TTL });
    const jwks = createLocalJWKSet(publicJwks(keys));
    const options = { issuer: ISSUER, audience: 'crm', typ: 'at+jwt', algorithms: [alg], currentDate: NOW };
    for (let i = 0; i < 20; i++) {
      const { access_token: token } = await issueAccessToken(tokenRequest(keys));
      expect((await jwtVerify(token, jwks, options)).protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: keys.signingKey.kid });
      const [head, payload, signature] = token.split('.') as [string, string, string];
      const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
      await expect(jwtVerify(`${head}.${payload}.${flipped}`, jwks, options)).rejects.toThrow();
    }
  });

  it('uses the configured audience, and omits identifier and resource_type when unbound', async () => {
    const issued = await issueAccessToken(tokenRequest(ring, { audience: 'https://crm.example.com', resource: undefined, scopes: ['tickets:read', 'tickets:read'] }));
    const claims = decodePart(issued.access_token, 1);
    expect(claims.aud).toBe('https://crm.example.com');
    expect(claims.authorization_details).toEqual([{ type: 'crm', actions: ['tickets:read'] }]);
  });

  it('gives every token a fresh 128-bit base64url jti', async () => {
    const jtis = await Promise.all(Array.from({ length: 50 }, async () => (await issueAccessToken(tokenRequest(ring))).jti));
    expect(new Set(jtis).size).toBe(50);
    for (const jti of jtis) expect(Buffer.from(jti, 'base64url')).toHaveLength(16);
  });

  it('never lets exp - iat exceed the TTL, the ring maximum, or the task expiry', async () => {
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 2 * MAX_TTL }),
      fc.option(fc.integer({ min: 1000, max: 3 * MAX_TTL * 1000 }), { nil: undefined }),
      fc.integer({ min: 0, max: 999 }),
      async (ttl, taskMs, nowMs) => {
        const now = new Date(NOW.getTime() + nowMs);
        const taskExpiresAt = taskMs === undefined ? undefined : new Date(now.getTime() + taskMs);
        const issued = await issueAccessToken(tokenRequest(ring, { ttl_seconds: ttl, task_expires_at: taskExpiresAt, now }));
        const claims = decodePart(issued.access_token, 1) as { iat: number; exp: number };
        expect(claims.exp - claims.iat).toBeLessThanOrEqual(Math.min(ttl, MAX_TTL));
        expect(claims.exp - claims.iat).toBeGreaterThan(0);
        if (taskExpiresAt) expect(claims.exp * 1000).toBeLessThanOrEqual(taskExpiresAt.getTime());
        expect([issued.expires_in, issued.iat, issued.exp]).toEqual([claims.exp - claims.iat, claims.iat, claims.exp]);
      },
    ), { numRuns: 200 });
  });

  it('caps at the task expiry', async () => {
    const issued = await issueAccessToken(tokenRequest(ring, { ttl_seconds: 300, task_expires_at: new Date((NOW_S + 42) * 1000 + 900) }));
    expect(issued.expires_in).toBe(42);
  });

  it('refuses a task that expires before the token could be used', async () => {
    const err = await issueAccessToken(tokenRequest(ring, { task_expires_at: new Date(NOW.getTime() + 500) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PdpError);
    expect((err as PdpError).code).toBe('task_not_active');
  });

  it.each([
    { note: 'no scopes', input: { scopes: [] } },
    { note: 'a scope with a space', input: { scopes: ['tickets:read tickets:delete'] } },
    { note: 'a zero TTL', input: { ttl_seconds: 0 } },
    { note: 'a fractional TTL', input: { ttl_seconds: 1.5 } },
    { note: 'an invalid now', input: { now: new Date(Number.NaN) } },
    { note: 'an empty agent id', input: { agent_id: '' } },
    { note: 'a resource without id', input: { resource: { type: 'customer', id: '' } } },
  ])('treats $note as misuse (TypeError)', async ({ input }) => {
    await expect(issueAccessToken(tokenRequest(ring, input))).rejects.toThrow(TypeError);
  });
});
