/**
 * Signed heads: the PDP's Ed25519 signature over one point of the chain (seq, hash) and the time it signed it,
 * with an audit key that never lives in the database. The model is Certificate Transparency's signed tree head
 * (RFC 6962 §3.5): whoever rewrites the chain must rewrite it so that every signed head still holds, which takes
 * the key. A head is written to the trail (an audit.head_signed event) and to an append-only file outside the
 * database; `audit verify` checks every head it sees, with the audit public key.
 *
 * The bytes signed are the canonical JSON (RFC 8785) of
 *   { "context": "agent-pdp-signed-head", "v": 1, "seq": <seq>, "hash": "<hex>", "time": "<ISO>", "kid": "<kid>" }
 * and `sig` is the base64url (no padding) Ed25519 signature over their UTF-8 encoding. `context` keeps the key's
 * signatures from meaning anything else; `kid` is the RFC 7638 thumbprint of the audit public key.
 */
import { sign as signBytes, verify as verifyBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIsoTime } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';
import { isHash } from './hash-chain.js';
import type { ChainHead } from './hash-chain.js';

export const SIGNED_HEAD_CONTEXT = 'agent-pdp-signed-head';

/** One signed head, as the audit.head_signed event's data and as one line of the signed-heads file. */
export interface SignedHeadV1 {
  /** The seq of the event signed for (the chain's head when it was signed). */
  seq: number;
  /** That event's hash. */
  hash: string;
  /** When it was signed: ISO 8601 UTC with milliseconds. */
  time: string;
  /** RFC 7638 thumbprint of the audit public key. */
  kid: string;
  /** base64url Ed25519 signature over {@link signedHeadPayload}. */
  sig: string;
}

/** What signs: an Ed25519 private key and the thumbprint of its public key. */
export interface AuditSigningKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
}

/** Audit public keys by kid: what verification needs. */
export type HeadKeys = ReadonlyMap<string, KeyObject>;

const KID = /^[A-Za-z0-9_-]{43}$/;
const SIG = /^[A-Za-z0-9_-]{86}$/;
const KEYS = ['hash', 'kid', 'seq', 'sig', 'time'];

/** The bytes a signed head's signature covers. */
export function signedHeadPayload(head: Omit<SignedHeadV1, 'sig'>): Buffer {
  const payload = { context: SIGNED_HEAD_CONTEXT, v: 1, seq: head.seq, hash: head.hash, time: head.time, kid: head.kid };
  return Buffer.from(canonicalJson(payload), 'utf8');
}

/** Signs `head` (seq and hash of a chain head) at `time`. TypeError for a key that is not Ed25519 or a bad head. */
export function signHead(head: ChainHead, time: string, key: AuditSigningKey): SignedHeadV1 {
  if (key.privateKey.asymmetricKeyType !== 'ed25519' || key.privateKey.type !== 'private') {
    throw new TypeError('the audit signing key must be an Ed25519 private key');
  }
  const unsigned = { seq: head.seq, hash: head.hash, time, kid: key.kid };
  const problem = parseSignedHead({ ...unsigned, sig: 'A'.repeat(86) });
  if (typeof problem === 'string') throw new TypeError(`cannot sign this head: ${problem}`);
  const sig = signBytes(null, signedHeadPayload(unsigned), key.privateKey).toString('base64url');
  return { ...unsigned, sig };
}

/** The signed head `value` holds, or why it is not one. */
export function parseSignedHead(value: unknown): SignedHeadV1 | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not an object';
  const h = value as Record<string, unknown>;
  if (Object.keys(h).sort().join() !== KEYS.join()) return `a signed head has exactly ${KEYS.join(', ')}`;
  if (!Number.isSafeInteger(h['seq']) || (h['seq'] as number) < 1) return 'seq is not a positive integer';
  if (!isHash(h['hash'])) return 'hash is not a SHA-256 hex digest';
  if (!isIsoTime(h['time'])) return 'time is not ISO 8601 UTC with milliseconds';
  if (typeof h['kid'] !== 'string' || !KID.test(h['kid'])) return 'kid is not a key thumbprint';
  if (typeof h['sig'] !== 'string' || !SIG.test(h['sig'])) return 'sig is not a base64url Ed25519 signature';
  return { seq: h['seq'] as number, hash: h['hash'], time: h['time'], kid: h['kid'], sig: h['sig'] };
}

/** Why `head` does not verify with `keys`, or undefined when it does. */
export function signedHeadProblem(head: SignedHeadV1, keys: HeadKeys): string | undefined {
  const key = keys.get(head.kid);
  if (key === undefined) return `is signed by key ${head.kid}, which is not an audit key given to the verifier`;
  if (key.asymmetricKeyType !== 'ed25519') return `names key ${head.kid}, which is not an Ed25519 key`;
  const { sig, ...unsigned } = head;
  return verifyBytes(null, signedHeadPayload(unsigned), key, Buffer.from(sig, 'base64url')) ? undefined : 'does not verify with the audit key';
}
