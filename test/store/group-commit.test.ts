import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { isPdpError } from '../../src/errors/pdp-error.js';
import { GroupCommitQueue } from '../../src/store/group-commit.js';
import type { TransactionDriver } from '../../src/store/group-commit.js';
import { openSqlite, sqliteExecutor, sqliteTransactionDriver } from '../../src/store/sqlite-connection.js';
import { StoreFailure, get, run } from '../../src/store/sql-program.js';
import type { Program } from '../../src/store/sql-program.js';
import type { NewAuditEvent } from '../../src/audit/index.js';
import { at, decision, grant, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
afterEach(async () => temp.cleanup());

const authFailed = (i: number, caller = `caller-${i}`): NewAuditEvent => ({
  type: 'auth.failed',
  time: at(i),
  caller_id: caller,
  data: { reason: 'bad_key' },
});

function rowCount(path: string, table: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
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
    const reader = new Database(temp.path, { readonly: true });
    const count = reader.prepare('SELECT COUNT(*) AS n FROM audit_events WHERE caller_id = ?');
    try {
      const seen = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          temp.store.appendEvents([authFailed(i)]).then(() => (count.get(`caller-${i}`) as { n: number }).n),
        ),
      );
      expect(seen).toEqual(Array.from({ length: 50 }, () => 1));
    } finally {
      reader.close();
    }
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

  const INSERT = 'INSERT INTO t (k) VALUES (?)';
  function* refusedAfterWriting(): Program<never> {
    yield* run(INSERT, 'b');
    throw new RangeError('refused after writing');
  }

  it('rolls a refused operation back to its savepoint, writes included, and commits its neighbours', async () => {
    temp = await tempStore();
    const db = openSqlite(temp.path.replace(/pdp\.db$/, 'queue.db'));
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
    const queue = new GroupCommitQueue(sqliteTransactionDriver(db, sqliteExecutor(db)));
    const results = await Promise.allSettled([
      queue.enqueue(() => run(INSERT, 'a')),
      queue.enqueue(refusedAfterWriting),
      queue.enqueue(() => run(INSERT, 'c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(RangeError);
    expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['a', 'c']);
    expect(queue.stats()).toMatchObject({ transactions: 1, ops: 2, refused: 1 });
    await queue.close();
    db.close();
  });

  it('without savepoints (the PostgreSQL driver), replays the batch without an operation refused after a write', async () => {
    temp = await tempStore();
    const db = openSqlite(temp.path.replace(/pdp\.db$/, 'replay.db'));
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
    const { savepoint: _none, ...driver } = sqliteTransactionDriver(db, sqliteExecutor(db));
    const executed: string[] = [];
    const execute = sqliteExecutor(db);
    const queue = new GroupCommitQueue({
      ...driver,
      executeSync: (step) => {
        executed.push(step.sql);
        return execute(step);
      },
    });
    const refusedBeforeWriting = function* (): Program<never> {
      yield* get('SELECT k FROM t WHERE k = ?', 'a');
      throw new RangeError('refused before writing');
    };
    const results = await Promise.allSettled([
      queue.enqueue(() => run(INSERT, 'a')),
      queue.enqueue(refusedBeforeWriting),
      queue.enqueue(refusedAfterWriting),
      queue.enqueue(() => run(INSERT, 'c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled']);
    expect(results.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.value))).toEqual([
      1,
      'refused before writing',
      'refused after writing',
      1,
    ]);
    expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['a', 'c']);
    // No savepoint was ever taken: one transaction rolled back at the late refusal, then the batch ran again without it.
    expect(executed.filter((sql) => !sql.startsWith('INSERT') && !sql.startsWith('SELECT'))).toEqual([
      'BEGIN IMMEDIATE', 'ROLLBACK', 'BEGIN IMMEDIATE', 'COMMIT',
    ]);
    expect(queue.stats()).toMatchObject({ transactions: 1, failed_transactions: 0, ops: 2, refused: 2 });
    await queue.close();
    db.close();
  });

  it.each([
    { note: 'the statement fails (RAISE ABORT)', raise: "RAISE(ABORT, 'disk on fire')" },
    { note: 'the engine aborts the transaction (RAISE ROLLBACK)', raise: "RAISE(ROLLBACK, 'disk on fire')" },
  ])('when $note, rejects every write of the transaction with store_unavailable and writes none', async ({ raise }) => {
    temp = await tempStore();
    await temp.store.appendEvents([authFailed(0)]);
    const saboteur = new Database(temp.path);
    saboteur.exec(`CREATE TRIGGER sabotage BEFORE INSERT ON audit_events WHEN NEW.caller_id = 'boom'
      BEGIN SELECT ${raise}; END`);
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
    expect(rowCount(temp.path, 'audit_events')).toBe(1);
    expect(rowCount(temp.path, 'decisions')).toBe(0);
    expect(rowCount(temp.path, 'tasks')).toBe(0);

    saboteur.exec('DROP TRIGGER sabotage');
    saboteur.close();
    await temp.store.recordDecision(decision('d-1'));
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
  });

  it('rejects every write whose operation ran when COMMIT itself fails (deferred constraint)', async () => {
    temp = await tempStore();
    const saboteur = new Database(temp.path);
    saboteur.exec(`CREATE TABLE sabotage_parent (id INTEGER PRIMARY KEY);
      CREATE TABLE sabotage_child (parent INTEGER REFERENCES sabotage_parent (id) DEFERRABLE INITIALLY DEFERRED);
      CREATE TRIGGER sabotage AFTER INSERT ON audit_events WHEN NEW.caller_id = 'boom'
      BEGIN INSERT INTO sabotage_child VALUES (42); END`);
    saboteur.close();
    const results = await Promise.allSettled([
      temp.store.appendEvents([authFailed(1)]),
      temp.store.appendEvents([authFailed(2, 'boom')]),
    ]);
    expect(results.map((r) => r.status === 'rejected' && (r.reason as { code?: string }).code)).toEqual([
      'store_unavailable',
      'store_unavailable',
    ]);
    // The operations ran; it is COMMIT that failed.
    expect(((results[0] as PromiseRejectedResult).reason as Error).cause).toMatchObject({
      code: 'SQLITE_CONSTRAINT_FOREIGNKEY',
    });
    expect(rowCount(temp.path, 'audit_events')).toBe(0);
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
    const saboteur = new Database(temp.path);
    saboteur.exec(`CREATE TRIGGER sabotage BEFORE INSERT ON audit_events WHEN NEW.type = 'token.revoked'
      BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`);
    await expect(temp.store.completeTask({ task_id: 't-1', by: 'orchestrator-1', at: at(10) })).rejects.toMatchObject({
      code: 'store_unavailable',
    });
    saboteur.close();
    expect(await temp.store.getTask('t-1')).toMatchObject({ status: 'active', completed_at: null });
    expect(await temp.store.getToken(token.jti)).toMatchObject({ revoked_at: null });
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true, count: 3 });
  });

  it('commits what is queued on close, then refuses new writes', async () => {
    temp = await tempStore();
    const pending = Array.from({ length: 30 }, (_, i) => temp.store.appendEvents([authFailed(i)]));
    await temp.store.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(30);
    await expect(temp.store.appendEvents([authFailed(99)])).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(rowCount(temp.path, 'audit_events')).toBe(30);
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

describe('durable commits', () => {
  /** A connection that records what the queue does with it; `failCommit` makes COMMIT throw as the database would. */
  function recording(options: { failCommit?: boolean } = {}): { tx: TransactionDriver; calls: string[] } {
    const calls: string[] = [];
    const tx: TransactionDriver = {
      executeSync: (step) => {
        if (step.sql === 'COMMIT' && options.failCommit) throw new StoreFailure(new Error('disk I/O error'));
        calls.push(step.sql);
        return step.kind === 'run' ? 0 : undefined;
      },
      begin: 'BEGIN',
      commit: 'COMMIT',
      rollback: 'ROLLBACK',
      durableCommits: (on) => void calls.push(`durable ${String(on)}`),
    };
    return { tx, calls };
  }
  /** An operation that only says it ran. */
  const say = (calls: string[], what: string) =>
    function* (): Program<number> {
      return calls.push(what);
    };

  it('makes the transaction of a durable operation commit durably, and goes back before anyone is told', async () => {
    const { tx, calls } = recording();
    const queue = new GroupCommitQueue(tx);
    await queue.enqueue(say(calls, 'plain'));
    await Promise.all([
      queue.enqueue(say(calls, 'neighbour')).then(() => calls.push('neighbour told')),
      queue.enqueue(say(calls, 'sign'), { durable: true }).then(() => calls.push('signer told')),
    ]);
    await queue.enqueue(say(calls, 'plain again'));
    expect(calls).toEqual([
      'BEGIN', 'plain', 'COMMIT',
      'durable true', 'BEGIN', 'neighbour', 'sign', 'COMMIT', 'durable false', 'neighbour told', 'signer told',
      'BEGIN', 'plain again', 'COMMIT',
    ]);
  });

  it('goes back after a durable transaction that failed', async () => {
    const { tx, calls } = recording({ failCommit: true });
    const queue = new GroupCommitQueue(tx);
    await expect(queue.enqueue(say(calls, 'sign'), { durable: true })).rejects.toMatchObject({ code: 'store_unavailable' });
    expect(calls).toEqual(['durable true', 'BEGIN', 'sign', 'ROLLBACK', 'durable false']);
  });

  it('on SQLite under synchronous = NORMAL, commits that transaction with synchronous = FULL (the WAL synced) and only it', async () => {
    temp = await tempStore();
    const db = openSqlite(temp.path.replace(/pdp\.db$/, 'durable.db'));
    const queue = new GroupCommitQueue(sqliteTransactionDriver(db, sqliteExecutor(db)));
    const level = () => db.pragma('synchronous', { simple: true });
    const levelInside = function* (): Program<unknown> {
      return level();
    };
    expect(await queue.enqueue(levelInside)).toBe(1);
    expect(await queue.enqueue(levelInside, { durable: true })).toBe(2);
    expect(level()).toBe(1);
    expect(await queue.enqueue(levelInside)).toBe(1);
    await queue.close();
    db.close();

    const full = openSqlite(temp.path.replace(/pdp\.db$/, 'full.db'), { synchronous: 'full' });
    const fullTx = sqliteTransactionDriver(full, sqliteExecutor(full));
    expect(fullTx.durableCommits).toBeUndefined();
    full.close();
  });
});
