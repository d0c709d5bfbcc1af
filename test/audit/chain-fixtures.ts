/** Chains built in memory, and the ways an attacker can tamper with them. */
import { GENESIS_HEAD, hashEvent, sealEvent } from '../../src/audit/index.js';
import type { AuditEventV1, ChainHead, NewAuditEvent } from '../../src/audit/index.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');

export function newEvent(i: number): NewAuditEvent {
  return {
    type: i % 3 === 0 ? 'token.used' : 'decision',
    time: new Date(T0 + i * 1000).toISOString(),
    decision_id: `d-${i}`,
    agent_id: 'support-resolver',
    data: { i, scopes: ['tickets:write'] },
  };
}

/** `n` sealed events starting after `head` (default genesis). */
export function buildChain(n: number, head: ChainHead = GENESIS_HEAD): AuditEventV1[] {
  const events: AuditEventV1[] = [];
  let last = head;
  for (let i = 1; i <= n; i++) {
    const event = sealEvent(last, newEvent(last.seq + 1));
    events.push(event);
    last = event;
  }
  return events;
}

/** Index of the event with `seq` in a chain built from genesis. */
const at = (seq: number): number => seq - 1;

/** An event forged by someone who knows the algorithm: valid hash, linked after `prev`. */
export function forgeAfter(prev: ChainHead): AuditEventV1 {
  return sealEvent(prev, { type: 'decision', time: '2026-06-01T00:00:00.000Z', decision_id: 'forged', data: { forged: true } });
}

export function rehash(event: AuditEventV1): AuditEventV1 {
  const { hash: _hash, ...unsealed } = event;
  return { ...unsealed, hash: hashEvent(unsealed) };
}

/** Tampering as it looks in an export file (lines keep their own seq). */
export const fileTamper = {
  edit: (c: AuditEventV1[], seq: number) => c.map((e) => (e.seq === seq ? { ...e, data: { edited: true } } : e)),
  editAndRehash: (c: AuditEventV1[], seq: number) => c.map((e) => (e.seq === seq ? rehash({ ...e, data: { edited: true } }) : e)),
  editHashField: (c: AuditEventV1[], seq: number) => c.map((e) => (e.seq === seq ? { ...e, hash: 'f'.repeat(64) } : e)),
  remove: (c: AuditEventV1[], seq: number) => c.filter((e) => e.seq !== seq),
  swapWithNext: (c: AuditEventV1[], seq: number) => {
    const out = [...c];
    [out[at(seq)], out[at(seq) + 1]] = [out[at(seq) + 1] as AuditEventV1, out[at(seq)] as AuditEventV1];
    return out;
  },
  /** A forged, validly hashed event inserted after `seq`, carrying seq + 1 (the original seq + 1 follows it). */
  insertForgedAfter: (c: AuditEventV1[], seq: number) => {
    const out = [...c];
    out.splice(at(seq) + 1, 0, forgeAfter(c[at(seq)] as AuditEventV1));
    return out;
  },
  /** An event with a made-up hash inserted after `seq`. */
  insertGarbageAfter: (c: AuditEventV1[], seq: number) => {
    const out = [...c];
    const prev = c[at(seq)] as AuditEventV1;
    out.splice(at(seq) + 1, 0, { ...forgeAfter(prev), hash: 'a'.repeat(64) });
    return out;
  },
  duplicate: (c: AuditEventV1[], seq: number) => [...c, c[at(seq)] as AuditEventV1],
};

/** Tampering as it looks in a table keyed by seq: rows are renumbered to hide gaps and make room. */
export const tableTamper = {
  removeAndRenumber: (c: AuditEventV1[], seq: number) =>
    c.filter((e) => e.seq !== seq).map((e) => (e.seq > seq ? { ...e, seq: e.seq - 1 } : e)),
  insertForgedAndRenumber: (c: AuditEventV1[], seq: number) => {
    const forged = { ...forgeAfter(c[at(seq)] as AuditEventV1) };
    const shifted = c.map((e) => (e.seq > seq ? { ...e, seq: e.seq + 1 } : e));
    shifted.splice(at(seq) + 1, 0, forged);
    return shifted;
  },
  /** Swap every column but seq between rows seq and seq + 1. */
  swapContents: (c: AuditEventV1[], seq: number) => {
    const a = c[at(seq)] as AuditEventV1;
    const b = c[at(seq) + 1] as AuditEventV1;
    return c.map((e) => (e.seq === seq ? { ...b, seq } : e.seq === seq + 1 ? { ...a, seq: seq + 1 } : e));
  },
};
