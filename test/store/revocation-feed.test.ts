/**
 * The revocation feed the enforcement proxy polls: a snapshot (every revoked, unexpired token and the head's seq),
 * then increments (the token.revoked events after a seq, at most `limit`, with each token's expiry). Nothing is lost
 * between a snapshot and the first increment, completing a task arrives as its tokens' jtis, and a seq the stored
 * chain no longer covers is answered with a snapshot. The reads go through the partial indexes of migration 5
 * (SQLite's query plans and migration: revocation-feed-sqlite.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REVOCATION_FEED_MAX_LIMIT } from '../../src/store/revocation-ops.js';
import { SQL } from '../../src/store/sql.js';
import type { RevocationFeedInput } from '../../src/store/index.js';
import { pgSession } from '../support/postgres.js';
import { at, decision, grant, rawSql, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

const CALLER = 'support-middleware';
let temp: TempStore;

beforeEach(async () => {
  temp = await tempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

/** Issues a token `jti` (expiring at `expires`) from a fresh allow decision, optionally of task `taskId`. */
async function issue(jti: string, expires: string, taskId: string | null = null): Promise<void> {
  await temp.store.recordDecision(decision(`d-${jti}`, { task_id: taskId }));
  await temp.store.redeemDecision({ decision_id: `d-${jti}`, caller_id: CALLER, now: at(5), makeToken: () => grant({ jti, expires_at: expires }) });
}

const revoke = (jti: string, seconds = 20) => temp.store.revokeToken({ jti, caller_id: CALLER, at: at(seconds) });
const head = async () => (await temp.store.chainHead()).seq;

describe('a snapshot (after_seq null)', () => {
  it('is empty on an empty store, at seq 0', async () => {
    expect(await temp.store.revocationFeed({ after_seq: null, now: at(0) })).toEqual({ seq: 0, revoked: [], snapshot: true });
  });

  it('lists every revoked token not expired at now, however revoked, and the head', async () => {
    await temp.store.registerTask(task('t-1'));
    await issue('j-live', at(600));
    await issue('j-revoked', at(600));
    await issue('j-short', at(100));
    await issue('j-task-a', at(900), 't-1');
    await issue('j-task-b', at(700), 't-1');
    await revoke('j-revoked');
    await revoke('j-short');
    await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(30) });
    const feed = await temp.store.revocationFeed({ after_seq: null, now: at(100) });
    expect(feed).toEqual({
      seq: await head(),
      snapshot: true,
      // In expiry order. j-short expired at now (expires_at <= now): left out; j-live was never revoked.
      revoked: [
        { jti: 'j-revoked', expires_at: at(600) },
        { jti: 'j-task-b', expires_at: at(700) },
        { jti: 'j-task-a', expires_at: at(900) },
      ],
    });
    expect((await temp.store.revocationFeed({ after_seq: null, now: at(99) })).revoked.map((r) => r.jti)).toContain('j-short');
  });

  it('loses nothing to a revocation racing it: the snapshot or the next increment has it, never neither', async () => {
    // Whether each revocation commits before or after the snapshot's read is up to the engine (SQLite's group
    // commit runs on the next turn, PostgreSQL's writer and readers are separate connections): either way the
    // snapshot's seq covers exactly what it lists, so the increment from that seq has the rest.
    for (let round = 0; round < 10; round++) {
      const jti = `j-${round}`;
      await issue(jti, at(600));
      const pending = revoke(jti);
      const snapshot = await temp.store.revocationFeed({ after_seq: null, now: at(10) });
      expect(await pending).toBe(true);
      const increment = await temp.store.revocationFeed({ after_seq: snapshot.seq, now: at(10) });
      const listed = [...snapshot.revoked, ...increment.revoked].filter((r) => r.jti === jti);
      expect(listed).toEqual([{ jti, expires_at: at(600) }]);
      expect(increment.seq).toBe(await head());
    }
  });
});

