/**
 * One signing key: generating it, reading it from PEM, and its public JWK. The `kid` of a key is its RFC 7638
 * JWK thumbprint, so a key file can be checked against the index that names it, and a kid is always a safe
 * file name. Private keys are imported as non-extractable WebCrypto keys: once loaded, the material cannot be
 * read back out of the process's key ring.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, importPKCS8 } from 'jose';
import type { CryptoKey } from 'jose';
import type { AccessTokenAlg } from './token-claims.js';

/** How each signing algorithm maps to a key type: one row per supported `alg`. */
export const SIGNING_ALGS = {
  EdDSA: { kty: 'OKP', crv: 'Ed25519', nodeKeyType: 'ed25519', namedCurve: undefined },
  ES256: { kty: 'EC', crv: 'P-256', nodeKeyType: 'ec', namedCurve: 'prime256v1' },
} as const satisfies Record<AccessTokenAlg, { kty: string; crv: string; nodeKeyType: string; namedCurve: string | undefined }>;

/** A kid is a base64url SHA-256 thumbprint: 43 characters, safe as a file name. */
export const KID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** A public signing key as published in the JWKS. Only these members exist; never a private one. */
export interface PublicJwk {
  kty: 'OKP' | 'EC';
  crv: 'Ed25519' | 'P-256';
  x: string;
  /** EC keys only. */
  y?: string;
  kid: string;
  alg: AccessTokenAlg;
  use: 'sig';
}

/**
 * A key that can sign: `key` is a non-extractable private CryptoKey (for jose); `sign` signs a JWS signing input
 * with the same key through node:crypto, synchronously (a third of WebCrypto's CPU per token), its key object held
 * in the closure only.
 */
export interface SigningKey {
  readonly kid: string;
  readonly alg: AccessTokenAlg;
  readonly key: CryptoKey;
  readonly jwk: Readonly<PublicJwk>;
  /** The JWS signature of `signingInput` (`base64url(header).base64url(payload)`): raw bytes, as RFC 7515/7518 say. */
  readonly sign: (signingInput: Buffer) => Buffer;
}

export function isSigningAlg(value: unknown): value is AccessTokenAlg {
  return typeof value === 'string' && Object.hasOwn(SIGNING_ALGS, value);
}

/** A fresh private key for `alg`, as PKCS#8 PEM. */
export function generatePrivateKeyPem(alg: AccessTokenAlg): string {
  const { privateKey } = alg === 'EdDSA'
    ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('ec', { namedCurve: SIGNING_ALGS.ES256.namedCurve });
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

/** The `alg` a key object can sign with, or undefined for any other key type (RSA, X25519, P-384...). */
export function algOfKey(key: KeyObject): AccessTokenAlg | undefined {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  return undefined;
}

/** The public JWK of `key` (private or public), with its thumbprint kid. Built by allowlist of members. */
export async function publicJwkOf(key: KeyObject, alg: AccessTokenAlg): Promise<PublicJwk> {
  if (algOfKey(key) !== alg) throw new TypeError(`key is not a ${SIGNING_ALGS[alg].crv} key, as ${alg} requires`);
  const exported = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'jwk' });
  const { kty, crv } = SIGNING_ALGS[alg];
  if (typeof exported.x !== 'string') throw new TypeError('public key has no "x" coordinate');
  const members = kty === 'EC' ? { crv, kty, x: exported.x, y: String(exported.y) } : { crv, kty, x: exported.x };
  const kid = await calculateJwkThumbprint(members, 'sha256');
  return { kty, crv, x: members.x, ...(kty === 'EC' ? { y: String(exported.y) } : {}), kid, alg, use: 'sig' };
}

/**
 * Reads a PKCS#8 (or SEC1 / PKCS#1) private key PEM into a signing key. `alg` defaults to the one the key type
 * implies; a key of another type than `alg` requires is refused with a TypeError.
 */
export async function signingKeyFromPem(pem: string, alg?: AccessTokenAlg): Promise<SigningKey> {
  const keyObject = createPrivateKey(pem);
  const keyAlg = alg ?? algOfKey(keyObject);
  if (keyAlg === undefined) throw new TypeError('private key is neither Ed25519 (EdDSA) nor P-256 (ES256)');
  const jwk = await publicJwkOf(keyObject, keyAlg);
  const pkcs8 = keyObject.export({ format: 'pem', type: 'pkcs8' }).toString();
  const key = await importPKCS8(pkcs8, keyAlg, { extractable: false });
  return Object.freeze({ kid: jwk.kid, alg: keyAlg, key, jwk: Object.freeze(jwk), sign: jwsSigner(keyObject, keyAlg) });
}

/** EdDSA: Ed25519 over the input (RFC 8037). ES256: ECDSA P-256 / SHA-256, r || s of 32 bytes each (RFC 7518 §3.4). */
function jwsSigner(keyObject: KeyObject, alg: AccessTokenAlg): (signingInput: Buffer) => Buffer {
  return alg === 'EdDSA'
    ? (input) => cryptoSign(null, input, keyObject)
    : (input) => cryptoSign('sha256', input, { key: keyObject, dsaEncoding: 'ieee-p1363' });
}

/** Reads a public (SPKI) or private PEM and returns only its public JWK. */
export async function publicJwkFromPem(pem: string): Promise<PublicJwk> {
  const keyObject = createPublicKey(pem);
  const alg = algOfKey(keyObject);
  if (alg === undefined) throw new TypeError('public key is neither Ed25519 (EdDSA) nor P-256 (ES256)');
  return publicJwkOf(keyObject, alg);
}

/** Validates a public JWK read back from the key index: exactly the published members, kid = thumbprint. */
export async function parsePublicJwk(value: unknown): Promise<PublicJwk> {
  if (typeof value !== 'object' || value === null) throw new TypeError('jwk is not an object');
  const v = value as Record<string, unknown>;
  const allowed = new Set(['kty', 'crv', 'x', 'y', 'kid', 'alg', 'use']);
  const extra = Object.keys(v).find((name) => !allowed.has(name));
  if (extra !== undefined) throw new TypeError(`jwk has a member that is never published: "${extra}"`);
  if (!isSigningAlg(v.alg)) throw new TypeError('jwk "alg" is not EdDSA or ES256');
  const members: JsonWebKey = { kty: String(v.kty), crv: String(v.crv), x: String(v.x) };
  if (v.y !== undefined) members.y = String(v.y);
  const parsed = await publicJwkOf(createPublicKey({ key: members, format: 'jwk' }), v.alg);
  if (parsed.kid !== v.kid) throw new TypeError('jwk "kid" is not the thumbprint of the key');
  return parsed;
}
