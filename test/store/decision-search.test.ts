/**
 * searchDecisions (the audit console's decision search) and what the console's other reads use: newest first,
 * each filter narrowing, keyset pages that together list every match exactly once, the scan bound, and
 * verifyStoredChain's progress. On both engines (vitest.config.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { DecisionSearchQuery, RecordDecisionInput } from '../../src/store/index.js';
import { at, decision, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
afterEach(async () => temp.cleanup());

/** d-i at second 10 * i: agents a/b alternating, tasks t-(i % 3), every third a deny, reasons by outcome. */
function nth(i: number): RecordDecisionInput {
  const outcome = i % 3 === 0 ? 'deny' : i % 7 === 0 ? 'error' : 'allow';
  const reasons = outcome === 'deny' ? [{ code: 'deny_scope', message: 'm' }, ...(i % 2 === 0 ? [{ code: 'approval_required', message: 'm' }] : [])] : [{ code: outcome === 'allow' ? 'allowed' : 'internal', message: 'm' }];
  const agent = i % 2 === 0 ? 'agent-a' : 'agent-b';
  return decision(`d-${i}`, {
    outcome,
    agent_id: agent,
    task_id: null,
    created_at: at(10 * i),
    redeemable_until: outcome === 'allow' ? at(10 * i + 60) : null,
    input: { agent_id: agent, caller_id: 'support-middleware', integration: 'crm', scopes: ['tickets:write'] },
    result: { outcome, allow: outcome === 'allow', granted_scopes: outcome === 'allow' ? ['tickets:write'] : [], reasons },
  });
}

const N = 60;
async function seed(): Promise<void> {
  temp = await tempStore();
  for (let i = 1; i <= N; i++) {
    await temp.store.recordDecision(nth(i));
    // Events that are not decisions between them: never listed.
    if (i % 10 === 0) await temp.store.appendEvents([{ type: 'policy.loaded', time: at(10 * i + 1), data: { revision: `rev-${i}` } }]);
  }
}

/** Every page from the head down, following next_before_seq. */
async function allPages(query: Omit<DecisionSearchQuery, 'before_seq'>): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let before: number | undefined;
  let pages = 0;
  for (;;) {
    const page = await temp.store.searchDecisions({ ...query, ...(before === undefined ? {} : { before_seq: before }) });
    pages++;
    ids.push(...page.events.map((e) => e.decision_id as string));
    if (page.next_before_seq === null) return { ids, pages };
    expect(page.next_before_seq).toBeLessThan(before ?? Infinity);
    before = page.next_before_seq;
  }
}

const expected = (keep: (i: number) => boolean): string[] =>
  Array.from({ length: N }, (_, k) => N - k).filter(keep).map((i) => `d-${i}`);

