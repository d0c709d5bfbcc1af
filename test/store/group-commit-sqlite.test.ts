/**
 * The group-commit queue on SQLite's own driver and on drivers made for the test: a refused operation rolled back
 * to its savepoint, or (a driver without savepoints, as PostgreSQL's) the batch replayed without it; a transaction
 * the engine itself rolls back (RAISE ROLLBACK); durable commits (synchronous = FULL for one transaction). The
 * store's side of group commit, on both engines: group-commit.test.ts.
 */
import Database from 'better-sqlite3';
import { existsSync, rmSync, symlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { isPdpError } from '../../src/errors/pdp-error.js';
import { GroupCommitQueue } from '../../src/store/group-commit.js';
import type { TransactionDriver } from '../../src/store/group-commit.js';
import { openSqlite, sqliteExecutor, sqliteTransactionDriver } from '../../src/store/sqlite-connection.js';
import { StoreFailure, get, run } from '../../src/store/sql-program.js';
import type { Program } from '../../src/store/sql-program.js';
import type { NewAuditEvent } from '../../src/audit/index.js';
import { at, decision, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore | undefined;
afterEach(async () => {
  await temp?.cleanup();
  temp = undefined;
});

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

describe('group commit on SQLite', () => {
  const INSERT = 'INSERT INTO t (k) VALUES (?)';

  it('waits out a pause before a transaction without holding the event loop; what is enqueued meanwhile joins it', async () => {
    temp = await tempStore({}, 'sqlite');
    const path = temp.path.replace(/pdp\.db$/, 'queue.db');
    const db = openSqlite(path);
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
    let release: (() => void) | undefined;
    let pauses = 0;
    const queue = new GroupCommitQueue(sqliteTransactionDriver(db, sqliteExecutor(db)), {
      pauseBeforeBatch: () => {
        if (pauses++ > 0) return undefined;
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    });
    const first = queue.enqueue(() => run(INSERT, 'a'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(release).toBeDefined();
    // Paused: the event loop runs (this test does), more work queues, nothing is committed.
    const more = [queue.enqueue(() => run(INSERT, 'b')), queue.enqueue(() => run(INSERT, 'c'))];
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(rowCount(path, 't')).toBe(0);
    expect(queue.stats().transactions).toBe(0);
    release?.();
    await Promise.all([first, ...more]);
    expect(rowCount(path, 't')).toBe(3);
    expect(queue.stats()).toMatchObject({ transactions: 1, largest_batch: 3 });
    await queue.close();
    db.close();
  });

  it('a pause that rejects still lets the batch commit, and close() commits what waits behind a pause', async () => {
    temp = await tempStore({}, 'sqlite');
    const path = temp.path.replace(/pdp\.db$/, 'queue.db');
    const db = openSqlite(path);
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
    let calls = 0;
    const queue = new GroupCommitQueue(sqliteTransactionDriver(db, sqliteExecutor(db)), {
      // The first batch: a pause that rejects, then none (asked again when it ends); the second: one that never ends.
      pauseBeforeBatch: () => (++calls === 1 ? Promise.reject(new Error('checkpointer gone')) : calls === 3 ? new Promise<void>(() => undefined) : undefined),
    });
    await queue.enqueue(() => run(INSERT, 'a'));
    expect(rowCount(path, 't')).toBe(1);
    // The second pause never ends: close() does not wait for it.
    const waiting = queue.enqueue(() => run(INSERT, 'b'));
    await new Promise((resolve) => setImmediate(resolve));
    await queue.close();
    await waiting;
    expect(rowCount(path, 't')).toBe(2);
    db.close();
  });
  function* refusedAfterWriting(): Program<never> {
    yield* run(INSERT, 'b');
    throw new RangeError('refused after writing');
  }

  it('rolls a refused operation back to its savepoint, writes included, and commits its neighbours', async () => {
    temp = await tempStore({}, 'sqlite');
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
    temp = await tempStore({}, 'sqlite');
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

  it('takes no savepoint for an operation enqueued with savepoint: false; one that refuses after writing all the same is replayed out', async () => {
    temp = await tempStore({}, 'sqlite');
    const db = openSqlite(temp.path.replace(/pdp\.db$/, 'nosavepoint.db'));
    db.exec('CREATE TABLE t (k TEXT PRIMARY KEY)');
    const executed: string[] = [];
    const execute = sqliteExecutor(db);
    const queue = new GroupCommitQueue({
      ...sqliteTransactionDriver(db, execute),
      executeSync: (step) => {
        executed.push(step.sql);
        return execute(step);
      },
    });
    const none = { savepoint: false };
    // The common case: writes that cannot refuse after their first statement commit with no savepoint statement.
    expect(await Promise.all([queue.enqueue(() => run(INSERT, 'a'), none), queue.enqueue(() => run(INSERT, 'e'), none)])).toEqual([1, 1]);
    expect(executed).toEqual(['BEGIN IMMEDIATE', INSERT, INSERT, 'COMMIT']);
    // A wrong declaration costs a replay, never a wrong write: its insert is gone, its neighbours (one with a savepoint) commit.
    executed.length = 0;
    const results = await Promise.allSettled([
      queue.enqueue(() => run(INSERT, 'c')),
      queue.enqueue(refusedAfterWriting, none),
      queue.enqueue(() => run(INSERT, 'd'), none),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(db.prepare('SELECT k FROM t ORDER BY k').pluck().all()).toEqual(['a', 'c', 'd', 'e']);
    expect(executed.filter((sql) => !sql.startsWith('INSERT'))).toEqual([
      'BEGIN IMMEDIATE', 'SAVEPOINT op', 'RELEASE op', 'ROLLBACK', 'BEGIN IMMEDIATE', 'SAVEPOINT op', 'RELEASE op', 'COMMIT',
    ]);
    await queue.close();
    db.close();
  });

  it('when the engine aborts the transaction (RAISE ROLLBACK), rejects every write of it with store_unavailable and writes none', async () => {
    const t = (temp = await tempStore({}, 'sqlite'));
    await t.store.appendEvents([authFailed(0)]);
    const saboteur = new Database(t.path);
    saboteur.exec(`CREATE TRIGGER sabotage BEFORE INSERT ON audit_events WHEN NEW.caller_id = 'boom'
      BEGIN SELECT RAISE(ROLLBACK, 'disk on fire'); END`);
    const results = await Promise.allSettled([
      t.store.recordDecision(decision('d-1')),
      t.store.appendEvents([authFailed(2, 'boom')]),
      t.store.registerTask(task('t-1')),
    ]);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const reason = (result as PromiseRejectedResult).reason as unknown;
      expect(isPdpError(reason) && reason.code === 'store_unavailable' && reason.status === 503).toBe(true);
    }
    expect(t.store.stats().failed_transactions).toBe(1);
    expect(rowCount(t.path, 'audit_events')).toBe(1);
    expect(rowCount(t.path, 'decisions')).toBe(0);
    expect(rowCount(t.path, 'tasks')).toBe(0);

    saboteur.exec('DROP TRIGGER sabotage');
    saboteur.close();
    await t.store.recordDecision(decision('d-1'));
    expect(await t.store.verifyStoredChain()).toMatchObject({ ok: true, count: 2 });
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

  it('with syncCommitted: commits as usual, tells the others at once and the durable one after the sync', async () => {
    const { tx, calls } = recording();
    let release: () => void = () => undefined;
    const driver: TransactionDriver = { ...tx, durableCommits: undefined, syncCommitted: () => new Promise<void>((ok) => (release = () => (calls.push('synced'), ok()))) };
    const queue = new GroupCommitQueue(driver);
    const signed = queue.enqueue(say(calls, 'sign'), { durable: true }).then(() => calls.push('signer told'));
    await queue.enqueue(say(calls, 'neighbour')).then(() => calls.push('neighbour told'));
    expect(calls).toEqual(['BEGIN', 'sign', 'neighbour', 'COMMIT', 'neighbour told']);
    // The event loop is free meanwhile: the next transaction commits before the sync is done.
    await queue.enqueue(say(calls, 'next')).then(() => calls.push('next told'));
    release();
    await signed;
    expect(calls.slice(5)).toEqual(['BEGIN', 'next', 'COMMIT', 'next told', 'synced', 'signer told']);
  });

  it('with syncCommitted: a sync that fails rejects the durable operation (committed, not known durable), not the others', async () => {
    const { tx, calls } = recording();
    const driver: TransactionDriver = { ...tx, durableCommits: undefined, syncCommitted: () => Promise.reject(new Error('EIO')) };
    const queue = new GroupCommitQueue(driver);
    const [signed, neighbour] = await Promise.allSettled([queue.enqueue(say(calls, 'sign'), { durable: true }), queue.enqueue(say(calls, 'neighbour'))]);
    expect(signed).toMatchObject({ status: 'rejected', reason: { code: 'store_unavailable' } });
    expect(neighbour).toMatchObject({ status: 'fulfilled' });
    expect(calls).toEqual(['BEGIN', 'sign', 'neighbour', 'COMMIT']);
  });

  const levelInside2 = (db: Database.Database) =>
    function* (): Program<unknown> {
      yield* run('CREATE TABLE IF NOT EXISTS t (x)');
      return db.pragma('synchronous', { simple: true });
    };

  it('on a SQLite file under synchronous = NORMAL, syncs the real WAL file after the commit, off the writer (the level stays NORMAL)', async () => {
    temp = await tempStore({}, 'sqlite');
    const path = temp.path.replace(/pdp\.db$/, 'durable.db');
    const db = openSqlite(path);
    const driver = sqliteTransactionDriver(db, sqliteExecutor(db));
    expect(driver.durableCommits).toBeUndefined();
    expect(driver.syncCommitted).toBeTypeOf('function');
    const queue = new GroupCommitQueue(driver);
    const level = () => db.pragma('synchronous', { simple: true });
    const levelInside = function* (): Program<unknown> {
      return level();
    };
    expect(await queue.enqueue(levelInside, { durable: true })).toBe(1);
    // Without its WAL file there is nothing to sync: the durable write is refused, never reported durable.
    rmSync(`${path}-wal`);
    await expect(queue.enqueue(levelInside, { durable: true })).rejects.toMatchObject({ code: 'store_unavailable' });
    await queue.close();
    db.close();

    const full = openSqlite(temp.path.replace(/pdp\.db$/, 'full.db'), { synchronous: 'full' });
    const fullTx = sqliteTransactionDriver(full, sqliteExecutor(full));
    expect(fullTx.durableCommits).toBeUndefined();
    expect(fullTx.syncCommitted).toBeUndefined();
    full.close();

    // Through a symlink, SQLite keeps the WAL beside the real file: that one is synced.
    const real = temp.path.replace(/pdp\.db$/, 'real.db');
    const link = temp.path.replace(/pdp\.db$/, 'link.db');
    openSqlite(real).close();
    symlinkSync(real, link);
    const linked = openSqlite(link);
    const linkedQueue = new GroupCommitQueue(sqliteTransactionDriver(linked, sqliteExecutor(linked)));
    expect(await linkedQueue.enqueue(levelInside2(linked), { durable: true })).toBe(1);
    expect(existsSync(`${real}-wal`)).toBe(true);
    expect(existsSync(`${link}-wal`)).toBe(false);
    await linkedQueue.close();
    linked.close();

    // In memory there is no WAL file: synchronous = FULL around the transaction instead.
    const memory = openSqlite(':memory:');
    expect(sqliteTransactionDriver(memory, sqliteExecutor(memory)).durableCommits).toBeTypeOf('function');
    memory.close();
  });
});
