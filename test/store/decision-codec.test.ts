/**
 * The stored form of a decision event's data (decision-codec.ts): whatever the data, expansion gives back exactly the
 * canonical text that was hashed; the members SQL and the search read stay in place; a changed stored text never
 * expands to the original.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/index.js';
import { compactDecisionData, encodeDecisionData, expandDecisionData } from '../../src/store/decision-codec.js';
import type { DecisionEnvelope } from '../../src/store/decision-codec.js';
import { evaluationTime } from '../../src/wire/evaluation-time.js';

const TIME = '2026-11-30T22:52:00.141Z';
const ENVELOPE: DecisionEnvelope = { time: TIME, decision_id: '01a22ea8-6f0d-73cd-abed-cbedaf8e43ad', agent_id: 'support-resolver', caller_id: 'support-middleware', task_id: 'bench-task-sr' };

/** A decision as the Decider records it: an allow of the task's own record. */
function decided(): { input: Record<string, unknown>; result: Record<string, unknown>; policy_revision: string } {
  const resource = { type: 'customer', id: '1234' };
  return {
    input: {
      agent_id: 'support-resolver',
      caller_id: 'support-middleware',
      integration: 'crm',
      resource,
      scopes: ['tickets:write'],
      task: { id: 'bench-task-sr', type: 'complaint_resolution', context: { customer_id: '1234' }, registered: true },
      time: evaluationTime(new Date(TIME)),
    },
    result: {
      decision_id: ENVELOPE.decision_id,
      allow: true,
      outcome: 'allow',
      agent_id: 'support-resolver',
      integration: 'crm',
      granted_scopes: ['tickets:write'],
      denied_scopes: [],
      reasons: [{ code: 'allowed', message: 'granted tickets:write' }],
      token_ttl_seconds: 900,
      resource,
      task_id: 'bench-task-sr',
      policy_revision: '248ed272319726c9.461f9b622c6818eb',
      redeemable_until: '2026-11-30T22:53:00.141Z',
    },
    policy_revision: '248ed272319726c9.461f9b622c6818eb',
  };
}

/** A requestable denial as the Decider records it: the offer (its template, its expiry), its approver groups. */
function requestable(): { input: Record<string, unknown>; result: Record<string, unknown>; policy_revision: string; approvers: string[] } {
  const data = decided();
  data.input['scopes'] = ['refunds:write'];
  Object.assign(data.result, {
    allow: false,
    outcome: 'deny',
    granted_scopes: [],
    denied_scopes: [{ scope: 'refunds:write', reason: 'approval_required' }],
    reasons: [{ code: 'approval_required', message: "requested scopes need an approver's approval: refunds:write" }],
    token_ttl_seconds: 0,
    redeemable_until: null,
    access_request: {
      endpoint: 'https://pdp.example/v1/access-requests',
      expires_at: '2026-11-30T23:02:00.141Z',
      template: { decision_id: ENVELOPE.decision_id, duration_seconds: 3600 },
      scopes: ['refunds:write'],
      max_duration_seconds: 3600,
      require_reason: true,
    },
  });
  return { ...data, approvers: ['support-leads'] };
}

/** An elevated allow as the Decider records it: the input's elevation, the answer's approval. */
function elevated(): { input: Record<string, unknown>; result: Record<string, unknown>; policy_revision: string } {
  const data = decided();
  const id = 'ar_9c49bf89-d424-47a2-8e47-ff765a00681e';
  const until = '2026-11-30T23:52:00.141Z';
  data.input['elevation'] = Object.freeze({ access_request_id: id, scopes: Object.freeze({ 'tickets:write': true }), resource: Object.freeze({ type: 'customer', id: '1234' }), approved_until: until });
  data.result['approval'] = { id, approved_until: until };
  data.result['reasons'] = [
    { code: 'allowed', message: 'granted tickets:write' },
    { code: 'elevated', message: `granted by access request ${id}: tickets:write` },
  ];
  return data;
}

const roundTrip = (envelope: DecisionEnvelope, data: { input: unknown; result: unknown; policy_revision: string; approvers?: string[] }) => {
  const canonical = canonicalJson(data);
  const encoded = encodeDecisionData(envelope, data.input, data.result, data.policy_revision, data.approvers);
  // The texts the hash covers are the canonical ones, put together from the same pieces as the stored text.
  expect(encoded.input).toBe(canonicalJson(data.input));
  expect(encoded.result).toBe(canonicalJson(data.result));
  const stored = compactDecisionData(envelope, data.input, data.result, data.policy_revision, data.approvers);
  expect(stored).toBe(encoded.stored);
  // The stored text is the canonical text of the compact value it holds.
  if (stored !== undefined) expect(canonicalJson(JSON.parse(stored))).toBe(stored);
  return { canonical, stored, expanded: stored === undefined ? canonical : expandDecisionData(envelope, stored) };
};