describe('searchDecisions', () => {
  it.each([
    { note: 'no filter: every decision, newest first', query: {}, keep: () => true },
    { note: 'agent', query: { agent_id: 'agent-a' }, keep: (i: number) => i % 2 === 0 },
    { note: 'decision id', query: { decision_id: 'd-17' }, keep: (i: number) => i === 17 },
    { note: 'outcome deny', query: { outcome: 'deny' as const }, keep: (i: number) => i % 3 === 0 },
    { note: 'outcome error', query: { outcome: 'error' as const }, keep: (i: number) => i % 3 !== 0 && i % 7 === 0 },
    { note: 'reason code (any of a decision reasons)', query: { reason: 'approval_required' }, keep: (i: number) => i % 3 === 0 && i % 2 === 0 },
    { note: 'since (inclusive) and until (exclusive)', query: { since: at(100), until: at(200) }, keep: (i: number) => i >= 10 && i < 20 },
    { note: 'agent and outcome together', query: { agent_id: 'agent-b', outcome: 'deny' as const }, keep: (i: number) => i % 2 === 1 && i % 3 === 0 },
    { note: 'no match', query: { agent_id: 'nobody' }, keep: () => false },
  ])('narrows by $note; pages of 4 list every match once, in order', async ({ query, keep }) => {
    await seed();
    const { ids } = await allPages({ ...query, limit: 4 });
    expect(ids).toEqual(expected(keep));
    const one = await temp.store.searchDecisions({ ...query, limit: 1000 });
    expect(one.events.map((e) => e.decision_id)).toEqual(expected(keep));
    expect(one.next_before_seq).toBeNull();
    expect(one.events.every((e) => e.type === 'decision')).toBe(true);
  });

  it('filters by task', async () => {
    temp = await tempStore();
    await temp.store.registerTask({ id: 'task-1', agent_id: 'support-resolver', type: 'triage', context: {}, registered_by: 'o', registered_at: at(0), expires_at: at(3600), trace_id: null });
    await temp.store.recordDecision(decision('d-1', { task_id: 'task-1', created_at: at(1) }));
    await temp.store.recordDecision(decision('d-2', { created_at: at(2) }));
    await temp.store.recordDecision(decision('d-3', { task_id: 'task-1', created_at: at(3) }));
    const page = await temp.store.searchDecisions({ task_id: 'task-1', limit: 10 });
    expect(page.events.map((e) => e.decision_id)).toEqual(['d-3', 'd-1']);
  });

  it('stops after its scan bound with a short page, and the next page continues where it stopped', async () => {
    await seed();
    // Errors are rare (d-7, d-14, d-28, d-35, d-49, d-56): a bound of 10 decisions read per page.
    const first = await temp.store.searchDecisions({ outcome: 'error', limit: 50, scan_limit: 10 });
    expect(first.events.map((e) => e.decision_id)).toEqual(['d-56']);
    expect(first.next_before_seq).not.toBeNull();
    expect(first.scanned_through_seq).toBe(first.next_before_seq);
    const { ids, pages } = await allPages({ outcome: 'error', limit: 50, scan_limit: 10 });
    expect(ids).toEqual(expected((i) => i % 3 !== 0 && i % 7 === 0));
    expect(pages).toBeGreaterThanOrEqual(6);
  });

  it('matches a reason code exactly, whatever LIKE would make of it (%, _, \\, ", case)', async () => {
    temp = await tempStore();
    const codes = ['a%b', 'a_b', 'axb', 'a\\b', 'a"b', 'A_B', 'a%bc'];
    for (const [i, code] of codes.entries()) {
      await temp.store.recordDecision(decision(`d-${i}`, { created_at: at(i), outcome: 'deny', result: { outcome: 'deny', allow: false, granted_scopes: [], reasons: [{ code, message: 'm' }] } }));
    }
    for (const [i, code] of codes.entries()) {
      const page = await temp.store.searchDecisions({ reason: code, limit: 10 });
      expect(page.events.map((e) => e.decision_id), code).toEqual([`d-${i}`]);
    }
    const both = await temp.store.searchDecisions({ reason: 'a_b', outcome: 'deny', limit: 10 });
    expect(both.events.map((e) => e.decision_id)).toEqual(['d-1']);
    expect((await temp.store.searchDecisions({ reason: 'a_b', outcome: 'allow', limit: 10 })).events).toEqual([]);
  });

  it('answers an empty page with no cursor on an empty trail, and below the first seq', async () => {
    temp = await tempStore();
    expect(await temp.store.searchDecisions({ limit: 10 })).toEqual({ events: [], next_before_seq: null, scanned_through_seq: null });
    await temp.store.recordDecision(decision('d-1'));
    expect(await temp.store.searchDecisions({ limit: 10, before_seq: 1 })).toEqual({ events: [], next_before_seq: null, scanned_through_seq: null });
  });

  it('refuses a malformed time or limit (TypeError: the route validates first)', async () => {
    temp = await tempStore();
    await expect(temp.store.searchDecisions({ limit: 0 })).rejects.toThrow(TypeError);
    await expect(temp.store.searchDecisions({ limit: 1, since: 'yesterday' })).rejects.toThrow(TypeError);
  });
});

describe('firstSeqStampedAtOrAfter', () => {
  it('finds the earliest-stamped event at or after a time, null past the last', async () => {
    await seed();
    const events = [];
    for await (const e of temp.store.iterateEvents()) events.push(e);
    const d20 = events.find((e) => e.decision_id === 'd-20');
    expect(await temp.store.firstSeqStampedAtOrAfter(at(195))).toBe(d20?.seq);
    expect(await temp.store.firstSeqStampedAtOrAfter(at(0))).toBe(1);
    expect(await temp.store.firstSeqStampedAtOrAfter(at(10_000))).toBeNull();
  });
});

describe('verifyStoredChain onProgress', () => {
  it('hears of each page, ending at the total', async () => {
    temp = await tempStore();
    await temp.store.appendEvents(Array.from({ length: 1234 }, (_, i) => ({ type: 'policy.loaded' as const, time: at(i), data: { revision: `r-${i}` } })));
    const seen: Array<[number, number]> = [];
    const result = await temp.store.verifyStoredChain({ onProgress: (verified, total) => seen.push([verified, total]) });
    expect(result).toMatchObject({ ok: true, count: 1234 });
    expect(seen).toEqual([[0, 1234], [500, 1234], [1000, 1234], [1234, 1234]]);
  });
});
