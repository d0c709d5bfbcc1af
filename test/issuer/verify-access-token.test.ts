import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createLocalJWKSet } from 'jose';
import type { JWTVerifyGetKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicJwks } from '../../src/issuer/jwks.js';
import { loadKeyRing, loadKeyRingFromPem } from '../../src/issuer/key-ring.js';
import type { KeyRing } from '../../src/issuer/key-ring.js';
import { issueAccessToken } from '../../src/issuer/token-issuer.js';
import { TokenVerificationError } from '../../src/issuer/verification-error.js';
import { verifyAccessToken } from '../../src/issuer/verify-access-token.js';
import type { VerifyAccessTokenOptions } from '../../src/issuer/verify-access-token.js';
import { b64json, claimsFor, decodePart, ISSUER, MAX_TTL, NOW, NOW_S, removeTempDirs, signWith, tempKeyDir, tokenRequest } from './fixtures.js';

let ring: KeyRing;
let stranger: KeyRing; // a key ring the issuer never published
let jwks: JWTVerifyGetKey;
let token: string; // crm, tickets:read + tickets:write, bound to customer 1234

beforeAll(async () => {
  ring = await loadKeyRing(tempKeyDir(), { now: NOW, maxTokenTtlSeconds: MAX_TTL });
  stranger = await loadKeyRing(tempKeyDir(), { now: NOW, maxTokenTtlSeconds: MAX_TTL });
  jwks = createLocalJWKSet(publicJwks(ring));
  token = (await issueAccessToken(tokenRequest(ring))).access_token;
});
afterAll(removeTempDirs);

function options(overrides: Partial<VerifyAccessTokenOptions> = {}): VerifyAccessTokenOptions {
  return {
    jwks,
    issuer: ISSUER,
    audience: 'crm',
    integration: 'crm',
    scope: 'tickets:write',
    resource: { type: 'customer', id: '1234' },
    currentDate: NOW,
    ...overrides,
  };
}

async function refusal(promise: Promise<unknown>): Promise<TokenVerificationError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(TokenVerificationError);
  return err as TokenVerificationError;
}

const publicPem = () => {
  const { x } = ring.signingKey.jwk;
  // SPKI of an Ed25519 key: fixed 12-byte prefix + the 32-byte public key.
  const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(x, 'base64url')]);
  return `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`;
};

