/**
 * The SQLite store's reads of one turn of the event loop share one read transaction, for at most 1 ms (`TurnReads`,
 * sqlite-connection.ts): what that promises and what it does not hold up. Another connection to the file stands for
 * another process (a CLI completing a task, another worker).
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { get } from '../../src/store/sql-program.js';
import { TurnReads, sqliteExecutor } from '../../src/store/sqlite-connection.js';
import { at, task, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
let other: Database.Database;

beforeEach(async () => {
  temp = await tempStore({}, 'sqlite');
  await temp.store.registerTask(task('t-1'));
  other = new Database(temp.path, { timeout: 0 });
});
afterEach(async () => {
  other.close();
  await temp.cleanup();
});

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
const completeBehindItsBack = (id: string): void => {
  other.prepare("UPDATE tasks SET status = 'completed', completed_at = ?, completed_by = 'cli' WHERE id = ?").run(at(60), id);
};

describe('TurnReads on a connection of its own', () => {
  let db: Database.Database;
  beforeEach(() => {
    db = new Database(temp.path);
  });
  afterEach(() => {
    // The turn's closer (a pending setImmediate) finds nothing left to end.
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
  });

  /** Reads the task's status through `reads`. */
  const statusOf = (reads: TurnReads): string | undefined =>
    reads.run(function* () {
      return (yield* get<{ status: string }>('SELECT status FROM tasks WHERE id = ?', 't-1'))?.status;
    });

  it('reads share one state while the transaction is younger than its bound; the next turn sees another process\'s commit', async () => {
    const reads = new TurnReads(db, sqliteExecutor(db), 60_000);
    expect(statusOf(reads)).toBe('active');
    completeBehindItsBack('t-1');
    expect(statusOf(reads)).toBe('active'); // the same read transaction
    await nextTurn();
    expect(db.inTransaction).toBe(false); // ended with its turn
    expect(statusOf(reads)).toBe('completed');
  });

  it('a read finding the transaction older than its bound begins another: it sees what was committed meanwhile', () => {
    const reads = new TurnReads(db, sqliteExecutor(db), 0);
    expect(statusOf(reads)).toBe('active');
    completeBehindItsBack('t-1');
    const until = performance.now() + 1;
    while (performance.now() < until); // older than the bound (0 ms), same turn
    expect(statusOf(reads)).toBe('completed');
  });

  it('end() commits the read transaction, and a failed COMMIT is rolled back rather than left open', () => {
    let failCommit = true;
    const execute = sqliteExecutor(db);
    const reads = new TurnReads(db, (step) => {
      if (step.sql === 'COMMIT' && failCommit) throw new Error('commit refused');
      return execute(step);
    }, 60_000);
    expect(statusOf(reads)).toBe('active');
    expect(db.inTransaction).toBe(true);
    reads.end();
    expect(db.inTransaction).toBe(false);
    failCommit = false;
    completeBehindItsBack('t-1');
    expect(statusOf(reads)).toBe('completed');
    reads.end();
    expect(db.inTransaction).toBe(false);
  });
});

describe('the store\'s reads', () => {
  it('a write queued before a read of the same turn commits: the writer ends the read transaction first', async () => {
    const registered = temp.store.registerTask(task('t-2'));
    expect(await temp.store.getTask('t-2')).toBeUndefined(); // read in the turn the write was queued: not committed yet
    await registered;
    expect((await temp.store.getTask('t-2'))?.id).toBe('t-2');
    const completed = await temp.store.completeTask({ task_id: 't-2', by: 'orchestrator-1', at: at(30) });
    expect(completed.task.status).toBe('completed');
    expect((await temp.store.getTask('t-2'))?.status).toBe('completed');
  });

  it('never see a state older than a commit of this store made before them', async () => {
    const before = temp.store.getTask('t-1');
    // Queued in the turn of an open read: the writer ends that read before its own transaction.
    const registered = temp.store.registerTask(task('t-3'));
    expect(await before).toBeDefined();
    await registered;
    expect((await temp.store.getTask('t-3'))?.id).toBe('t-3');
  });

  it('see another process\'s commit from the next turn on', async () => {
    expect((await temp.store.getTask('t-1'))?.status).toBe('active');
    completeBehindItsBack('t-1');
    await nextTurn();
    expect((await temp.store.getTask('t-1'))?.status).toBe('completed');
  });

  it('hold the file only until the turn ends: another connection can then reset the WAL', async () => {
    await temp.store.getTask('t-1');
    // Still the turn of the read: its transaction holds a snapshot, so the WAL cannot be truncated under it.
    const during = other.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    expect(during[0]?.busy).toBe(1);
    await nextTurn();
    const after = other.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    expect(after[0]?.busy).toBe(0);
  });

  it('leave the store closable in the middle of a turn', async () => {
    await temp.store.getTask('t-1');
    await temp.store.close();
    // cleanup() closes it again: close is idempotent.
  });
});
