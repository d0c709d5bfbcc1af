/**
 * The SQLite store's reads of one turn of the event loop share one read transaction (`TurnReads`,
 * sqlite-connection.ts): what that promises and what it does not hold up. Another connection to the file stands for
 * another process (a CLI completing a task, another worker).
 */
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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

describe('reads of one turn', () => {
  it('see one state of the database; the next turn sees what another process committed meanwhile', async () => {
    // Both reads are made before this function yields: the same turn.
    const first = temp.store.getTask('t-1');
    completeBehindItsBack('t-1');
    const second = temp.store.getTask('t-1');
    expect((await first)?.status).toBe('active');
    expect((await second)?.status).toBe('active');
    await nextTurn();
    expect((await temp.store.getTask('t-1'))?.status).toBe('completed');
  });

  it('never see a state older than a commit of this store made before them', async () => {
    const before = temp.store.getTask('t-1');
    // Queued in the turn of an open read: the writer ends that read before its own transaction.
    const registered = temp.store.registerTask(task('t-2'));
    expect(await before).toBeDefined();
    expect(await temp.store.getTask('t-2')).toBeUndefined(); // same turn as the queueing: not committed yet
    await registered;
    expect((await temp.store.getTask('t-2'))?.id).toBe('t-2');
    const completed = await temp.store.completeTask({ task_id: 't-2', by: 'orchestrator-1', at: at(30) });
    expect(completed.task.status).toBe('completed');
    expect((await temp.store.getTask('t-2'))?.status).toBe('completed');
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
