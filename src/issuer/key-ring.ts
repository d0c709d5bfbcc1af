/**
 * The key ring: the one key that signs and every key the JWKS publishes, loaded from the key folder (created on
 * first start) or from PEM text, frozen, and injected into the token issuer. Rotation (`rotateKeys`) is for the
 * CLI; reloading after it (on SIGHUP) is the caller's: this module holds no state and starts no timers.
 */
import { PdpError } from '../errors/pdp-error.js';
import { isPublished, newKeyRecord, parseKeyIndex, rotateIndex } from './key-index.js';
import type { KeyIndexV1, KeyRecord, KeyState } from './key-index.js';
import * as store from './key-store.js';
import { generatePrivateKeyPem, publicJwkFromPem, signingKeyFromPem } from './signing-key.js';
import type { PublicJwk, SigningKey } from './signing-key.js';
import type { AccessTokenAlg } from './token-claims.js';

export interface PublishedKey {
  readonly kid: string;
  readonly alg: AccessTokenAlg;
  readonly state: KeyState;
  readonly jwk: Readonly<PublicJwk>;
}

export interface KeyRing {
  /** The one key that signs (state `active`). */
  readonly signingKey: SigningKey;
  /** Every key in the JWKS: the active key, then the next one, then retired ones still within their window. */
  readonly publishedKeys: readonly PublishedKey[];
  /** Upper bound of any token's lifetime; the issuer caps every token at it. */
  readonly maxTokenTtlSeconds: number;
}

export interface LoadKeyRingOptions {
  /** Algorithm of keys generated on first start. Default `EdDSA`. Existing keys keep their own. */
  alg?: AccessTokenAlg;
  /** The time that decides which retired keys are still published. Required. */
  now: Date;
  /** Longest token lifetime: retired keys stay published this long (plus a grace) after retiring. Required. */
  maxTokenTtlSeconds: number;
}

export interface RotateKeysOptions {
  /** Algorithm of the new `next` key. Default: that of the current active key. */
  alg?: AccessTokenAlg;
  /** When given, retired keys past their publication window are dropped from the index. Default: keep them. */
  maxTokenTtlSeconds?: number;
}

/** What a rotation did, by kid. */
export interface KeyRotation {
  active: string;
  next: string;
  retired: string;
  removed: string[];
}

/** PEM text for a key ring managed outside agent-pdp (a secrets manager). The caller reads the files. */
export interface PemKeys {
  /** The private key that signs (PKCS#8, SEC1 or PKCS#1 PEM). */
  active: string;
  /** The key that will sign after the next swap, published now (public or private PEM). Default: none. */
  next?: string;
  /** Keys that signed tokens which may still be live (public or private PEM). Default: none. */
  retired?: readonly string[];
}

/** Loads the key ring from `dir`, generating an active and a next key there on first start. */
export async function loadKeyRing(dir: string, options: LoadKeyRingOptions): Promise<KeyRing> {
  const { alg = 'EdDSA', now, maxTokenTtlSeconds } = options;
  checkTtl(maxTokenTtlSeconds);
  checkNow(now);
  store.prepareDirectory(dir);
  const index = (await readIndex(dir)) ?? (await createIndex(dir, alg, now));
  const signingKey = await loadPrivateKey(dir, record(index, 'active'));
  await loadPrivateKey(dir, record(index, 'next')); // it signs after the next rotation: find out now if it cannot
  const published = index.keys.filter((k) => isPublished(k, now, maxTokenTtlSeconds)).map(({ kid, alg: a, state, jwk }) => ({ kid, alg: a, state, jwk }));
  return freezeRing(signingKey, published, maxTokenTtlSeconds);
}

/** Promotes next → active, active → retired (its private key is deleted), and creates a new next key. */
export async function rotateKeys(dir: string, now: Date, options: RotateKeysOptions = {}): Promise<KeyRotation> {
  checkNow(now);
  if (options.maxTokenTtlSeconds !== undefined) checkTtl(options.maxTokenTtlSeconds);
  store.prepareDirectory(dir);
  const index = await readIndex(dir);
  if (index === undefined) throw store.storeError(dir, `has no ${store.INDEX_FILE} yet: start the server once to create the keys`);
  const next = await loadPrivateKey(dir, record(index, 'next'));
  const fresh = await generateKey(dir, options.alg ?? record(index, 'active').alg);
  const rotated = rotateIndex(index, newKeyRecord(fresh.jwk, 'next', now), now, options.maxTokenTtlSeconds);
  store.writeIndex(dir, rotated.index, 'replace');
  for (const kid of [rotated.retired, ...rotated.removed]) store.removePrivateKey(dir, kid);
  return { active: next.kid, next: fresh.kid, retired: rotated.retired, removed: rotated.removed };
}

