import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyDir } from '../../src/policy/policy-loader.js';
import type { DecisionRequestV1 } from '../../src/wire/decision-v1.js';
import { auth, KEYS, startTestPdp, type TestPdp } from '../support/pdp-harness.js';
import { configuredRego, opaReplay, type ConfiguredRego } from './business-hours-rego.js';

/**
 * Time in a rule, end to end (issue 15, point 5): the PDP reads its clock once per decision and passes it as
 * `input.time`; the example extension rego/agentpdp/ext/business_hours.rego, configured here for support-resolver
 * only, denies outside its hours; the decision event records the input, time included, and `opa eval` on that
 * recorded input gives the answer the caller got.
 */

// 09:00 to 17:00, Monday to Friday (the default), at UTC+1.
const HOURS = { 'support-resolver': { from: '09:00', until: '17:00', utc_offset_minutes: 60 } };

const ticketsRead = (agent_id = 'support-resolver'): DecisionRequestV1 =>
  agent_id === 'support-resolver'
    ? { agent_id, task: { id: 'task-inline', type: 'complaint_resolution', context: { customer_id: '1234' } }, integration: 'crm', scopes: ['tickets:read'] }
    : { agent_id, task: { id: 'task-inline' }, integration: 'github', scopes: ['repo:read'] };

interface RecordedEvent {
  type: string;
  data: { input: { time?: unknown }; result: { outcome: string; granted_scopes: string[]; denied_scopes: unknown[]; reasons: Array<{ code: string }> } };
}

describe('a business-hours rule, served over HTTP', () => {
  let t: TestPdp;
  let rego: ConfiguredRego;
  let policyData: Record<string, unknown>;

  beforeAll(async () => {
    rego = configuredRego(HOURS);
    t = await startTestPdp({ bundle: rego.bundle });
    policyData = (await loadPolicyDir('test/fixtures/policies')).data;
  });
  afterAll(async () => {
    await t?.close();
    rego?.remove();
  });

  it.each([
    { note: 'Monday 09:00 local (08:00Z): the first minute', at: '2026-01-05T08:00:00.000Z', agent: 'support-resolver', outcome: 'allow', codes: ['allowed'] },
    { note: 'Monday 16:59:59.999 local: the last millisecond', at: '2026-01-05T15:59:59.999Z', agent: 'support-resolver', outcome: 'allow', codes: ['allowed'] },
    { note: 'Monday 17:00 local: until is exclusive', at: '2026-01-05T16:00:00.000Z', agent: 'support-resolver', outcome: 'deny', codes: ['outside_business_hours'] },
    { note: 'Saturday 11:00 local: not a weekday', at: '2026-01-10T10:00:00.000Z', agent: 'support-resolver', outcome: 'deny', codes: ['outside_business_hours'] },
    { note: 'Sunday 23:30Z is Monday 00:30 local: before hours', at: '2026-01-04T23:30:00.000Z', agent: 'support-resolver', outcome: 'deny', codes: ['outside_business_hours'] },
    { note: 'an agent with no hours configured: allowed on a Saturday', at: '2026-01-10T10:00:00.000Z', agent: 'code-review-agent', outcome: 'allow', codes: ['allowed'] },
  ])('$note', async ({ at, agent, outcome, codes }) => {
    t.clock.now = new Date(at);
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(ticketsRead(agent)).expect(200);
    expect(res.body.outcome).toBe(outcome);
    expect(res.body.reasons.map((r: { code: string }) => r.code)).toEqual(codes);
    if (outcome === 'deny') expect(res.body.granted_scopes).toEqual([]);

    // The decision event records the time the policy saw: the Decider's clock, read once.
    const chain = await request(t.url).get(`/v1/audit/decisions/${res.body.decision_id}`).set(auth(KEYS.auditor)).expect(200);
    const event = (chain.body.events as RecordedEvent[]).find((e) => e.type === 'decision');
    const ms = Date.parse(at);
    const when = new Date(ms);
    expect(event?.data.input.time).toEqual({
      now_ns: ms * 1_000_000,
      rfc3339: at,
      weekday: ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'][when.getUTCDay()],
      date: [when.getUTCFullYear(), when.getUTCMonth() + 1, when.getUTCDate()],
      clock: [when.getUTCHours(), when.getUTCMinutes(), when.getUTCSeconds()],
    });
    // Nanoseconds above 2^53 travel as exact digits, not as 1.7e18.
    expect(chain.text).toContain(`"now_ns":${ms}000000`);

    // Replay: OPA's own evaluator, given the recorded input, decides what the caller was told.
    const replayed = opaReplay(rego.dir, policyData, JSON.stringify(event?.data.input)) as Record<string, unknown>;
    const { outcome: o, granted_scopes, denied_scopes, reasons } = event?.data.result ?? ({} as RecordedEvent['data']['result']);
    expect(replayed).toMatchObject({ outcome: o, granted_scopes, denied_scopes, reasons });
    expect(o).toBe(outcome);
  });

  it('the deny says which hours apply, for the person reading the decision', async () => {
    t.clock.now = new Date('2026-01-10T10:00:00.000Z');
    const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(ticketsRead()).expect(200);
    expect(res.body.reasons).toEqual([
      {
        code: 'outside_business_hours',
        message: 'agent support-resolver may get tokens only from 09:00 to 17:00 on Monday, Tuesday, Wednesday, Thursday, Friday (local time = UTC +60 minutes)',
      },
    ]);
  });
});

describe('with the shipped bundle (no agent has business hours)', () => {
  let t: TestPdp;
  beforeAll(async () => {
    t = await startTestPdp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('a Saturday-night decision is allowed as on a Monday morning, and records its time', async () => {
    for (const at of ['2026-01-10T23:59:00.000Z', '2026-01-05T08:00:00.000Z']) {
      t.clock.now = new Date(at);
      const res = await request(t.url).post('/v1/decide').set(auth(KEYS.pep)).send(ticketsRead()).expect(200);
      expect(res.body).toMatchObject({ outcome: 'allow', granted_scopes: ['tickets:read'] });
      const chain = await request(t.url).get(`/v1/audit/decisions/${res.body.decision_id}`).set(auth(KEYS.auditor)).expect(200);
      const event = (chain.body.events as RecordedEvent[]).find((e) => e.type === 'decision');
      expect(event?.data.input.time).toMatchObject({ rfc3339: at, now_ns: Date.parse(at) * 1_000_000 });
    }
  });
});
