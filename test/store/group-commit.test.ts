/**
 * Group commit as the store's callers see it, on either engine: writes queued together commit in one transaction
 * in order, each resolves once committed, a refusal rejects only its own operation, and a failure of the database
 * rejects every write of its transaction and leaves nothing written. The failures are made by a trigger added
 * behind the store's back (SQLite: RAISE; PostgreSQL: a plpgsql function that raises). The queue's own drivers
 * (savepoints, replay, durable commits) on SQLite: group-commit-sqlite.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isPdpError } from '../../src/errors/pdp-error.js';
import type { NewAuditEvent } from '../../src/audit/index.js';
import { at, decision, grant, rawSql, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
afterEach(async () => temp.cleanup());

const authFailed = (i: number, caller = `caller-${i}`): NewAuditEvent => ({
  type: 'auth.failed',
  time: at(i),
  caller_id: caller,
  data: { reason: 'bad_key' },
});

async function rowCount(table: string): Promise<number> {
  return Number((await rawSql<{ n: number }>(temp, `SELECT COUNT(*) AS n FROM ${table}`))[0]?.n);
}

/** A trigger that fails every insert into audit_events whose row matches `when` (a condition on NEW). */
async function sabotage(when: string): Promise<void> {
  if (temp.engine === 'sqlite') {
    await rawSql(temp, `CREATE TRIGGER sabotage BEFORE INSERT ON audit_events WHEN ${when} BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    return;
  }
  await rawSql(temp, `CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$`);
  await rawSql(temp, `CREATE TRIGGER sabotage BEFORE INSERT ON audit_events FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION sabotage()`);
}

async function repair(): Promise<void> {
  await rawSql(temp, temp.engine === 'sqlite' ? 'DROP TRIGGER sabotage' : 'DROP TRIGGER sabotage ON audit_events');
}

describe('group commit', () => {
  it('commits writes issued in the same tick in one transaction, in FIFO order', async () => {
    temp = await tempStore();
    const before = temp.store.stats().transactions;
    const writes = Array.from({ length: 200 }, (_, i) => temp.store.appendEvents([authFailed(i)]));
    const results = await Promise.all(writes);
    expect(temp.store.stats().transactions - before).toBe(1);
    expect(temp.store.stats().largest_batch).toBe(200);
    expect(results.map(([event]) => event?.seq)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(results.map(([event]) => event?.caller_id)).toEqual(Array.from({ length: 200 }, (_, i) => `caller-${i}`));
  });

  it('splits a large burst into transactions of at most maxBatchOps', async () => {
    temp = await tempStore({ maxBatchOps: 25 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => temp.store.appendEvents([authFailed(i)])));
    expect(temp.store.stats()).toMatchObject({ transactions: 4, ops: 100, events: 100, largest_batch: 25 });
  });

  it('resolves each write only once its row is visible to another connection (committed)', async () => {
    temp = await tempStore();
    const seen = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        temp.store
          .appendEvents([authFailed(i)])
          .then(async () => Number((await rawSql<{ n: number }>(temp, 'SELECT COUNT(*) AS n FROM audit_events WHERE caller_id = ?', [`caller-${i}`]))[0]?.n)),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 50 }, () => 1));
  });

  it('rejects only the refused operation; the rest of its transaction commits and the chain stays whole', async () => {
    temp = await tempStore();
    await temp.store.registerTask(task('t-1'));
    const results = await Promise.allSettled([
      temp.store.appendEvents([authFailed(1)]),
      temp.store.registerTask(task('t-1')),
      temp.store.appendEvents([authFailed(2)]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'task_exists' });
    expect(temp.store.stats()).toMatchObject({ transactions: 2, refused: 1, events: 3 });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 3 });
  });

  it('when a statement fails, rejects every write of the transaction with store_unavailable and writes none', async () => {
    temp = await tempStore();
    await temp.store.appendEvents([authFailed(0)]);
    await sabotage("NEW.caller_id = 'boom'");
    const results = await Promise.allSettled([
      temp.store.recordDecision(decision('d-1')),
      temp.store.appendEvents([authFailed(2, 'boom')]),
      temp.store.registerTask(task('t-1')),
    ]);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const reason = (result as PromiseRejectedResult).reason as unknown;
      expect(isPdpError(reason) && reason.code === 'store_unavailable' && reason.status === 503).toBe(true);
    }
    expect(temp.store.stats().failed_transactions).toBe(1);
    expect(await rowCount('audit_events')).toBe(1);
    expect(await rowCount('decisions')).toBe(0);
    expect(await rowCount('tasks')).toBe(0);

    await repair();
    await temp.store.recordDecision(decision('d-1'));
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
  });

  it('rejects every write whose operation ran when COMMIT itself fails (deferred constraint)', async () => {
    temp = await tempStore();
    await rawSql(temp, 'CREATE TABLE sabotage_parent (id INTEGER PRIMARY KEY)');
    await rawSql(temp, 'CREATE TABLE sabotage_child (parent INTEGER REFERENCES sabotage_parent (id) DEFERRABLE INITIALLY DEFERRED)');
    if (temp.engine === 'sqlite') {
      await rawSql(temp, `CREATE TRIGGER sabotage AFTER INSERT ON audit_events WHEN NEW.caller_id = 'boom'
        BEGIN INSERT INTO sabotage_child VALUES (42); END`);
    } else {
      await rawSql(temp, `CREATE FUNCTION sabotage() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO sabotage_child VALUES (42); RETURN NULL; END $$`);
      await rawSql(temp, `CREATE TRIGGER sabotage AFTER INSERT ON audit_events FOR EACH ROW WHEN (NEW.caller_id = 'boom') EXECUTE FUNCTION sabotage()`);
    }
    const results = await Promise.allSettled([
      temp.store.appendEvents([authFailed(1)]),
      temp.store.appendEvents([authFailed(2, 'boom')]),
    ]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code)).toEqual([
      'store_unavailable',
      'store_unavailable',
    ]);
    // The operations ran; it is COMMIT that failed, on the foreign key checked only then.
    expect(((results[0] as PromiseRejectedResult).reason as Error).cause).toMatchObject({
      code: temp.engine === 'sqlite' ? 'SQLITE_CONSTRAINT_FOREIGNKEY' : '23503',
    });
    expect(await rowCount('audit_events')).toBe(0);
    await temp.store.appendEvents([authFailed(3)]);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 1 });
  });

  it('leaves nothing half-written when a multi-row operation fails late', async () => {
    temp = await tempStore();
    await temp.store.registerTask(task('t-1'));
    await temp.store.recordDecision(decision('d-1', { task_id: 't-1' }));
    const { token } = await temp.store.redeemDecision({
      decision_id: 'd-1',
      caller_id: 'support-middleware',
      now: at(5),
      makeToken: () => grant({ jti: 'j-1', issued_at: at(5), expires_at: at(305) }),
    });
    // Fails on the last insert of completeTask: after the task update and the token revocation.
    await sabotage("NEW.type = 'token.revoked'");
    await expect(temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(10) })).rejects.toMatchObject({
      code: 'store_unavailable',
    });
    expect(await temp.store.getTask('t-1')).toMatchObject({ status: 'active', completed_at: null });
    expect(await temp.store.getToken(token.jti)).toMatchObject({ revoked_at: null });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 3 });
  });

  it('refuses text holding U+0000 as that write\'s own invalid_request: its neighbours commit (PostgreSQL text cannot hold it)', async () => {
    temp = await tempStore();
    const results = await Promise.allSettled([
      temp.store.registerTask(task('t-1')),
      temp.store.registerTask(task('t-\u0000-2')),
      temp.store.registerTask(task('t-3')),
    ]);
    expect(results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code?: string }).code))).toEqual(['ok', 'invalid_request', 'ok']);
    expect(await rowCount('tasks')).toBe(2);
    await expect(temp.store.getTask('t-\u0000-2')).rejects.toMatchObject({ code: 'invalid_request' });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
  });

  it('commits what is queued on close, then refuses new writes', async () => {
    temp = await tempStore();
    const pending = Array.from({ length: 30 }, (_, i) => temp.store.appendEvents([authFailed(i)]));
    await temp.store.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(30);
    await expect(temp.store.appendEvents([authFailed(99)])).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(await rowCount('audit_events')).toBe(30);
  });

  it('refuses writes beyond the queue bound with store_unavailable', async () => {
    temp = await tempStore({ maxQueuedOps: 10 });
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => temp.store.appendEvents([authFailed(i)])));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).toEqual([
      expect.objectContaining({ code: 'store_unavailable' }),
      expect.objectContaining({ code: 'store_unavailable' }),
    ]);
  });
});
