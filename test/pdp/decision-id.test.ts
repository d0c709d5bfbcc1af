import { describe, expect, it } from 'vitest';
import { newDecisionId } from '../../src/pdp/decision-id.js';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/** The 48-bit millisecond timestamp a UUIDv7 starts with. */
const stamp = (id: string): number => Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);

describe('decision ids (UUIDv7, RFC 9562)', () => {
  it('carries version 7, variant 10 and the millisecond it was made', () => {
    const at = Date.parse('2026-11-24T01:02:03.456Z');
    const id = newDecisionId(at);
    expect(id).toMatch(UUID_V7);
    expect(stamp(id)).toBe(at);
  });

  it('sorts by time across milliseconds, as text and as bytes', () => {
    const t0 = Date.parse('2026-11-24T00:00:00.000Z');
    const ids = Array.from({ length: 2000 }, (_, i) => newDecisionId(t0 + Math.floor(i / 7)));
    expect([...ids].sort()).toEqual(ids.slice().sort((a, b) => stamp(a) - stamp(b) || (a < b ? -1 : 1)));
    expect(ids.map(stamp)).toEqual(ids.map((_, i) => t0 + Math.floor(i / 7)));
  });

  it('never repeats, within one millisecond and across the random pool refills', () => {
    const at = Date.now();
    const ids = Array.from({ length: 100_000 }, () => newDecisionId(at));
    expect(new Set(ids).size).toBe(ids.length);
    // 74 random bits per id: every bit position takes both values.
    const tails = ids.slice(0, 512).map((id) => BigInt(`0x${id.replaceAll('-', '').slice(12)}`));
    const or = tails.reduce((a, b) => a | b, 0n);
    const and = tails.reduce((a, b) => a & b, (1n << 80n) - 1n);
    expect(or & 0x0fff3fffffffffffffffn).toBe(0x0fff3fffffffffffffffn);
    expect(and & 0x0fff3fffffffffffffffn).toBe(0n);
  });

  it.each([
    { note: 'negative', at: -1 },
    { note: 'past 48 bits', at: 2 ** 48 },
    { note: 'fractional', at: 1.5 },
    { note: 'NaN', at: Number.NaN },
  ])('refuses a time that is $note', ({ at }) => {
    expect(() => newDecisionId(at)).toThrow(TypeError);
  });
});
