/**
 * Signing a head on SQLite: under synchronous = NORMAL the signing transaction commits as any other, then the WAL
 * file is fsynced (off the event loop), and only then is the head published: durable before it leaves the database.
 * SQLite's own: PostgreSQL commits durably always.
 */
import Database from 'better-sqlite3';
import { generateKeyPairSync } from 'node:crypto';
import { open } from 'node:fs/promises';
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

  it('under synchronous = NORMAL, commits the signing transaction, syncs the WAL file, then publishes the head', async () => {
    const log: string[] = [];
    const watch = watchSynchronous(log);
    // Every FileHandle.sync (fs/promises' fsync), recorded: the store syncs its WAL file through one.
    const probe = await open(temp.path, 'r');
    const handle = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const sync = handle.sync;
    const syncs = vi.spyOn(handle, 'sync').mockImplementation(async function (this: unknown) {
      log.push('fsync');
      return sync.call(this);
    });
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
          log.push(`sign ${head.seq}`);
          return sign(head);
        }),
      );
      expect(await signer.signNow()).toMatchObject({ seq: 25 });
      // No switch of the connection's level (the commit is NORMAL's): the WAL file's fsync after it makes that commit,
      // and every one before it, durable before the head is appended to the signed-heads file.
      expect(log).toEqual(['sign 25', 'fsync', 'publish 25']);
      // Other writes are not synced.
      await temp.store.appendEvents([policyLoaded(27)]);
      expect(log).toHaveLength(3);
      expect(syncs).toHaveBeenCalledTimes(1);
    } finally {
      syncs.mockRestore();
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