/** A token signed with HMAC-SHA256 whose secret is the issuer's public key: the classic confusion attack. */
function hs256WithPublicKey(secret: string): string {
  const input = `${b64json({ alg: 'HS256', typ: 'at+jwt', kid: ring.signingKey.kid })}.${b64json(claimsFor())}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

describe('verifyAccessToken accepts', () => {
  it('a token for its own integration, scope and record, and returns its claims', async () => {
    const claims = await verifyAccessToken(token, options());
    expect(claims).toMatchObject({ sub: 'support-resolver', client_id: 'support-middleware', task_id: 'task-42', decision_id: 'dec-7' });
  });

  it('typ application/at+jwt', async () => {
    const t = await signWith(ring, claimsFor(), { typ: 'application/at+jwt' });
    await expect(verifyAccessToken(t, options())).resolves.toMatchObject({ sub: 'support-resolver' });
  });

  it('an unbound token for any record, and without naming one', async () => {
    const unbound = (await issueAccessToken(tokenRequest(ring, { resource: null }))).access_token;
    await expect(verifyAccessToken(unbound, options({ resource: { type: 'customer', id: '5678' } }))).resolves.toBeDefined();
    await expect(verifyAccessToken(unbound, options({ resource: undefined }))).resolves.toBeDefined();
  });
});

describe('verifyAccessToken refuses forged tokens', () => {
  const header = () => ({ alg: 'EdDSA', typ: 'at+jwt', kid: ring.signingKey.kid });

  it.each([
    { note: 'alg none, empty signature', code: 'token_alg_not_allowed',
      forge: async () => `${b64json({ ...header(), alg: 'none' })}.${b64json(claimsFor())}.` },
    { note: 'HS256 with the public key PEM as HMAC secret', code: 'token_alg_not_allowed',
      forge: async () => hs256WithPublicKey(publicPem()) },
    { note: 'HS256 with the public JWK JSON as HMAC secret', code: 'token_alg_not_allowed',
      forge: async () => hs256WithPublicKey(JSON.stringify(publicJwks(ring).keys[0])) },
    { note: 'a key the issuer never published (unknown kid)', code: 'token_unknown_key',
      forge: async () => signWith(stranger, claimsFor()) },
    { note: 'the issuer kid, signed by another key', code: 'token_invalid',
      forge: async () => signWith(stranger, claimsFor(), { kid: ring.signingKey.kid }) },
    { note: 'payload changed to another customer, original signature', code: 'token_invalid',
      forge: async () => {
        const [head, , sig] = token.split('.');
        const payload = decodePart(token, 1);
        (payload.authorization_details as Array<Record<string, unknown>>)[0]!.identifier = '5678';
        return `${head}.${b64json(payload)}.${sig}`;
      } },
    { note: 'payload changed to a wider scope, original signature', code: 'token_invalid',
      forge: async () => {
        const [head, , sig] = token.split('.');
        return `${head}.${b64json({ ...decodePart(token, 1), scope: 'tickets:read tickets:write tickets:delete' })}.${sig}`;
      } },
    { note: 'not a JWS at all', code: 'token_invalid', forge: async () => 'not.a.token' },
  ])('$note → $code', async ({ forge, code }) => {
    const err = await refusal(verifyAccessToken(await forge(), options()));
    expect(err.code).toBe(code);
  });

  it('a validly signed token without kid is refused, even when the JWKS holds that one key only', async () => {
    const single = await loadKeyRingFromPem({ active: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() }, { maxTokenTtlSeconds: MAX_TTL });
    const t = await signWith(single, claimsFor(), { kid: undefined });
    const err = await refusal(verifyAccessToken(t, options({ jwks: createLocalJWKSet(publicJwks(single)) })));
    expect(err.code).toBe('token_unknown_key');
  });

  it('HS256 with the public key as secret is refused even by a resolver that hands out the key bytes', async () => {
    // A naive resolver returning the public key PEM as bytes would make HMAC verification succeed; only
    // the alg allowlist, checked before any key lookup, stops it.
    const naive: JWTVerifyGetKey = async () => new TextEncoder().encode(publicPem());
    const err = await refusal(verifyAccessToken(hs256WithPublicKey(publicPem()), options({ jwks: naive })));
    expect(err.code).toBe('token_alg_not_allowed');
  });

  it.each([
    { note: 'typ JWT (an ID token or other JWT)', header: { typ: 'JWT' }, claims: {}, code: 'token_wrong_type' },
    { note: 'no typ', header: { typ: undefined }, claims: {}, code: 'token_wrong_type' },
    { note: 'missing task_id', header: {}, claims: { task_id: undefined }, code: 'token_invalid' },
    { note: 'authorization_details not a list', header: {}, claims: { authorization_details: { type: 'crm' } }, code: 'token_invalid' },
    { note: 'actions not a list of strings', header: {}, claims: { authorization_details: [{ type: 'crm', actions: 'tickets:write' }] }, code: 'token_invalid' },
  ])('a validly signed token with $note → $code', async ({ header, claims, code }) => {
    const t = await signWith(ring, claimsFor(claims), header);
    expect((await refusal(verifyAccessToken(t, options()))).code).toBe(code);
  });
});

describe('verifyAccessToken refuses a genuine token used elsewhere', () => {
  it.each([
    { note: 'another audience', opts: { audience: 'billing' }, code: 'token_wrong_audience' },
    { note: 'another issuer', opts: { issuer: 'https://evil.example.com' }, code: 'token_wrong_issuer' },
    { note: 'another customer', opts: { resource: { type: 'customer', id: '5678' } }, code: 'token_wrong_resource' },
    { note: 'the same id of another record type', opts: { resource: { type: 'order', id: '1234' } }, code: 'token_wrong_resource' },
    { note: 'a bound token without naming a record', opts: { resource: undefined }, code: 'token_wrong_resource' },
    { note: 'a scope it does not grant', opts: { scope: 'tickets:delete' }, code: 'token_scope_insufficient' },
    { note: 'another integration behind the same audience', opts: { integration: 'billing' }, code: 'token_wrong_integration' },
  ])('$note → $code', async ({ opts, code }) => {
    expect((await refusal(verifyAccessToken(token, options(opts)))).code).toBe(code);
  });

  it('a scope named in authorization_details but missing from the scope claim', async () => {
    const t = await signWith(ring, claimsFor({ scope: 'tickets:read' }));
    expect((await refusal(verifyAccessToken(t, options()))).code).toBe('token_scope_insufficient');
  });
});

describe('verifyAccessToken judges time on a frozen clock', () => {
  const at = (seconds: number) => new Date((NOW_S + seconds) * 1000);
  it.each([
    { note: 'expired 3 s ago, 5 s tolerance', currentDate: at(303), tolerance: 5, code: null },
    { note: 'expired 10 s ago, 5 s tolerance', currentDate: at(310), tolerance: 5, code: 'token_expired' },
    { note: 'at exp, no tolerance', currentDate: at(300), tolerance: 0, code: 'token_expired' },
    { note: 'issued 3 s in the future, 5 s tolerance', currentDate: at(-3), tolerance: 5, code: null },
    { note: 'issued 10 s in the future, 5 s tolerance', currentDate: at(-10), tolerance: 5, code: 'token_not_yet_valid' },
    { note: 'issued 10 s in the future, default tolerance', currentDate: at(-10), tolerance: undefined, code: 'token_not_yet_valid' },
  ])('$note → $code', async ({ currentDate, tolerance, code }) => {
    const result = verifyAccessToken(token, options({ currentDate, ...(tolerance === undefined ? {} : { clockTolerance: tolerance }) }));
    if (code === null) await expect(result).resolves.toBeDefined();
    else expect((await refusal(result)).code).toBe(code);
  });

  it('nbf 10 s in the future → token_not_yet_valid', async () => {
    const t = await signWith(ring, claimsFor({ iat: NOW_S - 60, nbf: NOW_S + 10 }));
    expect((await refusal(verifyAccessToken(t, options()))).code).toBe('token_not_yet_valid');
  });
});

describe('verifyAccessToken errors', () => {
  it('never carry the token, its signature or its claims', async () => {
    const signature = token.split('.')[2]!;
    for (const opts of [{ audience: 'billing' }, { resource: { type: 'customer', id: '5678' } }, { currentDate: new Date(NOW.getTime() + 3_600_000) }]) {
      const err = await refusal(verifyAccessToken(token, options(opts)));
      const seen = `${err.message} ${err.stack ?? ''} ${JSON.stringify(err)} ${String(err.cause)}`;
      expect(seen).not.toContain(signature);
      expect(seen).not.toContain(token.split('.')[1]!);
      expect(seen).not.toContain('support-resolver');
      expect(err.cause).toBeUndefined();
    }
  });

  it('a JWKS that cannot be fetched is jwks_unavailable (503, not exposed), not the token\'s fault', async () => {
    const down: JWTVerifyGetKey = async () => { throw new TypeError('fetch failed'); };
    const err = await refusal(verifyAccessToken(token, options({ jwks: down })));
    expect([err.code, err.status, err.expose, err.oauthError]).toEqual(['jwks_unavailable', 503, false, null]);
  });

  it('map scope and record refusals to 403 insufficient_scope, the rest to 401 invalid_token', async () => {
    const scope = await refusal(verifyAccessToken(token, options({ scope: 'tickets:delete' })));
    const audience = await refusal(verifyAccessToken(token, options({ audience: 'billing' })));
    expect([scope.status, scope.oauthError, audience.status, audience.oauthError]).toEqual([403, 'insufficient_scope', 401, 'invalid_token']);
  });

  it('misuse is a TypeError', async () => {
    await expect(verifyAccessToken(token, options({ scope: '' }))).rejects.toThrow(TypeError);
    await expect(verifyAccessToken(token, options({ clockTolerance: -1 }))).rejects.toThrow(TypeError);
  });
});
