/**
 * The revocation feed on SQLite itself: its query plans use the partial indexes of migration 5, migration 5 indexes
 * a database of schema version 4, and a revocation still queued when a snapshot is read (group commit runs on the
 * next turn) is not in it but in the next increment. The feed's contract on both engines: revocation-feed.test.ts.
 */
import Database from 'better-sqlite3';
import { legacyDecisionsTable } from './legacy-schema.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SQL } from '../../src/store/sql.js';
import { at, decision, grant, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

const CALLER = 'support-middleware';
let temp: TempStore;

beforeEach(async () => {
  temp = await tempStore({}, 'sqlite');
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
  it('loses nothing to a revocation committed right after it: the next increment has it', async () => {
    await issue('j-1', at(600));
    const pending = revoke('j-1');
    // Queued, not yet committed (group commit runs on the next turn): the snapshot does not see it.
    const snapshot = await temp.store.revocationFeed({ after_seq: null, now: at(10) });
    expect(snapshot.revoked).toEqual([]);
    expect(await pending).toBe(true);
    expect(await temp.store.revocationFeed({ after_seq: snapshot.seq, now: at(10) })).toEqual({
      seq: await head(),
      revoked: [{ jti: 'j-1', expires_at: at(600) }],
      snapshot: false,
    });
  });
});

describe('cost', () => {
  it('reads through the partial indexes: revoked tokens only, token.revoked events only', () => {
    const db = new Database(temp.path, { readonly: true });
    try {
      const plan = (sql: string, ...params: unknown[]): string =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
      expect(plan(SQL.selectRevokedUnexpiredTokens, at(0))).toMatch(/SEARCH tokens USING INDEX tokens_revoked \(expires_at>\?\)/);
      expect(plan(SQL.selectRevocationsAfter, 0, 10)).toMatch(/SEARCH e USING COVERING INDEX audit_events_token_revoked \(seq>\?\)/);
    } finally {
      db.close();
    }
  });

  it('migration 5 indexes what a database of schema version 4 holds already', async () => {
    await temp.store.registerTask(task('t-1'));
    await issue('j-1', at(600), 't-1');
    await issue('j-2', at(600));
    await temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(30) });
    await temp.store.close();
    const db = new Database(temp.path);
    legacyDecisionsTable(db, { accessRequestId: true, mintClaim: false });
    db.exec(`DROP TABLE usage_daily; DROP TABLE token_use_span; DROP TABLE usage_rollup_cursor; DROP TABLE suggestions;
      DROP INDEX tokens_revoked; DROP INDEX audit_events_token_revoked; DROP TABLE notifications; DROP INDEX audit_events_decision_agent; DROP TABLE console_sessions;
      DELETE FROM schema_migrations WHERE version >= 5`);
    db.close();
    const store = await temp.reopen();
    expect(await store.revocationFeed({ after_seq: null, now: at(40) })).toMatchObject({ revoked: [{ jti: 'j-1', expires_at: at(600) }] });
    expect((await store.revocationFeed({ after_seq: 0, now: at(40) })).revoked).toEqual([{ jti: 'j-1', expires_at: at(600) }]);
  });
});
