import { afterEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { pgQuery } from '../support/postgres.js';
import { tempStore, type TempStore } from './store-fixtures.js';

/**
 * The store's leadership lease (store.ts `Leadership`): of the replicas on one PostgreSQL schema exactly one leads
 * the jobs one process does for all, and another takes over once it is gone. SQLite always leads.
 */

/** postgres-connection.ts: 'AGPD' + 2, and the schema's hash. */
const LEADER_LOCK_CLASS = 0x41475044 + 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asks `store` until it leads (a lock freed by a session that ended is granted once the server has ended it). */
async function untilLeading(store: Store, tries = 200): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await store.leadership().check()) return true;
    await sleep(50);
  }
  return false;
}

describe('leadership on PostgreSQL: two stores on one schema', () => {
  let temp: TempStore | undefined;
  const others: Store[] = [];
  afterEach(async () => {
    for (const s of others.splice(0)) await s.close();
    await temp?.cleanup();
    temp = undefined;
  });

  it('exactly one leads; closing it lets the other lead', async () => {
    temp = await tempStore({ leaseRetryMs: 100 }, 'postgres');
    const a = temp.store;
    const b = await temp.openAnother({ leaseRetryMs: 100 });
    others.push(b);
    const [ledA, ledB] = await Promise.all([a.leadership().check(), b.leadership().check()]);
    expect([ledA, ledB].filter(Boolean)).toHaveLength(1);
    const [leader, follower] = ledA ? [a, b] : [b, a];
    // Asked again, nothing changes: the holder confirms, the other is refused.
    expect(await leader.leadership().check()).toBe(true);
    expect(await follower.leadership().check()).toBe(false);
    expect(leader.leadership().leading).toBe(true);
    expect(follower.leadership().leading).toBe(false);

    if (leader === a) {
      await a.close();
    } else {
      others.splice(0);
      await b.close();
    }
    expect(leader.leadership().leading).toBe(false);
    expect(await untilLeading(follower)).toBe(true);
    // The retry timer took it too (leading is what the jobs read).
    expect(follower.leadership().leading).toBe(true);
  });

  it('a leader whose connection is ended by the server stops leading, and the other takes over', async () => {
    temp = await tempStore({ leaseRetryMs: 100 }, 'postgres');
    const a = temp.store;
    expect(await a.leadership().check()).toBe(true);
    const b = await temp.openAnother({ leaseRetryMs: 100 });
    others.push(b);
    expect(await b.leadership().check()).toBe(false);
    // What a failover or an administrator does to the leader's session: the lock goes with it.
    const ended = await pgQuery<{ ended: boolean }>(
      temp.path,
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_locks
       WHERE locktype = 'advisory' AND classid = $1 AND objid = hashtext($2)::oid AND granted`,
      [LEADER_LOCK_CLASS, temp.path],
    );
    expect(ended.map((r) => r.ended)).toEqual([true]);
    expect(await untilLeading(b)).toBe(true);
    // A's next check finds its connection gone: it no longer leads (and the lock is b's, so it cannot take it back).
    for (let i = 0; i < 200 && a.leadership().leading; i++) await sleep(50);
    expect(a.leadership().leading).toBe(false);
    expect(await a.leadership().check()).toBe(false);
  });
});

describe('leadership on SQLite', () => {
  it('always leads: one machine, and the workers leave the jobs to worker 1', async () => {
    const temp = await tempStore({}, 'sqlite');
    try {
      const other = await temp.openAnother();
      try {
        expect(temp.store.leadership().leading).toBe(true);
        expect(await other.leadership().check()).toBe(true);
      } finally {
        await other.close();
      }
    } finally {
      await temp.cleanup();
    }
  });
});
