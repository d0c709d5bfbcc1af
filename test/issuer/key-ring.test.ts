import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLocalJWKSet } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { PdpError } from '../../src/errors/pdp-error.js';
import { RETIRED_KEY_GRACE_SECONDS } from '../../src/issuer/key-index.js';
import { publicJwks } from '../../src/issuer/jwks.js';
import { loadKeyRing, loadKeyRingFromPem, rotateKeys } from '../../src/issuer/key-ring.js';
import type { KeyRing } from '../../src/issuer/key-ring.js';
import { issueAccessToken } from '../../src/issuer/token-issuer.js';
import { verifyAccessToken } from '../../src/issuer/verify-access-token.js';
import { ISSUER, MAX_TTL, NOW, removeTempDirs, tempKeyDir, tokenRequest } from './fixtures.js';

afterAll(removeTempDirs);

const later = (seconds: number) => new Date(NOW.getTime() + seconds * 1000);
const load = (dir: string, now = NOW) => loadKeyRing(dir, { now, maxTokenTtlSeconds: MAX_TTL });
const mode = (path: string) => statSync(path).mode & 0o777;
const kids = (ring: KeyRing) => publicJwks(ring).keys.map((k) => k.kid);
const index = (dir: string) => JSON.parse(readFileSync(join(dir, 'keys.json'), 'utf8')) as { keys: Array<Record<string, unknown>> };

function verifyAgainst(ring: KeyRing, token: string, currentDate: Date) {
  return verifyAccessToken(token, {
    jwks: createLocalJWKSet(publicJwks(ring)), issuer: ISSUER, audience: 'crm', integration: 'crm',
    scope: 'tickets:read', resource: { type: 'customer', id: '1234' }, currentDate,
  });
}

async function storeFailure(promise: Promise<unknown>): Promise<PdpError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PdpError);
  return err as PdpError;
}

describe('first start', () => {
  it('creates the folder 0700 with an index and two private keys, all 0600', async () => {
    const dir = tempKeyDir();
    const ring = await load(dir);
    expect(mode(dir)).toBe(0o700);
    const files = readdirSync(dir).sort();
    expect(files).toEqual([...kids(ring).map((kid) => `${kid}.pem`), 'keys.json'].sort());
    for (const file of files) expect([file, mode(join(dir, file))]).toEqual([file, 0o600]);
    expect(index(dir).keys.map((k) => k.state).sort()).toEqual(['active', 'next']);
    expect(readFileSync(join(dir, 'keys.json'), 'utf8')).not.toMatch(/"d"/);
  });

  it('publishes the next key beside the active one, and signs with the active one only', async () => {
    const ring = await load(tempKeyDir());
    expect(ring.publishedKeys.map((k) => k.state)).toEqual(['active', 'next']);
    expect(ring.signingKey.kid).toBe(ring.publishedKeys[0]!.kid);
    expect(ring.signingKey.key.extractable).toBe(false);
    expect(Object.isFrozen(ring) && Object.isFrozen(ring.publishedKeys)).toBe(true);
  });

  it('loads the same keys on the next start', async () => {
    const dir = tempKeyDir();
    const first = await load(dir);
    const second = await load(dir, later(60));
    expect(second.signingKey.kid).toBe(first.signingKey.kid);
    expect(kids(second)).toEqual(kids(first));
  });

  it('two processes starting at once end up with one key set', async () => {
    const dir = tempKeyDir();
    const [a, b] = await Promise.all([load(dir), load(dir)]);
    expect(a.signingKey.kid).toBe(b.signingKey.kid);
    expect(readdirSync(dir).filter((f) => f.endsWith('.pem'))).toHaveLength(2);
  });

  it('generates ES256 keys when asked', async () => {
    const ring = await loadKeyRing(tempKeyDir(), { alg: 'ES256', now: NOW, maxTokenTtlSeconds: MAX_TTL });
    expect(publicJwks(ring).keys.map(({ kty, crv, alg }) => [kty, crv, alg])).toEqual([['EC', 'P-256', 'ES256'], ['EC', 'P-256', 'ES256']]);
    const issued = await issueAccessToken(tokenRequest(ring));
    await expect(verifyAgainst(ring, issued.access_token, NOW)).resolves.toBeDefined();
  });
});

