/**
 * The key index (`keys.json`, version 1) and the key lifecycle, as pure functions: no files here.
 *
 *   next ──rotate──▶ active ──rotate──▶ retired ──(retired_at + max token TTL + grace)──▶ removed
 *
 * A key is published in the JWKS from the moment it is created as `next`, one whole rotation before it
 * signs, so verifiers that cache the JWKS know it before the first token it signs. A retired key stays
 * published until every token it signed has expired.
 */
import { isSigningAlg, KID_PATTERN, parsePublicJwk } from './signing-key.js';
import type { PublicJwk } from './signing-key.js';
import type { AccessTokenAlg } from './token-claims.js';

/** `next`: published, not signing yet. `active`: signs. `retired`: published until its tokens have expired. */
export type KeyState = 'next' | 'active' | 'retired';

export const KEY_STATES: readonly KeyState[] = ['next', 'active', 'retired'];

/**
 * Extra time a retired key stays published beyond the longest token lifetime, covering verifiers' clock
 * tolerance and a JWKS fetched just before removal. 60 s.
 */
export const RETIRED_KEY_GRACE_SECONDS = 60;

export interface KeyRecord {
  kid: string;
  alg: AccessTokenAlg;
  state: KeyState;
  /** ISO 8601 instants: `activated_at` once the key has signed, `retired_at` once it has stopped. */
  created_at: string;
  activated_at?: string;
  retired_at?: string;
  /** The public key, exactly as published. */
  jwk: PublicJwk;
}

export interface KeyIndexV1 {
  version: 1;
  keys: KeyRecord[];
}

export function newKeyRecord(jwk: PublicJwk, state: 'next' | 'active', now: Date): KeyRecord {
  const at = now.toISOString();
  return { kid: jwk.kid, alg: jwk.alg, state, created_at: at, ...(state === 'active' ? { activated_at: at } : {}), jwk };
}

/** Whether `record` belongs in the JWKS at `now`. */
export function isPublished(record: KeyRecord, now: Date, maxTokenTtlSeconds: number): boolean {
  if (record.state !== 'retired') return true;
  const until = Date.parse(record.retired_at ?? '') + (maxTokenTtlSeconds + RETIRED_KEY_GRACE_SECONDS) * 1000;
  return now.getTime() < until;
}

/**
 * One rotation: `next` → `active`, `active` → `retired`, `newNext` joins as `next`. With a max token TTL,
 * retired keys past their publication window are dropped (returned in `removed`); without, all are kept.
 */
export function rotateIndex(
  index: KeyIndexV1, newNext: KeyRecord, now: Date, maxTokenTtlSeconds?: number,
): { index: KeyIndexV1; retired: string; removed: string[] } {
  const at = now.toISOString();
  let retired = '';
  const keys = index.keys.map((record): KeyRecord => {
    if (record.state === 'next') return { ...record, state: 'active', activated_at: at };
    if (record.state !== 'active') return record;
    retired = record.kid;
    return { ...record, state: 'retired', retired_at: at };
  });
  const removed = maxTokenTtlSeconds === undefined ? [] : keys.filter((r) => !isPublished(r, now, maxTokenTtlSeconds)).map((r) => r.kid);
  const kept = keys.filter((r) => !removed.includes(r.kid));
  return { index: { version: 1, keys: [newNext, ...kept] }, retired, removed };
}

/** Parses and checks `keys.json`: known version, one `active`, one `next`, unique thumbprint kids, sane dates. */
export async function parseKeyIndex(text: string): Promise<KeyIndexV1> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new TypeError('is not JSON');
  }
  const doc = raw as { version?: unknown; keys?: unknown };
  if (typeof raw !== 'object' || raw === null || doc.version !== 1) throw new TypeError('is not a version 1 key index');
  if (!Array.isArray(doc.keys)) throw new TypeError('has no "keys" array');
  const keys: KeyRecord[] = [];
  for (const [i, entry] of doc.keys.entries()) keys.push(await parseRecord(entry, `keys[${i}]`));
  for (const state of ['active', 'next'] as const) {
    const count = keys.filter((k) => k.state === state).length;
    if (count !== 1) throw new TypeError(`has ${count} "${state}" keys, not exactly one`);
  }
  if (new Set(keys.map((k) => k.kid)).size !== keys.length) throw new TypeError('names a kid twice');
  return { version: 1, keys };
}

async function parseRecord(entry: unknown, at: string): Promise<KeyRecord> {
  if (typeof entry !== 'object' || entry === null) throw new TypeError(`${at} is not an object`);
  const e = entry as Record<string, unknown>;
  if (typeof e.kid !== 'string' || !KID_PATTERN.test(e.kid)) throw new TypeError(`${at}.kid is not a key thumbprint`);
  if (!isSigningAlg(e.alg)) throw new TypeError(`${at}.alg is not EdDSA or ES256`);
  if (!KEY_STATES.includes(e.state as KeyState)) throw new TypeError(`${at}.state is not next, active or retired`);
  const state = e.state as KeyState;
  const dates: Pick<KeyRecord, 'activated_at' | 'retired_at'> = {};
  for (const name of ['created_at', 'activated_at', 'retired_at'] as const) {
    const required = name === 'created_at' || (name === 'activated_at' && state !== 'next') || (name === 'retired_at' && state === 'retired');
    if (e[name] === undefined && !required) continue;
    if (typeof e[name] !== 'string' || Number.isNaN(Date.parse(e[name]))) throw new TypeError(`${at}.${name} is not an ISO 8601 instant`);
    if (name !== 'created_at') dates[name] = e[name];
  }
  let jwk: PublicJwk;
  try {
    jwk = await parsePublicJwk(e.jwk);
  } catch (cause) {
    throw new TypeError(`${at}.jwk: ${(cause as Error).message}`);
  }
  if (jwk.kid !== e.kid || jwk.alg !== e.alg) throw new TypeError(`${at}.jwk does not match its kid and alg`);
  return { kid: e.kid, alg: e.alg, state, created_at: e.created_at as string, ...dates, jwk };
}
