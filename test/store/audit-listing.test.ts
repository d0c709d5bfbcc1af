import { afterEach, describe, expect, it } from 'vitest';
import { GENESIS_HASH, exportJsonl, verifyExportLines } from '../../src/audit/index.js';
import type { AuditEventV1, NewAuditEvent } from '../../src/audit/index.js';
import { at, decision, rawSql, storedText, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
afterEach(async () => temp.cleanup());

const policyLoaded = (i: number): NewAuditEvent => ({ type: 'policy.loaded', time: at(i), data: { revision: `rev-${i}` } });

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

describe('iterateEvents', () => {
  it('streams every event in seq order across many pages', async () => {
    temp = await tempStore();
    await temp.store.appendEvents(Array.from({ length: 1234 }, (_, i) => policyLoaded(i)));
    const events = await collect(temp.store.iterateEvents());
    expect(events).toHaveLength(1234);
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 1234 }, (_, i) => i + 1));
  });

  it.each([
    { note: 'types', query: { types: ['decision' as const] }, expected: ['d-1', 'd-2', 'd-3'] },
    { note: 'outcome', query: { outcome: 'deny' as const }, expected: ['d-2'] },
    { note: 'decision_id', query: { decision_id: 'd-3' }, expected: ['d-3'] },
    { note: 'caller_id', query: { caller_id: 'pep-b' }, expected: ['d-3'] },
    { note: 'since and until', query: { since: at(20), until: at(30) }, expected: ['d-2', 'policy'] },
    { note: 'from_seq', query: { from_seq: 3 }, expected: ['d-2', 'policy', 'd-3'] },
    { note: 'no match', query: { agent_id: 'nobody' }, expected: [] },
    { note: 'no types', query: { types: [] }, expected: [] },
  ])('filters by $note', async ({ query, expected }) => {
    temp = await tempStore();
    await temp.store.recordDecision(decision('d-1', { created_at: at(10) }));
    await temp.store.appendEvents([policyLoaded(15)]);
    await temp.store.recordDecision(decision('d-2', { outcome: 'deny', created_at: at(20), redeemable_until: null }));
    await temp.store.appendEvents([policyLoaded(25)]);
    await temp.store.recordDecision(decision('d-3', { caller_id: 'pep-b', created_at: at(30) }));
    const events = await collect(temp.store.iterateEvents(query));
    expect(events.map((e) => e.decision_id ?? 'policy')).toEqual(expected);
  });

  it('does not hold up writers while a slow consumer is between events', async () => {
    temp = await tempStore();
    await temp.store.appendEvents(Array.from({ length: 1200 }, (_, i) => policyLoaded(i)));
    let seen = 0;
    for await (const _event of temp.store.iterateEvents()) {
      seen++;
      if (seen % 400 === 0) await temp.store.appendEvents([policyLoaded(5000 + seen)]);
    }
    expect(seen).toBeGreaterThanOrEqual(1200);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 1203 });
  });
});