describe('rotation', () => {
  it('signs with the key published as next before it, and keeps old tokens verifiable', async () => {
    const dir = tempKeyDir();
    const before = await load(dir);
    const oldToken = (await issueAccessToken(tokenRequest(before, { ttl_seconds: MAX_TTL }))).access_token;
    const nextKid = before.publishedKeys.find((k) => k.state === 'next')!.kid;

    const rotation = await rotateKeys(dir, later(600));
    const after = await load(dir, later(600));
    expect(rotation).toMatchObject({ active: nextKid, retired: before.signingKey.kid, removed: [] });
    expect(after.signingKey.kid).toBe(nextKid);
    expect(kids(before)).toContain(after.signingKey.kid); // published before it signed
    expect(after.publishedKeys.map((k) => [k.kid, k.state])).toEqual([
      [nextKid, 'active'], [rotation.next, 'next'], [before.signingKey.kid, 'retired'],
    ]);
    await expect(verifyAgainst(after, oldToken, later(600))).resolves.toBeDefined();
  });

  it('deletes the retired private key and writes the new one 0600', async () => {
    const dir = tempKeyDir();
    const before = await load(dir);
    const rotation = await rotateKeys(dir, later(60));
    expect(existsSync(join(dir, `${before.signingKey.kid}.pem`))).toBe(false);
    expect(mode(join(dir, `${rotation.next}.pem`))).toBe(0o600);
    expect(mode(join(dir, 'keys.json'))).toBe(0o600);
  });

  it('drops a retired key from the JWKS once its tokens have expired, and then from the index', async () => {
    const dir = tempKeyDir();
    const before = await load(dir);
    const token = (await issueAccessToken(tokenRequest(before))).access_token;
    await rotateKeys(dir, NOW);
    const window = MAX_TTL + RETIRED_KEY_GRACE_SECONDS;
    expect(kids(await load(dir, later(window - 1)))).toContain(before.signingKey.kid);
    const gone = await load(dir, later(window));
    expect(kids(gone)).not.toContain(before.signingKey.kid);
    const err = await verifyAgainst(gone, token, NOW).catch((e: { code: string }) => e);
    expect(err).toMatchObject({ code: 'token_unknown_key' });

    const second = await rotateKeys(dir, later(window), { maxTokenTtlSeconds: MAX_TTL });
    expect(second.removed).toEqual([before.signingKey.kid]);
    expect(index(dir).keys.map((k) => k.kid)).not.toContain(before.signingKey.kid);
  });

  it('needs an existing key folder', async () => {
    expect((await storeFailure(rotateKeys(tempKeyDir(), NOW))).code).toBe('issuer_unavailable');
  });
});

describe('a tampered key folder is refused', () => {
  it.each([
    { note: 'private key readable by others', tamper: (dir: string, kid: string) => chmodSync(join(dir, `${kid}.pem`), 0o644), message: /chmod 600/ },
    { note: 'index writable by others', tamper: (dir: string) => chmodSync(join(dir, 'keys.json'), 0o666), message: /chmod 600/ },
    { note: 'folder writable by others', tamper: (dir: string) => chmodSync(dir, 0o777), message: /chmod 700/ },
    {
      note: 'active key file replaced by another key',
      tamper: (dir: string, kid: string) => {
        const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
        writeFileSync(join(dir, `${kid}.pem`), pem, { mode: 0o600 });
      },
      message: /another key/,
    },
    {
      note: 'a public key injected into the index with a private member',
      tamper: (dir: string) => {
        const doc = index(dir);
        (doc.keys[0]!.jwk as Record<string, unknown>).d = 'AAAA';
        writeFileSync(join(dir, 'keys.json'), JSON.stringify(doc), { mode: 0o600 });
      },
      message: /never published/,
    },
    {
      note: 'two active keys',
      tamper: (dir: string) => {
        const doc = index(dir);
        for (const k of doc.keys) Object.assign(k, { state: 'active', activated_at: k.created_at });
        writeFileSync(join(dir, 'keys.json'), JSON.stringify(doc), { mode: 0o600 });
      },
      message: /2 "active" keys/,
    },
    { note: 'not JSON', tamper: (dir: string) => writeFileSync(join(dir, 'keys.json'), '{', { mode: 0o600 }), message: /not JSON/ },
  ])('$note', async ({ tamper, message }) => {
    const dir = tempKeyDir();
    const ring = await load(dir);
    tamper(dir, ring.signingKey.kid);
    const err = await storeFailure(load(dir));
    expect(err.code).toBe('issuer_unavailable');
    expect(err.message).toMatch(message);
  });
});

describe('loadKeyRingFromPem', () => {
  const pem = (type: 'ed25519' | 'rsa', part: 'privateKey' | 'publicKey' = 'privateKey') => {
    const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519');
    return part === 'privateKey'
      ? pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
      : pair.publicKey.export({ format: 'pem', type: 'spki' }).toString();
  };

  it('signs with the active PEM and publishes next and retired public keys', async () => {
    const ring = await loadKeyRingFromPem({ active: pem('ed25519'), next: pem('ed25519', 'publicKey'), retired: [pem('ed25519')] }, { maxTokenTtlSeconds: MAX_TTL });
    expect(ring.publishedKeys.map((k) => k.state)).toEqual(['active', 'next', 'retired']);
    const issued = await issueAccessToken(tokenRequest(ring));
    await expect(verifyAgainst(ring, issued.access_token, NOW)).resolves.toBeDefined();
    expect(JSON.stringify(publicJwks(ring))).not.toMatch(/"d"/);
  });

  it('refuses a key of another type, or one that does not match the configured alg', async () => {
    expect((await storeFailure(loadKeyRingFromPem({ active: pem('rsa') }, { maxTokenTtlSeconds: MAX_TTL }))).code).toBe('config_invalid');
    expect((await storeFailure(loadKeyRingFromPem({ active: pem('ed25519') }, { alg: 'ES256', maxTokenTtlSeconds: MAX_TTL }))).code).toBe('config_invalid');
  });
});
