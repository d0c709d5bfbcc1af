/**
 * A resource server that knows nothing of agent-pdp's code: it reads the RFC 8414 metadata and the JWKS over
 * HTTP and verifies a token with plain `jose`. This file imports nothing from src/ (the harness starts the PDP;
 * flow.ts speaks HTTP only), so a token the service signs must verify with the public keys alone.
 */
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { CRM_AUDIENCE, issueToken } from './flow.js';

let t: TestPdp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe('a token from POST /v1/tokens verifies with jose against the JWKS fetched over HTTP', () => {
  it.each([
    { note: 'EdDSA keys, the integration file audience', alg: 'EdDSA', audiences: {}, aud: CRM_AUDIENCE, kty: 'OKP' },
    { note: 'ES256 keys, an audience set in the config', alg: 'ES256', audiences: { crm: 'urn:example:crm' }, aud: 'urn:example:crm', kty: 'EC' },
  ])('$note', async ({ alg, audiences, aud, kty }) => {
    t = await startTestPdp({ config: { issuer: { issuer: 'http://127.0.0.1:8181', keys: 'data/keys', alg, audiences } } });
    const { taskId, decision, token } = await issueToken(t);

    const metadata = await getJson(`${t.url}/.well-known/oauth-authorization-server`);
    expect(metadata).toMatchObject({ jwks_uri: `${String(metadata['issuer'])}/.well-known/jwks.json` });
    expect(metadata['authorization_details_types_supported']).toContain('crm');
    const jwks = (await getJson(`${t.url}/.well-known/jwks.json`)) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).toHaveLength(2); // the active key and the next one, published before it signs
    for (const key of jwks.keys) {
      expect(Object.keys(key).filter((m) => !['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use'].includes(m))).toEqual([]);
      expect(key).toMatchObject({ kty, alg, use: 'sig' });
    }

    const { payload, protectedHeader } = await jwtVerify(token.access_token, createRemoteJWKSet(new URL(`${t.url}/.well-known/jwks.json`)), {
      issuer: String(metadata['issuer']),
      audience: aud,
      typ: 'at+jwt',
      algorithms: ['EdDSA', 'ES256'],
      currentDate: t.clock.now,
    });

    expect(protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: jwks.keys[0]?.['kid'] });
    const iat = Math.floor(t.clock.now.getTime() / 1000);
    expect(payload).toStrictEqual({
      iss: metadata['issuer'],
      sub: 'support-resolver',
      aud,
      client_id: 'pep-1',
      iat,
      exp: iat + Math.min(decision.token_ttl_seconds, 3600),
      jti: token.jti,
      scope: 'tickets:write',
      authorization_details: [{ type: 'crm', actions: ['tickets:write'], identifier: '1234', resource_type: 'customer' }],
      task_id: taskId,
      decision_id: decision.decision_id,
    });
    expect(payload.exp! - payload.iat!).toBeLessThanOrEqual(decision.token_ttl_seconds);
    expect(token.expires_in).toBe(payload.exp! - payload.iat!);
    expect(decodeProtectedHeader(token.access_token).kid).toBe(protectedHeader.kid);
  });
});