describe('an increment (after_seq a seq)', () => {
  it('lists the revocations after the seq and covers up to the head; nothing new keeps the seq', async () => {
    await issue('j-1', at(600));
    await issue('j-2', at(650));
    const start = await temp.store.revocationFeed({ after_seq: null, now: at(10) });
    expect(await temp.store.revocationFeed({ after_seq: start.seq, now: at(10) })).toEqual({ seq: start.seq, revoked: [], snapshot: false });
    await revoke('j-2');
    await revoke('j-1', 21);
    const next = await temp.store.revocationFeed({ after_seq: start.seq, now: at(30) });
    expect(next).toEqual({
      seq: await head(),
      revoked: [
        { jti: 'j-2', expires_at: at(650) },
        { jti: 'j-1', expires_at: at(600) },
      ],
      snapshot: false,
    });
    // Events that are not revocations move the seq on, and list nothing.
    await issue('j-3', at(600));
    expect(await temp.store.revocationFeed({ after_seq: next.seq, now: at(30) })).toEqual({ seq: await head(), revoked: [], snapshot: false });
  });

  it('carries the completion of a task as the jtis of its tokens', async () => {
    await temp.store.registerTask(task('t-1'));
    await issue('j-a', at(600), 't-1');
    await issue('j-b', at(600), 't-1');
    await issue('j-other', at(600));
    const start = await temp.store.revocationFeed({ after_seq: null, now: at(10) });
    const closure = await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(30) });
    const feed = await temp.store.revocationFeed({ after_seq: start.seq, now: at(30) });
    expect(feed.revoked.map((r) => r.jti).sort()).toEqual([...closure.revoked_jtis].sort());
    expect(feed.revoked.map((r) => r.jti).sort()).toEqual(['j-a', 'j-b']);
  });

  it('lists a revoked token that has expired since, with its expiry (the caller drops it)', async () => {
    await issue('j-1', at(60));
    await revoke('j-1');
    expect((await temp.store.revocationFeed({ after_seq: 0, now: at(120) })).revoked).toEqual([{ jti: 'j-1', expires_at: at(60) }]);
  });

  it('stops at `limit` revocations, at the seq of the last one listed; the next call goes on from there', async () => {
    const jtis = ['j-1', 'j-2', 'j-3', 'j-4', 'j-5'];
    for (const jti of jtis) await issue(jti, at(600));
    const start = await head();
    for (const jti of jtis) await revoke(jti);
    const revokedAt = new Map<string, number>();
    for await (const e of temp.store.iterateEvents({ types: ['token.revoked'] })) revokedAt.set(e.jti as string, e.seq);
    const pages: string[][] = [];
    let seq = start;
    const seqs: number[] = [];
    for (let i = 0; i < 4; i++) {
      const page = await temp.store.revocationFeed({ after_seq: seq, now: at(30), limit: 2 });
      pages.push(page.revoked.map((r) => r.jti));
      seqs.push(page.seq);
      seq = page.seq;
    }
    expect(pages).toEqual([['j-1', 'j-2'], ['j-3', 'j-4'], ['j-5'], []]);
    const last = await head();
    expect(seqs).toEqual([revokedAt.get('j-2'), revokedAt.get('j-4'), last, last]);
  });

  it('answers a seq before the latest prune with a snapshot: the revocations pruned away are not lost', async () => {
    await issue('j-1', at(600));
    await revoke('j-1', 20);
    await issue('j-2', at(600));
    // At 700 both tokens have expired: nothing live holds their decisions.
    const { checkpoint } = await temp.store.pruneEvents({ before: at(100), at: at(700) });
    expect(checkpoint?.last_pruned_seq).toBeGreaterThan(2);
    const feed = await temp.store.revocationFeed({ after_seq: 1, now: at(30) });
    expect(feed).toEqual({ seq: await head(), revoked: [{ jti: 'j-1', expires_at: at(600) }], snapshot: true });
    // From the checkpoint on, the chain is whole: an increment.
    expect(await temp.store.revocationFeed({ after_seq: checkpoint?.last_pruned_seq ?? -1, now: at(30) })).toMatchObject({ revoked: [], snapshot: false });
  });

  it('answers a seq past the head (another database, an older backup) with a snapshot at the head', async () => {
    await issue('j-1', at(600));
    await revoke('j-1');
    const h = await head();
    expect(await temp.store.revocationFeed({ after_seq: h + 100, now: at(30) })).toEqual({ seq: h, revoked: [{ jti: 'j-1', expires_at: at(600) }], snapshot: true });
  });
});

describe('misuse', () => {
  it.each([
    { note: 'a negative seq', input: { after_seq: -1, now: at(0) } },
    { note: 'a fractional seq', input: { after_seq: 1.5, now: at(0) } },
    { note: 'a seq as text', input: { after_seq: '3' as unknown as number, now: at(0) } },
    { note: 'no seq at all', input: { now: at(0) } as unknown as RevocationFeedInput },
    { note: 'a time without milliseconds', input: { after_seq: null, now: '2026-01-01T00:00:00Z' } },
    { note: 'a limit of 0', input: { after_seq: 0, now: at(0), limit: 0 } },
    { note: 'a limit past the maximum', input: { after_seq: 0, now: at(0), limit: REVOCATION_FEED_MAX_LIMIT + 1 } },
  ])('refuses $note with a TypeError', async ({ input }) => {
    await expect(temp.store.revocationFeed(input)).rejects.toThrow(TypeError);
  });

  it('is store_unavailable once the store is closed', async () => {
    await temp.store.close();
    await expect(temp.store.revocationFeed({ after_seq: null, now: at(0) })).rejects.toMatchObject({ code: 'store_unavailable' });
  });
});

describe('cost', () => {
  /**
   * The plan of a statement of the feed, as text. PostgreSQL reads tables this small sequentially unless told
   * otherwise: with sequential scans off it still must choose the partial index (one whose WHERE the query does not
   * imply cannot be used at all). SQLite's exact plans: revocation-feed-sqlite.test.ts.
   */
  async function plan(sql: string, params: unknown[]): Promise<string> {
    if (temp.engine === 'sqlite') return (await rawSql<{ detail: string }>(temp, `EXPLAIN QUERY PLAN ${sql}`, params)).map((r) => r.detail).join(' | ');
    return pgSession(temp.path, async (query) => {
      await query('SET enable_seqscan = off');
      let n = 0;
      const rows = await query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql.replace(/\?/g, () => `$${++n}`)}`, params);
      return rows.map((r) => r['QUERY PLAN']).join(' | ');
    });
  }

  it('reads through the partial indexes: revoked tokens only, token.revoked events only', async () => {
    await issue('j-1', at(600));
    await revoke('j-1');
    expect(await plan(SQL.selectRevokedUnexpiredTokens, [at(0)])).toMatch(/\btokens_revoked\b/);
    expect(await plan(SQL.selectRevocationsAfter, [0, 10])).toMatch(/\baudit_events_token_revoked\b/);
  });
});
