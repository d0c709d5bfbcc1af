/**
 * Policy suggestions as stored (issue 18): saveSuggestions upserts by id and never undoes an operator's decision on
 * the same evidence (a dismissed suggestion comes back only when its evidence_hash changes); decideSuggestion marks
 * one applied or dismissed and writes its audit event in the same transaction, in the chain that verifies.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { policySuggestionAppliedEvent, policySuggestionDismissedEvent } from '../../src/audit/index.js';
import type { NewAuditEvent } from '../../src/audit/index.js';
import type { SuggestionRecord } from '../../src/store/index.js';
import { run } from '../../src/store/sql-program.js';
import type { StoreContext } from '../../src/store/store-context.js';
import { at, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
beforeEach(async () => {
  temp = await tempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

function suggestion(id: string, more: Partial<SuggestionRecord> = {}): SuggestionRecord {
  return {
    id,
    agent_id: 'code-review-agent',
    integration: 'github',
    kind: 'remove_scope',
    target: 'repo:write',
    proposal: { max_scope: { remove: ['repo:write'] } },
    evidence: { granted: 120, used: 0, days: 90 },
    evidence_hash: 'h1',
    file: 'agents/code-review-agent.yaml',
    file_sha256: SHA_A,
    status: 'open',
    created_at: at(0),
    updated_at: at(0),
    decided_by: null,
    decided_at: null,
    ...more,
  };
}

function dismissal(s: SuggestionRecord, by = 'ops', note: string | null = 'seasonal'): NewAuditEvent {
  return policySuggestionDismissedEvent(at(100), { agent_id: s.agent_id, caller_id: by }, { suggestion_id: s.id, integration: s.integration, kind: s.kind, target: s.target, note });
}

function application(s: SuggestionRecord): NewAuditEvent {
  return policySuggestionAppliedEvent(at(100), { agent_id: s.agent_id, caller_id: 'ops' }, {
    suggestion_id: s.id,
    integration: s.integration,
    kind: s.kind,
    target: s.target,
    file: s.file ?? '',
    file_sha256_before: SHA_A,
    file_sha256_after: SHA_B,
    note: null,
  });
}

describe('saveSuggestions', () => {
  it('saved in a transaction that is undone and run again (a neighbour refused after writing) counts each suggestion once', async () => {
    const s = temp.store;
    // A neighbour that writes, then refuses: SQLite undoes it to a savepoint; PostgreSQL rolls the transaction back
    // and runs it again without it (group-commit.ts), so saveSuggestions' program runs twice there.
    const ctx = (s as unknown as { ctx: StoreContext }).ctx;
    const refusedAfterWriting = ctx.write(function* () {
      yield* run("UPDATE suggestions SET status = 'open' WHERE id = ?", 'sg-none');
      throw new RangeError('refused after writing');
    });
    const saved = s.saveSuggestions([suggestion('sg-1'), suggestion('sg-2', { target: 'pr:write' })], {
      notify: { id: 'nt-1', at: at(1), deliveries: [{ id: 'dl-1', destination: 'hook', approver_group: 'security' }] },
    });
    const [refused, result] = await Promise.allSettled([refusedAfterWriting, saved]);
    expect(refused).toMatchObject({ status: 'rejected', reason: expect.any(RangeError) });
    expect(result).toMatchObject({ status: 'fulfilled', value: { new: ['sg-1', 'sg-2'], notification: { suggestion_ids: ['sg-1', 'sg-2'] } } });
    expect(await s.getNotification('nt-1')).toMatchObject({ suggestion_ids: ['sg-1', 'sg-2'] });
    expect(await s.listDeliveries({ limit: 10 })).toHaveLength(1);
  });

  it('inserts new suggestions open, and replaces an open one (its created_at kept)', async () => {
    const s = temp.store;
    await s.saveSuggestions([suggestion('sg-1'), suggestion('sg-2', { target: 'pr:write' })]);
    expect(await s.getSuggestion('sg-1')).toEqual(suggestion('sg-1'));
    await s.saveSuggestions([suggestion('sg-1', { evidence: { granted: 130, used: 0, days: 91 }, evidence_hash: 'h2', created_at: at(50), updated_at: at(50) })]);
    expect(await s.getSuggestion('sg-1')).toEqual(suggestion('sg-1', { evidence: { granted: 130, used: 0, days: 91 }, evidence_hash: 'h2', updated_at: at(50) }));
    expect(await s.getSuggestion('sg-none')).toBeUndefined();
  });

  it('an applied suggestion made again (its change reverted in the file) is open again, and announced as new', async () => {
    const s = temp.store;
    const first = suggestion('sg-1');
    await s.saveSuggestions([first]);
    await s.decideSuggestion({ id: 'sg-1', status: 'applied', by: 'ops', at: at(100), event: application(first) });
    const again = await s.saveSuggestions([suggestion('sg-1', { created_at: at(200), updated_at: at(200) })]);
    expect(again.new).toEqual(['sg-1']);
    expect(await s.getSuggestion('sg-1')).toEqual(suggestion('sg-1', { updated_at: at(200) }));
  });

  it.each([
    { note: 'dismissed', decide: dismissal, status: 'dismissed' as const },
  ])('a $note suggestion stays so when saved again on the same evidence, and is open again on other evidence', async ({ decide, status }) => {
    const s = temp.store;
    const first = suggestion('sg-1');
    await s.saveSuggestions([first]);
    await s.decideSuggestion({ id: 'sg-1', status, by: 'ops', at: at(100), event: decide(first) });
    const decided = { ...first, status, decided_by: 'ops', decided_at: at(100), updated_at: at(100) };
    await s.saveSuggestions([suggestion('sg-1', { evidence: { granted: 200, used: 0, days: 95 }, created_at: at(200), updated_at: at(200) })]);
    expect(await s.getSuggestion('sg-1')).toEqual(decided);
    await s.saveSuggestions([suggestion('sg-1', { evidence_hash: 'h2', file_sha256: SHA_B, created_at: at(300), updated_at: at(300) })]);
    expect(await s.getSuggestion('sg-1')).toEqual(suggestion('sg-1', { evidence_hash: 'h2', file_sha256: SHA_B, updated_at: at(300) }));
  });

  it.each([
    { note: 'a decided one', list: [suggestion('sg-1', { status: 'dismissed' })] },
    { note: 'one with a decision', list: [suggestion('sg-1', { decided_by: 'ops', decided_at: at(1) })] },
    { note: 'the same id twice', list: [suggestion('sg-1'), suggestion('sg-1')] },
    { note: 'an unknown kind', list: [suggestion('sg-1', { kind: 'add_scope' as 'remove_scope' })] },
    { note: 'a file digest that is not SHA-256', list: [suggestion('sg-1', { file_sha256: 'xyz' })] },
    { note: 'no evidence hash', list: [suggestion('sg-1', { evidence_hash: '' })] },
    { note: 'a time without milliseconds', list: [suggestion('sg-1', { created_at: '2026-01-01T00:00:00Z' })] },
    { note: 'evidence with no JSON encoding', list: [suggestion('sg-1', { evidence: { n: Number.NaN } })] },
  ])('refuses $note, writing nothing', async ({ list }) => {
    await expect(temp.store.saveSuggestions([suggestion('sg-ok', { target: 'x:y' }), ...list])).rejects.toThrow();
    expect(await temp.store.listSuggestions({})).toEqual([]);
  });
});

describe('listSuggestions', () => {
  it('filters by status and agent, in (agent, integration, kind, target) order', async () => {
    const s = temp.store;
    const list = [
      suggestion('sg-3', { agent_id: 'triage-agent', integration: 'slack', target: 'chat:write' }),
      suggestion('sg-2', { target: 'pr:write' }),
      suggestion('sg-1'),
      suggestion('sg-4', { kind: 'shorten_ttl', target: 'token_ttl' }),
    ];
    await s.saveSuggestions(list);
    await s.decideSuggestion({ id: 'sg-2', status: 'dismissed', by: 'ops', at: at(100), event: dismissal(list[1] as SuggestionRecord) });
    const ids = (records: SuggestionRecord[]): string[] => records.map((r) => r.id);
    expect(ids(await s.listSuggestions({}))).toEqual(['sg-2', 'sg-1', 'sg-4', 'sg-3']);
    expect(ids(await s.listSuggestions({ status: 'open' }))).toEqual(['sg-1', 'sg-4', 'sg-3']);
    expect(ids(await s.listSuggestions({ status: 'dismissed' }))).toEqual(['sg-2']);
    expect(ids(await s.listSuggestions({ agent_id: 'triage-agent' }))).toEqual(['sg-3']);
    expect(ids(await s.listSuggestions({ status: 'open', agent_id: 'code-review-agent' }))).toEqual(['sg-1', 'sg-4']);
    expect(ids(await s.listSuggestions({ status: 'applied' }))).toEqual([]);
    await expect(s.listSuggestions({ status: 'closed' as 'open' })).rejects.toThrow(TypeError);
  });
});

describe('decideSuggestion', () => {
  it('writes the status and its audit event in one transaction; the chain verifies', async () => {
    const s = temp.store;
    const sg = suggestion('sg-1');
    await s.saveSuggestions([sg]);
    const before = await s.chainHead();
    const event = application(sg);
    const record = await s.decideSuggestion({ id: 'sg-1', status: 'applied', by: 'ops', at: at(100), event });
    expect(record).toEqual({ ...sg, status: 'applied', decided_by: 'ops', decided_at: at(100), updated_at: at(100) });
    const written = [];
    for await (const e of s.iterateEvents({ from_seq: before.seq + 1 })) written.push(e);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatchObject({ type: 'policy.suggestion.applied', agent_id: 'code-review-agent', caller_id: 'ops', data: event.data });
    expect(await s.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it('of two decisions at once, exactly one succeeds: the other is suggestion_decided, with no event', async () => {
    const s = temp.store;
    const sg = suggestion('sg-1');
    await s.saveSuggestions([sg]);
    const results = await Promise.allSettled([
      s.decideSuggestion({ id: 'sg-1', status: 'applied', by: 'ops', at: at(100), event: application(sg) }),
      s.decideSuggestion({ id: 'sg-1', status: 'dismissed', by: 'ops-2', at: at(100), event: dismissal(sg, 'ops-2') }),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect(results[1]).toMatchObject({ reason: { code: 'suggestion_decided' } });
    const types = [];
    for await (const e of s.iterateEvents({ types: ['policy.suggestion.applied', 'policy.suggestion.dismissed'] })) types.push(e.type);
    expect(types).toEqual(['policy.suggestion.applied']);
  });

  it.each([
    { note: 'an unknown suggestion', id: 'sg-none', status: 'dismissed' as const, event: (sg: SuggestionRecord) => dismissal({ ...sg, id: 'sg-none' }), code: 'not_found' },
    { note: 'an event of the other decision', id: 'sg-1', status: 'dismissed' as const, event: application, error: TypeError },
    { note: 'an event about another suggestion', id: 'sg-1', status: 'dismissed' as const, event: (sg: SuggestionRecord) => dismissal({ ...sg, id: 'sg-2' }), error: TypeError },
    { note: 'an event about another agent', id: 'sg-1', status: 'dismissed' as const, event: (sg: SuggestionRecord) => dismissal({ ...sg, agent_id: 'triage-agent' }), error: TypeError },
    { note: 'a status that is no decision', id: 'sg-1', status: 'open' as 'applied', event: dismissal, error: TypeError },
  ])('refuses $note, writing nothing', async ({ id, status, event, code, error }) => {
    const s = temp.store;
    const sg = suggestion('sg-1');
    await s.saveSuggestions([sg]);
    const head = await s.chainHead();
    const decided = s.decideSuggestion({ id, status, by: 'ops', at: at(100), event: event(sg) });
    if (code !== undefined) await expect(decided).rejects.toMatchObject({ code });
    else await expect(decided).rejects.toThrow(error);
    expect(await s.chainHead()).toEqual(head);
    expect(await s.getSuggestion('sg-1')).toEqual(sg);
  });
});
