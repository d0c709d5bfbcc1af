/**
 * `verifyWebhookSignature` of `agent-pdp/pep`, the receivers' side of the scheme whose `signWebhook` the outbox
 * (src/notify/) signs every delivery with: one implementation, in src/pep/webhook-signature.ts. The sender's
 * signatures verify; every way a header, body, secret or clock can be wrong is refused with its reason.
 */
import { describe, expect, it } from 'vitest';
import * as notify from '../../src/notify/index.js';
import * as pep from '../../src/pep/index.js';

const SECRET = 'whsec-test-secret';
const BODY = '{"type":"access_request.submitted","delivery_id":"d1","access_request":{"id":"ar_1"}}';
const T = 1_767_225_600; // 2026-01-01T00:00:00Z
const at = (seconds: number) => new Date((T + seconds) * 1000);
const header = notify.signWebhook(SECRET, BODY, T);
const rotated = `${header},${notify.signWebhook('old-secret', BODY, T).split(',')[1]}`;

const VECTORS: Array<{ note: string; secret: string | Uint8Array; value: string | string[] | undefined; body: string | Uint8Array; now: Date; tolerance?: number }> = [
  { note: 'valid', secret: SECRET, value: header, body: BODY, now: at(10) },
  { note: 'valid bytes and a header array', secret: Buffer.from(SECRET), value: [header], body: Buffer.from(BODY), now: at(-10) },
  { note: 'rotated secret: new', secret: SECRET, value: rotated, body: BODY, now: at(0) },
  { note: 'rotated secret: old', secret: 'old-secret', value: rotated, body: BODY, now: at(0) },
  { note: 'changed body', secret: SECRET, value: header, body: BODY.replace('d1', 'd2'), now: at(0) },
  { note: 'trailing newline', secret: SECRET, value: header, body: `${BODY}\n`, now: at(0) },
  { note: 'other secret', secret: 'other', value: header, body: BODY, now: at(0) },
  { note: 'moved timestamp', secret: SECRET, value: header.replace(`t=${T}`, `t=${T + 1}`), body: BODY, now: at(0) },
  { note: 'stale', secret: SECRET, value: header, body: BODY, now: at(301) },
  { note: 'at the tolerance', secret: SECRET, value: header, body: BODY, now: at(300) },
  { note: 'future', secret: SECRET, value: header, body: BODY, now: at(-301) },
  { note: 'custom tolerance', secret: SECRET, value: header, body: BODY, now: at(20), tolerance: 10 },
  { note: 'missing', secret: SECRET, value: undefined, body: BODY, now: at(0) },
  { note: 'empty', secret: SECRET, value: '', body: BODY, now: at(0) },
  { note: 'twice', secret: SECRET, value: [header, header], body: BODY, now: at(0) },
  { note: 'no timestamp', secret: SECRET, value: header.replace(/^t=\d+,/, ''), body: BODY, now: at(0) },
  { note: 'two timestamps', secret: SECRET, value: `t=${T},${header}`, body: BODY, now: at(0) },
  { note: 'no v1', secret: SECRET, value: `t=${T},v0=abc`, body: BODY, now: at(0) },
  { note: 'short v1', secret: SECRET, value: header.slice(0, -2), body: BODY, now: at(0) },
  { note: 'upper-case hex', secret: SECRET, value: header.toUpperCase().replace('T=', 't=').replace('V1=', 'v1='), body: BODY, now: at(0) },
  { note: 'garbage', secret: SECRET, value: 'sha256=deadbeef', body: BODY, now: at(0) },
  { note: 'huge', secret: SECRET, value: 'x'.repeat(10_000), body: BODY, now: at(0) },
];

describe('verifyWebhookSignature (agent-pdp/pep) on what the outbox signs', () => {
  const WANT: Record<string, string> = {
    valid: 'valid',
    'valid bytes and a header array': 'valid',
    'rotated secret: new': 'valid',
    'rotated secret: old': 'valid',
    'changed body': 'mismatch',
    'trailing newline': 'mismatch',
    'other secret': 'mismatch',
    'moved timestamp': 'mismatch',
    stale: 'stale',
    'at the tolerance': 'valid',
    future: 'future',
    'custom tolerance': 'stale',
    missing: 'missing',
    empty: 'missing',
    twice: 'malformed',
    'no timestamp': 'malformed',
    'two timestamps': 'malformed',
    'no v1': 'malformed',
    'short v1': 'malformed',
    'upper-case hex': 'valid',
    garbage: 'malformed',
    huge: 'malformed',
  };

  it.each(VECTORS)('$note', ({ note, secret, value, body, now, tolerance }) => {
    const options = { now, ...(tolerance === undefined ? {} : { toleranceSeconds: tolerance }) };
    const verdict = pep.verifyWebhookSignature(secret, value, body, options);
    expect(verdict.valid ? 'valid' : verdict.reason).toBe(WANT[note]);
  });

  it('covers both outcomes and every failure reason in those vectors', () => {
    const results = VECTORS.map(({ secret, value, body, now, tolerance }) =>
      pep.verifyWebhookSignature(secret, value, body, { now, ...(tolerance === undefined ? {} : { toleranceSeconds: tolerance }) }),
    );
    expect(new Set(results.map((r) => (r.valid ? 'valid' : r.reason)))).toEqual(new Set(['valid', 'missing', 'malformed', 'stale', 'future', 'mismatch']));
  });

  it('is the code the outbox signs with: the same functions, header names and default tolerance', () => {
    expect(notify.signWebhook).toBe(pep.signWebhook);
    expect(notify.verifyWebhookSignature).toBe(pep.verifyWebhookSignature);
    expect([pep.SIGNATURE_HEADER, pep.DELIVERY_HEADER, pep.EVENT_HEADER, pep.DEFAULT_SIGNATURE_TOLERANCE_SECONDS]).toEqual([
      notify.SIGNATURE_HEADER,
      notify.DELIVERY_HEADER,
      notify.EVENT_HEADER,
      notify.DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
    ]);
  });

  it('a header that is not text (whatever a framework hands over) is malformed, never a throw', () => {
    for (const value of [42, { t: 1 }, [42], true]) expect(pep.verifyWebhookSignature(SECRET, value as never, BODY)).toEqual({ valid: false, reason: 'malformed' });
  });

  it('throws TypeError on misuse', () => {
    expect(() => pep.verifyWebhookSignature('', header, BODY)).toThrow(TypeError);
    expect(() => pep.verifyWebhookSignature(SECRET, header, BODY, { toleranceSeconds: -1 })).toThrow(TypeError);
    expect(() => pep.verifyWebhookSignature(SECRET, header, 42 as never)).toThrow(TypeError);
  });
});
