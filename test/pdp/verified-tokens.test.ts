import { describe, expect, it } from 'vitest';
import type { AccessTokenClaims } from '../../src/issuer/token-claims.js';
import { VerifiedTokens } from '../../src/pdp/verified-tokens.js';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const claims = (exp: number): AccessTokenClaims => ({
  iss: 'i', sub: 's', aud: 'a', client_id: 'c', iat: exp - 60, exp, jti: `j${exp}`, scope: 'x', authorization_details: [], task_id: 't', decision_id: 'd',
});
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const exp0 = Math.floor(T0.getTime() / 1000) + 60;

describe('VerifiedTokens', () => {
  const ring = {};

  it('remembers a verified token by its exact text only', () => {
    const cache = new VerifiedTokens();
    cache.set('header.payload.sig', ring, claims(exp0));
    expect(cache.get('header.payload.sig', ring, T0)?.exp).toBe(exp0);
    expect(cache.get('header.payload.sih', ring, T0)).toBeUndefined();
  });

  it('forgets a token once expired (past the verifier’s 5 s tolerance), never answering it again', () => {
    const cache = new VerifiedTokens();
    cache.set('t', ring, claims(exp0));
    expect(cache.get('t', ring, at(64))).toBeDefined();
    expect(cache.get('t', ring, at(65))).toBeUndefined();
    expect(cache.get('t', ring, at(0))).toBeUndefined(); // gone, not just hidden
  });

  it('empties when the key ring changes (a reload after a key was withdrawn)', () => {
    const cache = new VerifiedTokens();
    cache.set('t', ring, claims(exp0));
    expect(cache.get('t', {}, T0)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('holds at most max tokens, the least recently used leaving first', () => {
    const cache = new VerifiedTokens({ max: 2 });
    cache.set('a', ring, claims(exp0));
    cache.set('b', ring, claims(exp0));
    cache.get('a', ring, T0); // a is now the most recent
    cache.set('c', ring, claims(exp0));
    expect([cache.get('a', ring, T0), cache.get('b', ring, T0), cache.get('c', ring, T0)].map((c) => c !== undefined)).toEqual([true, false, true]);
  });
});
