import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { decodePart, issueToken } from './flow.js';

/**
 * Masking the record id in the audit trail must not change the token: redemption issues from the decision's
 * unmasked grant, while every stored event carries the digest.
 */
let t: TestPdp;
beforeAll(async () => {
  t = await startTestPdp({ config: { audit: { mask: ['**.resource.id', '**.customer_id'] } } });
});
afterAll(async () => {
  await t.close();
});

it('binds the token to the real record while the trail holds only its digest', async () => {
  const { decision, token } = await issueToken(t);
  const claims = decodePart(token.access_token, 1) as { authorization_details: Array<{ identifier?: string }> };
  expect(claims.authorization_details[0]?.identifier).toBe('1234');

  const events = await t.pdp.store.decisionChain(decision.decision_id);
  expect(events.map((e) => e.type)).toEqual(['decision', 'token.issued']);
  const stored = JSON.stringify(events);
  expect(stored).not.toContain('"1234"');
  expect(stored).toMatch(/sha256:[0-9a-f]{64}/);
  const record = await t.pdp.store.getDecision(decision.decision_id);
  expect(JSON.stringify(record?.result)).not.toContain('"1234"');
});
