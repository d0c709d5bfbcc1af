import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, GENESIS_HEAD, canonicalJson, hashEvent, sealEvent } from '../../src/audit/index.js';

// The worked example of docs/audit-events.md: if this changes, every stored chain stops verifying.
const FIRST = { type: 'policy.loaded' as const, time: '2026-01-01T00:00:00.000Z', data: { revision: 'sha256:4f1c0d2e' } };
const FIRST_CANONICAL =
  '{"data":{"revision":"sha256:4f1c0d2e"},"prev_hash":"' + GENESIS_HASH + '","seq":1,' +
  '"time":"2026-01-01T00:00:00.000Z","type":"policy.loaded","v":1}';
const FIRST_HASH = '5808a4bda55d98ac90647e8192115346c12e7d069d5755f9e13cd27567d301d9';

describe('hash chain', () => {
  it('hashes the canonical JSON of the event without its hash (documented vector)', () => {
    const event = sealEvent(GENESIS_HEAD, FIRST);
    expect(event).toMatchObject({ v: 1, seq: 1, prev_hash: GENESIS_HASH, hash: FIRST_HASH });
    const { hash: _hash, ...unsealed } = event;
    expect(canonicalJson(unsealed)).toBe(FIRST_CANONICAL);
    expect(createHash('sha256').update(FIRST_CANONICAL).digest('hex')).toBe(FIRST_HASH);
  });

  it('links each event to its predecessor', () => {
    const first = sealEvent(GENESIS_HEAD, FIRST);
    const second = sealEvent(first, { type: 'auth.failed', time: '2026-01-01T00:00:01.000Z', caller_id: 'pep', data: {} });
    expect(second).toMatchObject({ seq: 2, prev_hash: FIRST_HASH });
    expect(second.hash).toBe(hashEvent(second));
    expect(second.hash).not.toBe(FIRST_HASH);
  });

  it('omits absent ids and ignores properties that are not part of v1', () => {
    const event = sealEvent(GENESIS_HEAD, { ...FIRST, jti: undefined });
    expect(Object.keys(event)).not.toContain('jti');
    expect(hashEvent({ ...event, extra: 'ignored' } as typeof event)).toBe(FIRST_HASH);
  });

  it('changes the hash when any hashed field changes', () => {
    const event = sealEvent(GENESIS_HEAD, FIRST);
    const variants = [
      { ...event, seq: 2 },
      { ...event, time: '2026-01-01T00:00:00.001Z' },
      { ...event, type: 'policy.refused' as const },
      { ...event, data: { revision: 'sha256:4f1c0d2f' } },
      { ...event, prev_hash: 'f'.repeat(64) },
      { ...event, caller_id: 'someone' },
    ];
    for (const variant of variants) expect(hashEvent(variant)).not.toBe(FIRST_HASH);
  });
});
