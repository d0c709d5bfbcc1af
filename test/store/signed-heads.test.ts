/**
 * Signed heads in the stored chain: the store signs its head inside a transaction and records the signature right
 * after it; `verifyStoredChain` checks every signed head (with the audit public key, its signature too). Someone
 * with write access to the database but not to the audit key cannot rewrite events before a signed head, nor forge
 * one; cutting the tail off, signed heads and all, shows against the signed-heads file kept outside the database.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { canonicalJson, hashEvent, signHead } from '../../src/audit/index.js';
import type { AuditEventV1, AuditSigningKey, NewAuditEvent, SignedHeadV1 } from '../../src/audit/index.js';
import { at, rawSql, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';
import { eventFromRow, hashText } from '../../src/store/rows.js';
import type { EventRow } from '../../src/store/rows.js';

let temp: TempStore;
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const KEY: AuditSigningKey = { kid: 'a'.repeat(43), privateKey };
const KEYS: ReadonlyMap<string, KeyObject> = new Map([[KEY.kid, publicKey]]);
const policyLoaded = (i: number): NewAuditEvent => ({ type: 'policy.loaded', time: at(i), data: { revision: `rev-${i}` } });

/** Signs the head at `at(seconds)`, as the HeadSigner does. */
const sign = (seconds: number) => async (): Promise<AuditEventV1 | null> => temp.store.signHead((head) => signHead(head, at(seconds), KEY));

/** 20 policy.loaded events, a signed head after seq 8 (event 9) and after seq 20 (event 21), then 3 more: 24 events. */
beforeEach(async () => {
  temp = await tempStore();
  await temp.store.appendEvents(Array.from({ length: 8 }, (_, i) => policyLoaded(i + 1)));
  await sign(9)();
  await temp.store.appendEvents(Array.from({ length: 11 }, (_, i) => policyLoaded(i + 10)));
  await sign(21)();
  await temp.store.appendEvents([policyLoaded(22), policyLoaded(23), policyLoaded(24)]);
});
afterEach(async () => temp.cleanup());

/** An event as its row holds it, read as the store reads it (compact decision data, hashes stored as bytes). */
function eventOf(r: Record<string, unknown>): AuditEventV1 {
  return eventFromRow(r as unknown as EventRow);
}

/**
 * Rewrites event `from` (its data) and re-hashes it and every event after it, relinking them, as someone who
 * knows the algorithm but not the audit key would. `fixHeads`: also make each signed head name the new hash.
 */
async function rewriteFrom(from: number, fixHeads: boolean): Promise<void> {
  const rows = await rawSql(temp, 'SELECT * FROM audit_events WHERE seq >= ? ORDER BY seq', [from]);
  let prev = hashText((await rawSql<{ hash: string | Uint8Array }>(temp, 'SELECT hash FROM audit_events WHERE seq = ?', [from - 1]))[0]!.hash);
  for (const row of rows) {
    const event = eventOf(row);
    let data = event.data;
    if (event.seq === from) data = { revision: 'rev-evil' };
    if (event.type === 'audit.head_signed' && fixHeads) data = { ...(data as SignedHeadV1), hash: prev };
    const { hash: _old, ...unsealed } = { ...event, data, prev_hash: prev };
    const hash = hashEvent(unsealed);
    await rawSql(temp, 'UPDATE audit_events SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?', [canonicalJson(data), Buffer.from(prev, 'hex'), Buffer.from(hash, 'hex'), event.seq]);
    prev = hash;
  }
}

describe('signHead', () => {
  it('records each signature right after the head it signs, in the chain', async () => {
    const events: AuditEventV1[] = [];
    for await (const event of temp.store.iterateEvents({ types: ['audit.head_signed'] })) events.push(event);
    expect(events.map((e) => [e.seq, (e.data as SignedHeadV1).seq])).toEqual([[9, 8], [21, 20]]);
    for (const event of events) expect((event.data as SignedHeadV1).hash).toBe(event.prev_hash);
    expect(events[1]).toMatchObject({ time: at(21), data: { time: at(21), kid: KEY.kid } });
  });

  it('signs nothing on an empty chain, nor a head that is a signed head already', async () => {
    expect(await sign(30)()).toMatchObject({ seq: 25 });
    expect(await sign(31)()).toBeNull();
    const empty = await tempStore();
    try {
      expect(await empty.store.signHead((head) => signHead(head, at(1), KEY))).toBeNull();
    } finally {
      await empty.cleanup();
    }
  });

  it('refuses a signature of anything but the head, and writes nothing', async () => {
    await expect(temp.store.signHead((head) => signHead({ seq: head.seq - 1, hash: head.hash }, at(30), KEY))).rejects.toThrow(TypeError);
    expect(await temp.store.chainHead()).toMatchObject({ seq: 24 });
  });
});

describe('verifyStoredChain with signed heads', () => {
  it('checks every signed head and reports the newest', async () => {
    expect(await temp.store.verifyStoredChain({ headKeys: KEYS })).toMatchObject({
      ok: true,
      count: 24,
      signed_heads: { count: 2, verified: true, newest: { seq: 20, event_seq: 21, kid: KEY.kid, time: at(21) } },
    });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, signed_heads: { count: 2, verified: false } });
  });

  it('fails when every event from seq 9 on was re-hashed: the signed head after seq 20 names the old hash', async () => {
    await temp.store.close();
    await rewriteFrom(10, false);
    const store = await temp.reopen();
    expect(await store.verifyStoredChain()).toMatchObject({ ok: false, kind: 'changed', seq: 20 });
    expect(await store.verifyStoredChain({ headKeys: KEYS })).toMatchObject({ ok: false, kind: 'changed', seq: 20 });
  });

  it('fails, given the audit key, when the signed heads were rewritten to name the new hashes too', async () => {
    await temp.store.close();
    await rewriteFrom(10, true);
    const store = await temp.reopen();
    // Without the key only the chain speaks, and the rewriter kept it consistent: this is what the key is for.
    expect(await store.verifyStoredChain()).toMatchObject({ ok: true });
    const result = await store.verifyStoredChain({ headKeys: KEYS });
    expect(result).toMatchObject({ ok: false, kind: 'changed', seq: 21 });
    expect(result.ok ? '' : result.message).toContain('does not verify with the audit key: it was forged or altered');
  });

  it('fails when a signed head is forged without the key, or signed by another key', async () => {
    const { privateKey: other } = generateKeyPairSync('ed25519');
    await temp.store.signHead((head) => signHead(head, at(30), { kid: KEY.kid, privateKey: other }));
    expect(await temp.store.verifyStoredChain({ headKeys: KEYS })).toMatchObject({ ok: false, kind: 'changed', seq: 25 });
  });

  it('detects a tail cut off with its signed heads only against a head kept outside the database', async () => {
    const outside = (await temp.store.verifyStoredChain({ headKeys: KEYS })) as { signed_heads: { newest: SignedHeadV1 } };
    const newest = outside.signed_heads.newest;
    await temp.store.close();
    await rawSql(temp, 'DELETE FROM audit_events WHERE seq >= 15');
    const store = await temp.reopen();
    expect(await store.verifyStoredChain({ headKeys: KEYS })).toMatchObject({ ok: true, count: 14, signed_heads: { newest: { seq: 8 } } });
    expect(await store.verifyStoredChain({ headKeys: KEYS, anchors: [{ seq: newest.seq, hash: newest.hash }] })).toMatchObject({
      ok: false,
      kind: 'removed',
      seq: 15,
    });
  });
});
