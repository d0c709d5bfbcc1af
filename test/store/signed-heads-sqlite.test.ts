/**
 * Signing a head on SQLite: under synchronous = NORMAL the signing transaction alone commits with the WAL synced
 * (FULL), so the head is durable before it leaves the database. SQLite's own: PostgreSQL commits durably always.
 */
import Database from 'better-sqlite3';
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HeadSigner, signHead } from '../../src/audit/index.js';
import type { AuditEventV1, AuditSigningKey, NewAuditEvent } from '../../src/audit/index.js';
import { at, tempStore } from './store-fixtures.js';
import type { TempStore } from './store-fixtures.js';

let temp: TempStore;
const { privateKey } = generateKeyPairSync('ed25519');
const KEY: AuditSigningKey = { kid: 'a'.repeat(43), privateKey };
const policyLoaded = (i: number): NewAuditEvent => ({ type: 'policy.loaded', time: at(i), data: { revision: `rev-${i}` } });

/** Signs the head at `at(seconds)`, as the HeadSigner does. */
const sign = (seconds: number) => async (): Promise<AuditEventV1 | null> => temp.store.signHead((head) => signHead(head, at(seconds), KEY));

/** 20 policy.loaded events, a signed head after seq 8 (event 9) and after seq 20 (event 21), then 3 more: 24 events. */
beforeEach(async () => {
  temp = await tempStore({}, 'sqlite');
  await temp.store.appendEvents(Array.from({ length: 8 }, (_, i) => policyLoaded(i + 1)));
  await sign(9)();
  await temp.store.appendEvents(Array.from({ length: 11 }, (_, i) => policyLoaded(i + 10)));
  await sign(21)();
  await temp.store.appendEvents([policyLoaded(22), policyLoaded(23), policyLoaded(24)]);
});
afterEach(async () => temp.cleanup());

describe('signHead is durable before the head leaves the database', () => {
  /**
   * Records every `synchronous` switch the store's connection makes (better-sqlite3's `pragma`), and the
   * connection itself, to read its level from inside the signing transaction.
   */
  function watchSynchronous(log: string[]): { writer: () => Database.Database | undefined; restore: () => void } {
    const original = Database.prototype.pragma;
    let writer: Database.Database | undefined;
    const spy = vi.spyOn(Database.prototype, 'pragma').mockImplementation(function (this: Database.Database, source: string, options?: Database.PragmaOptions) {
      if (/^synchronous\s*=/.test(source)) {
        writer = this;
        log.push(source.replace(/\s+/g, ' '));
      }
      return original.call(this, source, options);
    });
    return { writer: () => writer, restore: () => spy.mockRestore() };
  }

  it('under synchronous = NORMAL, commits the signing transaction with the WAL synced, then publishes the head', async () => {
    const log: string[] = [];
    const watch = watchSynchronous(log);
    try {
      await temp.store.appendEvents([policyLoaded(25)]);
      const signer = new HeadSigner({
        store: temp.store,
        key: { kid: KEY.kid, privateKey: KEY.privateKey },
        now: () => new Date(at(26)),
        publish: async (head) => void log.push(`publish ${head.seq}`),
      });
      const signing = temp.store.signHead.bind(temp.store);
      vi.spyOn(temp.store, 'signHead').mockImplementation((sign) =>
        signing((head) => {
          log.push(`sign ${head.seq} at synchronous ${String(watch.writer()?.pragma('synchronous', { simple: true }))}`);
          return sign(head);
        }),
      );
      expect(await signer.signNow()).toMatchObject({ seq: 25 });
      // FULL (2) for the signing transaction: its COMMIT syncs the WAL, and every commit before it, before the
      // head is appended to the signed-heads file; then back to NORMAL (1) for everything else.
      expect(log).toEqual(['synchronous = 2', 'sign 25 at synchronous 2', 'synchronous = 1', 'publish 25']);
      await temp.store.appendEvents([policyLoaded(27)]);
      expect(watch.writer()?.pragma('synchronous', { simple: true })).toBe(1);
      expect(log).toHaveLength(4);
    } finally {
      watch.restore();
    }
  });

  it('under synchronous = FULL, every commit is durable already: nothing is switched', async () => {
    await temp.reopen({ synchronous: 'full' });
    const log: string[] = [];
    const watch = watchSynchronous(log);
    try {
      await temp.store.appendEvents([policyLoaded(25)]);
      expect(await sign(26)()).toMatchObject({ seq: 26 });
      expect(log).toEqual([]);
    } finally {
      watch.restore();
    }
  });
});
