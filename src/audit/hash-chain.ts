/**
 * The hash chain: each event's `hash` covers its own content and its predecessor's hash, so changing, removing,
 * inserting or reordering any event breaks the chain at that point (see chain-verifier.ts for naming the break).
 *
 * hash = lowercase hex SHA-256 of the UTF-8 canonical JSON (RFC 8785) of the event without its `hash` field.
 * The first event ever has prev_hash = GENESIS_HASH; after pruning, the first kept event's prev_hash is the
 * checkpoint's last_pruned_hash.
 */
import * as crypto from 'node:crypto';
import { AUDIT_EVENT_VERSION, AUDIT_ID_FIELDS } from './audit-event.js';
import type { AuditEventV1, NewAuditEvent } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

/** prev_hash of the first event of a chain that has never been pruned: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** The last event of a chain (or the checkpoint it continues from): the next event has seq + 1, prev_hash = hash. */
export interface ChainHead {
  seq: number;
  hash: string;
}

export const GENESIS_HEAD: Readonly<ChainHead> = Object.freeze({ seq: 0, hash: GENESIS_HASH });

export type UnsealedEvent = Omit<AuditEventV1, 'hash'>;

/**
 * The object the hash is computed over: exactly the v1 fields minus `hash`, ids omitted when absent.
 * Built field by field so that extra properties on `event` are never hashed (nor silently trusted).
 */
export function hashInput(event: UnsealedEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {
    v: event.v,
    seq: event.seq,
    time: event.time,
    type: event.type,
    data: event.data,
    prev_hash: event.prev_hash,
  };
  for (const field of AUDIT_ID_FIELDS) {
    const id = event[field];
    if (id !== undefined) out[field] = id;
  }
  return out;
}

/** SHA-256 (hex) of the canonical JSON of `event` without `hash`. Throws CanonicalJsonError for unencodable data. */
export function hashEvent(event: UnsealedEvent): string {
  return sha256Hex(canonicalJson(hashInput(event)));
}

/**
 * Lowercase hex SHA-256 of a string's UTF-8 bytes. Node's one-shot `crypto.hash` (20.12 and later) where there is
 * one: for the short texts of events and keys it costs about half of a `createHash` object's update and digest.
 */
export const sha256Hex: (text: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (text) => (crypto as unknown as { hash(algorithm: string, data: string, encoding: 'hex'): string }).hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

/** The event that follows `head`: seq = head.seq + 1, prev_hash = head.hash, hash computed. */
export function sealEvent(head: ChainHead, event: NewAuditEvent): AuditEventV1 {
  const unsealed: UnsealedEvent = {
    v: AUDIT_EVENT_VERSION,
    seq: head.seq + 1,
    time: event.time,
    type: event.type,
    data: event.data,
    prev_hash: head.hash,
  };
  for (const field of AUDIT_ID_FIELDS) {
    const id = event[field];
    if (id !== undefined) unsealed[field] = id;
  }
  return Object.assign(unsealed, { hash: hashEvent(unsealed) });
}

/** True when `event` hashes to its own `hash` (its content is what was sealed); false for data with no encoding. */
export function matchesOwnHash(event: AuditEventV1): boolean {
  try {
    return hashEvent(event) === event.hash;
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;

export function isHash(value: unknown): value is string {
  return typeof value === 'string' && HEX64.test(value);
}
