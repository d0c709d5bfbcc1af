import { afterAll, describe, expect, it } from 'vitest';
import { publicJwks } from '../../src/issuer/jwks.js';
import { loadKeyRing, rotateKeys } from '../../src/issuer/key-ring.js';
import type { KeyRing } from '../../src/issuer/key-ring.js';
import { authorizationServerMetadata, DECISION_GRANT_TYPE } from '../../src/issuer/metadata.js';
import { MAX_TTL, NOW, removeTempDirs, tempKeyDir } from './fixtures.js';

afterAll(removeTempDirs);

const PUBLIC_MEMBERS = new Set(['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use']);

describe('publicJwks', () => {
  it.each(['EdDSA', 'ES256'] as const)('holds only public members for %s keys in every state', async (alg) => {
    const dir = tempKeyDir();
    await loadKeyRing(dir, { alg, now: NOW, maxTokenTtlSeconds: MAX_TTL });
    await rotateKeys(dir, NOW);
    const { keys } = publicJwks(await loadKeyRing(dir, { now: NOW, maxTokenTtlSeconds: MAX_TTL }));
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      expect(Object.keys(key).filter((m) => !PUBLIC_MEMBERS.has(m))).toEqual([]);
      expect(key).toMatchObject({ alg, use: 'sig' });
    }
  });

  it('copies by allowlist: a private member in the ring never reaches the JWKS', async () => {
    const ring = await loadKeyRing(tempKeyDir(), { now: NOW, maxTokenTtlSeconds: MAX_TTL });
    const leaky: KeyRing = { ...ring, publishedKeys: ring.publishedKeys.map((k) => ({ ...k, jwk: { ...k.jwk, d: 'secret', p: 'secret' } })) };
    expect(JSON.stringify(publicJwks(leaky))).not.toContain('secret');
  });
});

describe('authorizationServerMetadata', () => {
  it('names the issuer, the endpoints and the integrations', () => {
    const metadata = authorizationServerMetadata('https://pdp.example.com', { authorizationDetailsTypes: ['mail', 'crm', 'crm'] });
    expect(metadata).toEqual({
      issuer: 'https://pdp.example.com',
      jwks_uri: 'https://pdp.example.com/.well-known/jwks.json',
      token_endpoint: 'https://pdp.example.com/v1/tokens',
      introspection_endpoint: 'https://pdp.example.com/v1/introspect',
      revocation_endpoint: 'https://pdp.example.com/v1/revoke',
      response_types_supported: [],
      grant_types_supported: [DECISION_GRANT_TYPE],
      token_endpoint_auth_methods_supported: expect.any(Array),
      introspection_endpoint_auth_methods_supported: expect.any(Array),
      revocation_endpoint_auth_methods_supported: expect.any(Array),
      authorization_details_types_supported: ['crm', 'mail'],
    });
  });

  it('keeps a path and drops a trailing slash when building endpoints, but keeps issuer verbatim', () => {
    const metadata = authorizationServerMetadata('https://example.com/pdp/', { authorizationDetailsTypes: [] });
    expect([metadata.issuer, metadata.token_endpoint]).toEqual(['https://example.com/pdp/', 'https://example.com/pdp/v1/tokens']);
  });

  it.each(['pdp.example.com', 'ftp://pdp.example.com', 'https://pdp.example.com/?a=1', 'https://pdp.example.com/#x'])(
    'refuses the issuer %s',
    (issuer) => {
      expect(() => authorizationServerMetadata(issuer, { authorizationDetailsTypes: [] })).toThrow(TypeError);
    },
  );
});