describe('pruneEvents', () => {
  it('deletes the old prefix, writes a checkpoint, and the rest still verifies', async () => {
    temp = await tempStore();
    const written = await temp.store.appendEvents(Array.from({ length: 10 }, (_, i) => policyLoaded(i + 1)));
    const fifth = written[4] as AuditEventV1;

    const result = await temp.store.pruneEvents({ before: at(6), at: at(100) });
    expect(result).toEqual({
      pruned: 5,
      checkpoint: { last_pruned_seq: 5, last_pruned_hash: fifth.hash, pruned_at: at(100), pruned_count: 5 },
      event: expect.objectContaining({
        seq: 11,
        time: at(100),
        type: 'audit.pruned',
        data: { from_seq: 1, to_seq: 5, last_hash: fifth.hash, before: at(6) },
      }),
      held_by: null,
    });
    expect(await temp.store.chainStart()).toMatchObject({ start_seq: 6, start_prev_hash: fifth.hash });
    expect((await collect(temp.store.iterateEvents())).map((e) => e.seq)).toEqual([6, 7, 8, 9, 10, 11]);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 6, last_seq: 11, pruned_by: 11 });

    await temp.store.appendEvents([policyLoaded(11)]);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 7, last_seq: 12 });
    expect(await temp.store.pruneEvents({ before: at(6), at: at(101) })).toMatchObject({ pruned: 0, checkpoint: { last_pruned_seq: 5 }, event: null });
  });

  it('keeps the chain going after everything was pruned, and across a restart', async () => {
    temp = await tempStore();
    await temp.store.appendEvents(Array.from({ length: 3 }, (_, i) => policyLoaded(i)));
    const third = await temp.store.chainHead();
    const { event } = await temp.store.pruneEvents({ before: at(1000), at: at(1000) });
    expect(event).toMatchObject({ seq: 4, prev_hash: third.hash, type: 'audit.pruned', data: { from_seq: 1, to_seq: 3, last_hash: third.hash } });
    expect(await temp.store.chainHead()).toEqual({ seq: 4, hash: event?.hash });
    const store = await temp.reopen();
    const [next] = await store.appendEvents([policyLoaded(1001)]);
    expect(next).toMatchObject({ seq: 5, prev_hash: event?.hash });
    expect(await store.verifyStoredChain()).toMatchObject({ ok: true, count: 2, last_seq: 5, pruned_by: 4 });
  });

  it('still detects a deletion right after the checkpoint, and a forged checkpoint', async () => {
    temp = await tempStore();
    await temp.store.appendEvents(Array.from({ length: 10 }, (_, i) => policyLoaded(i + 1)));
    await temp.store.pruneEvents({ before: at(6), at: at(100) });
    await temp.store.close();

    await rawSql(temp, 'DELETE FROM audit_events WHERE seq = 6');
    expect(await (await temp.reopen()).verifyStoredChain()).toMatchObject({ ok: false, kind: 'removed', seq: 6 });

    await temp.store.close();
    await rawSql(temp, 'UPDATE audit_checkpoints SET last_pruned_seq = 6, last_pruned_hash = ?', ['0'.repeat(64)]);
    expect(await (await temp.reopen()).verifyStoredChain()).toMatchObject({ ok: false, kind: 'changed', seq: 7 });
  });

  it('exports a pruned chain that verifies as a file, with no access to the store', async () => {
    temp = await tempStore();
    await temp.store.appendEvents(Array.from({ length: 10 }, (_, i) => policyLoaded(i + 1)));
    await temp.store.pruneEvents({ before: at(4), at: at(100) });
    const start = await temp.store.chainStart();
    const lines: string[] = [];
    for await (const line of exportJsonl(start, temp.store.iterateEvents())) lines.push(line);
    await temp.store.close();
    expect(await verifyExportLines(lines)).toMatchObject({ ok: true, count: 8, header: { start_seq: 4 } });
    expect(start.start_prev_hash).not.toBe(GENESIS_HASH);
  });
});

