/**
 * `verifyWebhookSignature` of `agent-pdp/pep` is a copy of src/notify/webhook-signature.ts (the PEP may not import
 * src/notify/). Both must give the same answer on the same input: the sender's signatures, and every way a header
 * can be wrong.
 */
import { describe, expect, it } from 'vitest';
import * as notify from '../../src/notify/webhook-signature.js';
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

describe('the PEP copy of verifyWebhookSignature', () => {
  it.each(VECTORS)('agrees with src/notify on: $note', ({ secret, value, body, now, tolerance }) => {
    const options = { now, ...(tolerance === undefined ? {} : { toleranceSeconds: tolerance }) };
    expect(pep.verifyWebhookSignature(secret, value, body, options)).toEqual(notify.verifyWebhookSignature(secret, value, body, options));
  });

  it('covers both outcomes and every failure reason in those vectors', () => {
    const results = VECTORS.map(({ secret, value, body, now, tolerance }) =>
      pep.verifyWebhookSignature(secret, value, body, { now, ...(tolerance === undefined ? {} : { toleranceSeconds: tolerance }) }),
    );
    expect(new Set(results.map((r) => (r.valid ? 'valid' : r.reason)))).toEqual(new Set(['valid', 'missing', 'malformed', 'stale', 'future', 'mismatch']));
  });

  it('signs as the sender does, with the same header names and default tolerance', () => {
    for (const t of [0, T, T + 12345]) expect(pep.signWebhook(SECRET, BODY, t)).toBe(notify.signWebhook(SECRET, BODY, t));
    expect([pep.SIGNATURE_HEADER, pep.DELIVERY_HEADER, pep.EVENT_HEADER, pep.DEFAULT_SIGNATURE_TOLERANCE_SECONDS]).toEqual([
      notify.SIGNATURE_HEADER,
      notify.DELIVERY_HEADER,
      notify.EVENT_HEADER,
      notify.DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
    ]);
  });

  it('throws TypeError on misuse, as the sender’s does', () => {
    expect(() => pep.verifyWebhookSignature('', header, BODY)).toThrow(TypeError);
    expect(() => pep.verifyWebhookSignature(SECRET, header, BODY, { toleranceSeconds: -1 })).toThrow(TypeError);
    expect(() => pep.verifyWebhookSignature(SECRET, header, 42 as never)).toThrow(TypeError);
  });
});