describe('decision event data as stored', () => {
  it("a Decider's allow is stored in less than half its canonical size and expands to exactly the canonical text", () => {
    const { canonical, stored, expanded } = roundTrip(ENVELOPE, decided());
    expect(expanded).toBe(canonical);
    expect(stored).toBeDefined();
    expect((stored as string).length).toBeLessThan(canonical.length / 2);
    const kept = JSON.parse(stored as string) as { input: Record<string, unknown>; result: Record<string, unknown> };
    // What SQL and the text search read stays in place.
    expect(kept.input).toMatchObject({ integration: 'crm', scopes: ['tickets:write'], resource: { type: 'customer' }, task: { type: 'complaint_resolution' } });
    expect(kept.result).toMatchObject({ outcome: 'allow', reasons: [{ code: 'allowed' }] });
    // An empty denied_scopes is left out: SQL reads null there, which the usage rollup counts as no denial.
    expect(kept.result).not.toHaveProperty('denied_scopes');
    expect(stored).toContain('"outcome":"allow"');
  });

  it("a requestable denial's offer and an elevated allow's elevation are stored without what the decision already says", () => {
    const denial = roundTrip(ENVELOPE, requestable());
    expect(denial.expanded).toBe(denial.canonical);
    const offer = (JSON.parse(denial.stored as string) as { result: { access_request: Record<string, unknown> } }).result.access_request;
    // The template (the decision id, the longest duration) and the scopes (the input's) are left out, the expiry is
    // an offset; the endpoint, the terms and the approver groups stay.
    expect(offer).toEqual({ endpoint: 'https://pdp.example/v1/access-requests', expires_at: 600_000, max_duration_seconds: 3600, require_reason: true });
    expect(denial.stored).toContain('"approvers":["support-leads"]');

    const allow = roundTrip(ENVELOPE, elevated());
    expect(allow.expanded).toBe(allow.canonical);
    const kept = JSON.parse(allow.stored as string) as { input: { elevation: unknown }; result: { approval: unknown } };
    // The elevation keeps its scopes; its id and window are the approval's (kept in place: SQL looks for it), its
    // record the input's.
    expect(kept.input.elevation).toEqual({ scopes: { 'tickets:write': true } });
    expect(kept.result.approval).toEqual({ id: 'ar_9c49bf89-d424-47a2-8e47-ff765a00681e', approved_until: '2026-11-30T23:52:00.141Z' });
  });

  it('an offer or an elevation that differs from what it would repeat is kept as it is', () => {
    const denial = requestable();
    const offer = denial.result['access_request'] as Record<string, unknown>;
    offer['template'] = { decision_id: 'another-decision', duration_seconds: 3600 };
    offer['scopes'] = ['refunds:write', 'refunds:read'];
    offer['expires_at'] = '2026-11-30T23:02:00.141000Z';
    const d = roundTrip(ENVELOPE, denial);
    expect(d.expanded).toBe(d.canonical);
    expect((JSON.parse(d.stored as string) as { result: { access_request: unknown } }).result.access_request).toEqual(offer);

    const allow = elevated();
    allow.input['elevation'] = { access_request_id: 'ar_other', scopes: { 'tickets:write': true }, resource: { type: 'customer', id: '5678' }, approved_until: '2026-11-30T23:00:00.000Z' };
    const a = roundTrip(ENVELOPE, allow);
    expect(a.expanded).toBe(a.canonical);
    expect((JSON.parse(a.stored as string) as { input: { elevation: unknown } }).input.elevation).toEqual(allow.input['elevation']);
  });

  it('an offer or an elevation whose left-out member was written back does not expand to the original', () => {
    const denial = roundTrip(ENVELOPE, requestable());
    const allow = roundTrip(ENVELOPE, elevated());
    for (const [changed, canonical] of [
      [(denial.stored as string).replace('"expires_at":600000', '"expires_at":600000,"scopes":["refunds:write"]'), denial.canonical],
      [(denial.stored as string).replace('"endpoint"', '"template":{"decision_id":"x","duration_seconds":60},"endpoint"'), denial.canonical],
      [(denial.stored as string).replace('"expires_at":600000', '"expires_at":"600000"'), denial.canonical],
      [(allow.stored as string).replace('"elevation":{', '"elevation":{"access_request_id":"ar_other",'), allow.canonical],
      [(allow.stored as string).replace('"elevation":{', '"elevation":{"resource":{"id":"5678","type":"customer"},'), allow.canonical],
      [(allow.stored as string).replace(/"approval":\{[^}]*\},/, ''), allow.canonical],
    ] as const) {
      expect(expandDecisionData(ENVELOPE, changed)).not.toBe(canonical);
    }
  });

  it('members that differ from what they repeat are kept as they are', () => {
    const data = decided();
    data.result['agent_id'] = 'someone-else';
    data.result['granted_scopes'] = ['tickets:read'];
    data.result['resource'] = null;
    data.result['allow'] = false;
    (data.input['time'] as { weekday: string }).weekday = 'Friday';
    data.result['redeemable_until'] = '2026-11-30T22:53:00.141000Z';
    // A one-letter name already taken: the member it would have been renamed from keeps its name.
    data.result['n'] = 'taken';
    const { canonical, stored, expanded } = roundTrip(ENVELOPE, data);
    expect(expanded).toBe(canonical);
    const kept = JSON.parse(stored as string) as { input: Record<string, unknown>; result: Record<string, unknown> };
    // granted_scopes and redeemable_until, kept, go under their one-letter names.
    expect(kept.result).toMatchObject({ agent_id: 'someone-else', g: ['tickets:read'], resource: null, allow: false, u: '2026-11-30T22:53:00.141000Z' });
    expect(kept.input['time']).toMatchObject({ weekday: 'Friday' });
    expect(kept.result).toMatchObject({ n: 'taken', token_ttl_seconds: 900 });
  });

  it('any data round-trips exactly, whatever the envelope (fast-check)', () => {
    const id = fc.constantFrom('support-resolver', 'a', 'x\u0000y', 'é');
    const json = fc.jsonValue({ maxDepth: 2 });
    const envelope = fc.record({
      time: fc.oneof(fc.constant(TIME), fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()), fc.constant('not a time')),
      decision_id: fc.option(id, { nil: null }),
      agent_id: fc.option(id, { nil: null }),
      caller_id: fc.option(id, { nil: null }),
      task_id: fc.option(id, { nil: null }),
    });
    fc.assert(
      fc.property(envelope, fc.boolean(), json, json, fc.dictionary(fc.constantFrom('agent_id', 'caller_id', 'integration', 'scopes', 'resource', 'task', 'time'), json), (env, realistic, a, b, extra) => {
        const data = decided();
        if (realistic) {
          data.input['time'] = evaluationTime(new Date(Number.isNaN(Date.parse(env.time)) ? 0 : Date.parse(env.time)));
          data.result['agent_id'] = env.agent_id ?? a;
          data.result['task_id'] = env.task_id;
          data.input['agent_id'] = env.agent_id;
        } else {
          Object.assign(data.input, extra);
          data.result['granted_scopes'] = a;
          data.result['denied_scopes'] = Array.isArray(a) ? a : [];
          data.result['resource'] = b;
          data.result['redeemable_until'] = typeof a === 'string' ? a : env.time;
          data.result['reasons'] = Array.isArray(b) ? b : [{ code: 'x', message: a }, ...(typeof b === 'string' ? [{ code: 'y', m: b }] : [])];
        }
        // An offer and an elevation, as the Decider writes them or with members of any value.
        if (typeof a === 'number' || a === null) {
          data.result['access_request'] = {
            endpoint: 'e',
            expires_at: typeof b === 'string' ? b : env.time,
            template: realistic ? { decision_id: env.decision_id, duration_seconds: a } : b,
            scopes: realistic ? data.input['scopes'] : a,
            max_duration_seconds: a,
          };
          data.input['elevation'] = {
            access_request_id: realistic ? env.decision_id : a,
            approved_until: b,
            resource: realistic ? data.input['resource'] : b,
            scopes: a,
          };
          data.result['approval'] = realistic ? { id: env.decision_id, approved_until: b } : b;
        }
        const { canonical, expanded } = roundTrip(env, JSON.parse(JSON.stringify(data)) as ReturnType<typeof decided>);
        expect(expanded).toBe(canonical);
      }),
      { numRuns: 2000 },
    );
  });

  it('a stored text changed after it was written does not expand to the original canonical text', () => {
    const { canonical, stored } = roundTrip(ENVELOPE, decided());
    const text = stored as string;
    for (const changed of [
      text.replace(/"~":\d+/, '"~":1'),
      text.replace(/"~":\d+/, '"~":"t"'),
      text.replace(/"~":(\d+)/, (_, n: string) => `"~":${Number(n) ^ (1 << 27)}`),
      text.replace('"outcome":"allow"', '"outcome":"deny"'),
      text.replace('"u":60000', '"u":3600000'),
      text.replace('"p":"', '"policy_revision":"'),
      text.slice(0, -2),
      // Rewrites that parse to the same value but read differently in SQL or to the search's text match.
      text.replace('"outcome"', '"outc\\u006fme"'),
      text.replace('"outcome":', '"outcome": '),
      text.replace('"integration":"crm"', '"integration":"evil","integration":"crm"'),
      // A member the stored text leaves out, written back in its canonical place: SQL would read it, so it is a change.
      text.replace('"result":{', '"result":{"denied_scopes":[{"reason":"deny_scope","scope":"admin"}],'),
      text.replace('"result":{', '"result":{"agent_id":"support-resolver",'),
      text.replace('"input":{', '"input":{"agent_id":"support-resolver",'),
      text.replace('"task":{', '"task":{"id":"bench-task-sr",'),
    ]) {
      expect(changed).not.toBe(text);
      expect(expandDecisionData(ENVELOPE, changed)).not.toBe(canonical);
    }
    // Another envelope (an id column changed) rebuilds other data.
    expect(expandDecisionData({ ...ENVELOPE, agent_id: 'support-resolver-2' }, text)).not.toBe(canonical);
  });

  it('keys that are array indexes (which a JSON parse puts first) still round-trip', () => {
    const data = decided();
    (data.input['task'] as { context: Record<string, string> }).context = { customer_id: '1234', '10': 'a', '9': 'b' };
    data.result['reasons'] = [{ code: 'allowed', message: 'granted tickets:write', '2': 'x' }];
    const { canonical, stored, expanded } = roundTrip(ENVELOPE, data);
    expect(JSON.stringify(JSON.parse(stored as string))).not.toBe(stored);
    expect(expanded).toBe(canonical);
  });

  it("a stored text in the earlier writer's member order (JSON.stringify's, not canonical) still expands", () => {
    const { canonical, stored } = roundTrip(ENVELOPE, decided());
    const value = JSON.parse(stored as string) as Record<string, unknown>;
    const earlier = JSON.stringify({ input: value['input'], result: value['result'], p: value['p'], '~': value['~'] });
    expect(earlier).not.toBe(stored);
    expect(expandDecisionData(ENVELOPE, earlier)).toBe(canonical);
  });

  it('members valued undefined and -0 encode as canonical JSON has them (left out, 0)', () => {
    const data = decided();
    data.input['ttl_seconds'] = undefined;
    (data.input['task'] as Record<string, unknown>)['type'] = undefined;
    data.result['token_ttl_seconds'] = -0;
    data.result['reasons'] = [{ code: 'allowed', message: 'granted tickets:write', detail: undefined }];
    const { canonical, stored, expanded } = roundTrip(ENVELOPE, data as ReturnType<typeof decided>);
    expect(canonical).not.toContain('"ttl_seconds"');
    expect(stored).not.toContain('undefined');
    expect(expanded).toBe(canonical);
  });

  it('refuses exactly the nesting the whole event would refuse (the limit counts from the data root)', () => {
    const nested = (levels: number): Record<string, unknown> => {
      let value: Record<string, unknown> = {};
      for (let i = 0; i < levels; i++) value = { a: value };
      return value;
    };
    for (const levels of [123, 124, 125, 126]) {
      const data = decided();
      (data.input['task'] as { context: Record<string, unknown> }).context = nested(levels);
      const whole = (() => {
        try {
          canonicalJson(data);
          return true;
        } catch {
          return false;
        }
      })();
      const encoded = (() => {
        try {
          encodeDecisionData(ENVELOPE, data.input, data.result, data.policy_revision);
          return true;
        } catch {
          return false;
        }
      })();
      expect(encoded, `${levels} levels`).toBe(whole);
    }
  });

  it('data with no canonical encoding is refused with the path from the data root', () => {
    const data = decided();
    (data.input['task'] as { context: Record<string, unknown> }).context = { bad: Number.NaN };
    expect(() => encodeDecisionData(ENVELOPE, data.input, data.result, data.policy_revision)).toThrow(/\$\.input\.task\.context\.bad/);
  });

  it('canonical data stored as it is (a row from before migration 11) reads back unchanged', () => {
    const canonical = canonicalJson(decided());
    expect(expandDecisionData(ENVELOPE, canonical)).toBe(canonical);
    const tricky = canonicalJson({ ...decided(), input: { note: 'a "~": inside a string' } });
    expect(expandDecisionData(ENVELOPE, tricky)).toBe(tricky);
  });
});
