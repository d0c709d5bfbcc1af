/**
 * Key rotation on a running PDP, seen by a resource server that verifies with jose against the JWKS over HTTP:
 * the key that signs after a rotation was published before it, a retired key stays published while its tokens
 * can live, and leaves once they cannot. The rotation itself is the CLI's `rotateKeys` on the PDP's key folder.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RETIRED_KEY_GRACE_SECONDS } from '../../src/issuer/key-index.js';
import { rotateKeys } from '../../src/issuer/key-ring.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { CRM_AUDIENCE, introspect, issueToken } from './flow.js';

const MAX_TOKEN_TTL = 3600; // the config default

let t: TestPdp;
let keyDir: string;
beforeAll(async () => {
  t = await startTestPdp();
  keyDir = join(t.dir, 'data', 'keys');
});
afterAll(async () => {
  await t.close();
});

const jwksUrl = () => new URL(`${t.url}/.well-known/jwks.json`);

async function publishedKids(): Promise<string[]> {
  const res = await request(t.url).get('/.well-known/jwks.json').expect(200);
  return (res.body as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
}

async function verify(jwt: string, jwks = createRemoteJWKSet(jwksUrl())): Promise<string> {
  const { protectedHeader } = await jwtVerify(jwt, jwks, { issuer: t.pdp.config.issuer.issuer, audience: CRM_AUDIENCE, typ: 'at+jwt', currentDate: t.clock.now });
  return protectedHeader.kid ?? '';
}

const reload = () => request(t.url).post('/v1/admin/reload').set(auth(KEYS.admin)).expect(200);

describe('key rotation without downtime', () => {
  it('keeps the key folder private: 0700, and 0600 for every file', () => {
    expect(statSync(keyDir).mode & 0o777).toBe(0o700);
    const files = readdirSync(keyDir);
    expect(files.filter((f) => f.endsWith('.pem'))).toHaveLength(2);
    for (const file of files) expect(statSync(join(keyDir, file)).mode & 0o777).toBe(0o600);
  });

  it('publishes the next key before it signs, keeps the retired key for its tokens, then drops it', async () => {
    const [active, next] = await publishedKids();
    const before = await issueToken(t);
    expect(decodeProtectedHeader(before.token.access_token).kid).toBe(active);

    // A verifier that fetched the JWKS before the rotation, and keeps its cached copy.
    const cached = createRemoteJWKSet(jwksUrl());
    expect(await verify(before.token.access_token, cached)).toBe(active);

    const rotation = await rotateKeys(keyDir, t.clock.now, { maxTokenTtlSeconds: MAX_TOKEN_TTL });
    expect(rotation).toMatchObject({ active: next, retired: active, removed: [] });
    expect(existsSync(join(keyDir, `${active}.pem`))).toBe(false); // a retired key never signs again
    await reload();
    expect(await publishedKids()).toEqual([next, rotation.next, active]);

    const after = await issueToken(t);
    expect(decodeProtectedHeader(after.token.access_token).kid).toBe(next);
    // Both verify: the old token against the retired key, the new one against the cached set with no refetch.
    expect(await verify(before.token.access_token)).toBe(active);
    expect(await verify(after.token.access_token, cached)).toBe(next);
    expect(cached.jwks()?.keys.map((k) => k.kid)).toEqual([active, next]);
    expect((await introspect(t, before.token.access_token)).body).toMatchObject({ active: true });

    // Just inside the retired key's window it is still published...
    t.clock.advance(MAX_TOKEN_TTL + RETIRED_KEY_GRACE_SECONDS - 10);
    await reload();
    expect(await publishedKids()).toContain(active);

    // ...and past it, the next rotation removes it from the folder and the JWKS.
    t.clock.advance(20);
    const second = await rotateKeys(keyDir, t.clock.now, { maxTokenTtlSeconds: MAX_TOKEN_TTL });
    expect(second).toMatchObject({ active: rotation.next, retired: next, removed: [active] });
    await reload();
    expect(await publishedKids()).toEqual([rotation.next, second.next, next]);
    expect(readFileSync(join(keyDir, 'keys.json'), 'utf8')).not.toContain(active);
    const err = await verify(before.token.access_token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(errors.JWKSNoMatchingKey);
  });
});