describe('pruning can be told from deleting by hand', () => {
  /** 30 events, seq n at at(n); the raw database (rawSql), as someone with write access to it would edit it. */
  async function thirty(): Promise<AuditEventV1[]> {
    temp = await tempStore();
    const written = await temp.store.appendEvents(Array.from({ length: 30 }, (_, i) => policyLoaded(i + 1)));
    await temp.store.close();
    return written;
  }
  it('refuses a chain whose first events were deleted behind a checkpoint row written by hand', async () => {
    const events = await thirty();
    await rawSql(temp, 'DELETE FROM audit_events WHERE seq <= 20');
    await rawSql(temp, 'INSERT INTO audit_checkpoints (last_pruned_seq, last_pruned_hash, pruned_at, pruned_count) VALUES (20, ?, ?, 20)', [events[19]!.hash, at(100)]);
    expect(await (await temp.reopen()).verifyStoredChain()).toMatchObject({ ok: false, kind: 'removed', seq: 20 });
  });

  it('refuses a checkpoint moved past the one a real prune recorded', async () => {
    const events = await thirty();
    const store = await temp.reopen();
    await store.pruneEvents({ before: at(11), at: at(100) });
    expect(await store.verifyStoredChain()).toMatchObject({ ok: true, count: 21, pruned_by: 31 });
    await store.close();
    await rawSql(temp, 'DELETE FROM audit_events WHERE seq <= 20');
    await rawSql(temp, 'UPDATE audit_checkpoints SET last_pruned_seq = 20, last_pruned_hash = ?, pruned_count = 20', [events[19]!.hash]);
    expect(await (await temp.reopen()).verifyStoredChain()).toMatchObject({ ok: false, kind: 'removed', seq: 20 });
  });

  it.each([
    { note: 'its time', sql: `UPDATE audit_checkpoints SET pruned_at = '${at(101)}'` },
    { note: 'its count', sql: 'UPDATE audit_checkpoints SET pruned_count = 9' },
  ])('refuses a checkpoint whose $note differs from the audit.pruned event that records it', async ({ sql }) => {
    await thirty();
    await (await temp.reopen()).pruneEvents({ before: at(11), at: at(100) });
    await temp.store.close();
    await rawSql(temp, sql);
    expect(await (await temp.reopen()).verifyStoredChain()).toMatchObject({ ok: false, kind: 'changed', seq: 10 });
  });

  it.each([
    { note: 'the checkpoint itself, with its hash', head: (e: AuditEventV1[]) => ({ seq: 10, hash: e[9]!.hash }), want: { ok: true } },
    { note: 'the checkpoint, with another hash', head: () => ({ seq: 10, hash: 'a'.repeat(64) }), want: { ok: false, kind: 'changed', seq: 10 } },
    { note: 'a pruned event nothing records', head: (e: AuditEventV1[]) => ({ seq: 4, hash: e[3]!.hash }), want: { ok: false, kind: 'removed', seq: 4 } },
    { note: 'a pruned event, any hash', head: () => ({ seq: 4, hash: 'a'.repeat(64) }), want: { ok: false, kind: 'removed', seq: 4 } },
  ])('checks a head recorded before the chain start against what the chain records: $note', async ({ head, want }) => {
    const events = await thirty();
    const store = await temp.reopen();
    await store.pruneEvents({ before: at(11), at: at(100) });
    expect(await store.verifyStoredChain({ expectedLast: head(events) })).toMatchObject(want);
  });

  it('checks a head before the start against an earlier prune that named it', async () => {
    const events = await thirty();
    const store = await temp.reopen();
    await store.pruneEvents({ before: at(6), at: at(100) });
    await store.pruneEvents({ before: at(11), at: at(101) });
    expect(await store.chainStart()).toMatchObject({ start_seq: 11 });
    expect(await store.verifyStoredChain({ expectedLast: { seq: 5, hash: events[4]!.hash } })).toMatchObject({ ok: true, pruned_by: 32 });
    expect(await store.verifyStoredChain({ expectedLast: { seq: 5, hash: 'b'.repeat(64) } })).toMatchObject({ ok: false, kind: 'changed', seq: 5 });
  });

  it('never lets audit.* events in through appendEvents, and never masks them', async () => {
    temp = await tempStore({ mask: ['**.last_hash', '**.before'] });
    await expect(temp.store.appendEvents([{ type: 'audit.pruned', time: at(1), data: {} }])).rejects.toThrow(TypeError);
    await temp.store.appendEvents([policyLoaded(1), policyLoaded(2)]);
    const { event } = await temp.store.pruneEvents({ before: at(2), at: at(3) });
    expect(event?.data).toMatchObject({ last_hash: expect.stringMatching(/^[0-9a-f]{64}$/), before: at(2) });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, pruned_by: 3 });
  });
});

describe('masking in the store', () => {
  it('stores configured fields only as digests: in events, in the decision read back, anywhere in the database', async () => {
    temp = await tempStore({ mask: ['input.task.context.ssn', 'credential'] });
    const ssn = '987-65-4321';
    const context = { customer_id: '1234', ssn };
    const recorded = await temp.store.recordDecision(
      decision('d-1', {
        input: { agent_id: 'support-resolver', task: { id: 't-1', context, registered: false } },
      }),
    );
    await temp.store.appendEvents([{ type: 'auth.failed', time: at(2), data: { credential: 'hunter2-secret' } }]);

    const digest = (recorded.input as { task: { context: { ssn: string } } }).task.context.ssn;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const [event] = await temp.store.decisionChain('d-1');
    expect(event?.data).toMatchObject({ input: { task: { context: { customer_id: '1234', ssn: digest } } } });
    expect((await temp.store.getDecision('d-1'))?.input).toEqual(recorded.input);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });

    await temp.store.close();
    // SQLite: anywhere in the file; PostgreSQL: in any text column of any table.
    const bytes = await storedText(temp);
    expect(bytes).toContain('customer_id');
    expect(bytes).not.toContain(ssn);
    expect(bytes).not.toContain('hunter2-secret');
  });
});