/** A key ring from PEM text instead of a key folder; rotation is then done by swapping the PEMs. */
export async function loadKeyRingFromPem(pems: PemKeys, options: { maxTokenTtlSeconds: number; alg?: AccessTokenAlg }): Promise<KeyRing> {
  checkTtl(options.maxTokenTtlSeconds);
  try {
    const signingKey = await signingKeyFromPem(pems.active, options.alg);
    const published: PublishedKey[] = [{ kid: signingKey.kid, alg: signingKey.alg, state: 'active', jwk: signingKey.jwk }];
    const others = [...(pems.next === undefined ? [] : [['next', pems.next] as const]), ...(pems.retired ?? []).map((pem) => ['retired', pem] as const)];
    for (const [state, pem] of others) {
      const jwk = await publicJwkFromPem(pem);
      if (!published.some((k) => k.kid === jwk.kid)) published.push({ kid: jwk.kid, alg: jwk.alg, state, jwk });
    }
    return freezeRing(signingKey, published, options.maxTokenTtlSeconds);
  } catch (cause) {
    throw new PdpError('config_invalid', `issuer key PEM: ${(cause as Error).message}`, { expose: false, cause });
  }
}

function checkTtl(seconds: number): void {
  if (!Number.isInteger(seconds) || seconds <= 0) throw new TypeError('"maxTokenTtlSeconds" must be a positive integer');
}

function checkNow(now: Date): void {
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new TypeError('"now" must be a valid Date');
}

async function readIndex(dir: string): Promise<KeyIndexV1 | undefined> {
  const text = store.readIndexText(dir);
  if (text === undefined) return undefined;
  try {
    return await parseKeyIndex(text);
  } catch (cause) {
    throw store.storeError(dir, `${store.INDEX_FILE} ${(cause as Error).message}`, cause);
  }
}

/** First start: an active and a next key. If another process created the index meanwhile, its keys win. */
async function createIndex(dir: string, alg: AccessTokenAlg, now: Date): Promise<KeyIndexV1> {
  store.tightenDirectory(dir);
  const active = await generateKey(dir, alg);
  const next = await generateKey(dir, alg);
  const index: KeyIndexV1 = { version: 1, keys: [newKeyRecord(active.jwk, 'active', now), newKeyRecord(next.jwk, 'next', now)] };
  if (store.writeIndex(dir, index, 'create')) return index;
  store.removePrivateKey(dir, active.kid);
  store.removePrivateKey(dir, next.kid);
  const theirs = await readIndex(dir);
  if (theirs === undefined) throw store.storeError(dir, `${store.INDEX_FILE} vanished while it was being created`);
  return theirs;
}

async function generateKey(dir: string, alg: AccessTokenAlg): Promise<SigningKey> {
  const pem = generatePrivateKeyPem(alg);
  const key = await signingKeyFromPem(pem, alg);
  store.writePrivateKey(dir, key.kid, pem);
  return key;
}

async function loadPrivateKey(dir: string, entry: KeyRecord): Promise<SigningKey> {
  const pem = store.readPrivateKey(dir, entry.kid);
  let key: SigningKey;
  try {
    key = await signingKeyFromPem(pem, entry.alg);
  } catch (cause) {
    throw store.storeError(dir, `${entry.kid}.pem is not a ${entry.alg} private key`, cause);
  }
  if (key.kid !== entry.kid) throw store.storeError(dir, `${entry.kid}.pem holds another key than its name says`);
  return key;
}

function record(index: KeyIndexV1, state: 'active' | 'next'): KeyRecord {
  const found = index.keys.find((k) => k.state === state);
  if (found === undefined) throw new TypeError(`key index has no ${state} key`); // parseKeyIndex guarantees one
  return found;
}

const STATE_ORDER: Record<KeyState, number> = { active: 0, next: 1, retired: 2 };

function freezeRing(signingKey: SigningKey, published: PublishedKey[], maxTokenTtlSeconds: number): KeyRing {
  const publishedKeys = published
    .sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state])
    .map((k) => Object.freeze({ ...k, jwk: Object.freeze({ ...k.jwk }) }));
  return Object.freeze({ signingKey, publishedKeys: Object.freeze(publishedKeys), maxTokenTtlSeconds });
}
