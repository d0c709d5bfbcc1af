/** The webhook signature as a receiver checks it: a valid one passes; a changed body, secret or time does not. */
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhookSignature } from '../../src/notify/index.js';

const SECRET = 'whsec-test-secret';
const BODY = '{"type":"access_request.submitted","delivery_id":"d1"}';
const T = 1_767_225_600; // 2026-01-01T00:00:00Z
const at = (seconds: number) => new Date((T + seconds) * 1000);

describe('verifyWebhookSignature', () => {
  const header = signWebhook(SECRET, BODY, T);

  it('accepts the header signWebhook made, for the string or the raw bytes', () => {
    expect(header).toMatch(/^t=1767225600,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(10) })).toEqual({ valid: true, timestamp: T });
    expect(verifyWebhookSignature(Buffer.from(SECRET), [header], Buffer.from(BODY), { now: at(-10) })).toEqual({ valid: true, timestamp: T });
  });

  it.each([
    { note: 'a changed body', secret: SECRET, value: header, body: BODY.replace('d1', 'd2'), now: at(0), reason: 'mismatch' },
    { note: 'a body with a trailing newline', secret: SECRET, value: header, body: `${BODY}\n`, now: at(0), reason: 'mismatch' },
    { note: 'another secret', secret: 'other-secret', value: header, body: BODY, now: at(0), reason: 'mismatch' },
    { note: 'a timestamp moved (signature of the old one)', secret: SECRET, value: header.replace(`t=${T}`, `t=${T + 1}`), body: BODY, now: at(0), reason: 'mismatch' },
    { note: 'a replay after the tolerance', secret: SECRET, value: header, body: BODY, now: at(301), reason: 'stale' },
    { note: 'a timestamp in the future', secret: SECRET, value: header, body: BODY, now: at(-301), reason: 'future' },
    { note: 'no header', secret: SECRET, value: undefined, body: BODY, now: at(0), reason: 'missing' },
    { note: 'the header twice', secret: SECRET, value: [header, header], body: BODY, now: at(0), reason: 'malformed' },
    { note: 'no timestamp', secret: SECRET, value: header.replace(/^t=\d+,/, ''), body: BODY, now: at(0), reason: 'malformed' },
    { note: 'no v1 signature', secret: SECRET, value: `t=${T},v0=abc`, body: BODY, now: at(0), reason: 'malformed' },
    { note: 'a short signature', secret: SECRET, value: header.slice(0, -2), body: BODY, now: at(0), reason: 'malformed' },
    { note: 'two timestamps', secret: SECRET, value: `t=${T},${header}`, body: BODY, now: at(0), reason: 'malformed' },
    { note: 'garbage', secret: SECRET, value: 'sha256=deadbeef', body: BODY, now: at(0), reason: 'malformed' },
  ])('refuses $note ($reason)', ({ secret, value, body, now, reason }) => {
    expect(verifyWebhookSignature(secret, value, body, { now })).toEqual({ valid: false, reason });
  });

  it('takes a custom tolerance, and any one of several v1 signatures (a secret being rotated)', () => {
    expect(verifyWebhookSignature(SECRET, header, BODY, { now: at(20), toleranceSeconds: 10 })).toEqual({ valid: false, reason: 'stale' });
    const old = signWebhook('old-secret', BODY, T).split(',')[1];
    expect(verifyWebhookSignature('old-secret', `${header},${old}`, BODY, { now: at(0) }).valid).toBe(true);
    expect(verifyWebhookSignature(SECRET, `${header},${old}`, BODY, { now: at(0) }).valid).toBe(true);
    expect(verifyWebhookSignature('third-secret', `${header},${old}`, BODY, { now: at(0) }).valid).toBe(false);
  });

  it('throws TypeError on misuse, never on what the network sent', () => {
    expect(() => verifyWebhookSignature('', header, BODY)).toThrow(TypeError);
    expect(() => verifyWebhookSignature(SECRET, header, BODY, { toleranceSeconds: -1 })).toThrow(TypeError);
    expect(() => signWebhook(SECRET, BODY, 1.5)).toThrow(TypeError);
    expect(verifyWebhookSignature(SECRET, 'x'.repeat(10_000), BODY).valid).toBe(false);
  });
});
