import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { consoleSessionEndedEvent, consoleSessionStartedEvent, type AuditEventType, type AuditEventV1 } from '../../src/audit/index.js';
import type { ConsoleSessionInput } from '../../src/store/index.js';
import { at, tempStore, type TempStore } from './store-fixtures.js';

/**
 * The web console's session rows (src/store/console-session-ops.ts), on SQLite and PostgreSQL alike: live until
 * ended, expired or idle; touched at most so often; a caller's oldest live ones beyond a cap ended at sign-in; dead
 * ones swept by later sign-ins. What a session means is src/console's (test/console/).
 */
let temp: TempStore;
beforeEach(async () => {
  temp = await tempStore();
});
afterEach(async () => {
  await temp.cleanup();
});

const hash = (n: number): string => n.toString(16).padStart(64, '0');
const begin = (n: number, seconds: number, extra: Partial<ConsoleSessionInput> = {}): Promise<void> => {
  const caller = extra.caller_id ?? 'compliance';
  return temp.store.createConsoleSession({
    id_sha256: hash(n),
    caller_id: caller,
    key_sha256: 'k'.repeat(64),
    created_at: at(seconds),
    expires_at: at(seconds + 3600),
    idle_cut: at(seconds - 900),
    max_live_per_caller: 3,
    event: consoleSessionStartedEvent(at(seconds), { caller_id: caller }, { session: hash(n).slice(0, 16), roles: ['auditor'], ip: '127.0.0.1', expires_at: at(seconds + 3600) }),
    ...extra,
  });
};
const ended = (n: number, seconds: number): Promise<boolean> =>
  temp.store.endConsoleSession(hash(n), at(seconds), consoleSessionEndedEvent(at(seconds), { caller_id: 'compliance' }, { session: hash(n).slice(0, 16), reason: 'signed_out' }));
async function events(type: AuditEventType): Promise<AuditEventV1[]> {
  const out: AuditEventV1[] = [];
  for await (const e of temp.store.iterateEvents({ types: [type] })) out.push(e);
  return out;
}
const touch = (n: number, seconds: number) =>
  temp.store.touchConsoleSession({ id_sha256: hash(n), now: at(seconds), idle_cut: at(seconds - 900), touch_before: at(seconds - 30) });

describe('console sessions in the store', () => {
  it('a session is live until idle too long; a use within the window moves its last use, at most every 30 s', async () => {
    await begin(1, 0);
    expect(await touch(1, 10)).toMatchObject({ caller_id: 'compliance', last_seen_at: at(0), ended_at: null }); // not written: 10 s < 30 s
    expect(await touch(1, 600)).toMatchObject({ last_seen_at: at(600) });
    expect(await touch(1, 1400)).toMatchObject({ last_seen_at: at(1400) }); // 800 s after the last use
    expect(await touch(1, 2301)).toBeUndefined(); // 901 s idle
    expect(await touch(2, 0)).toBeUndefined(); // never existed
  });

  it('ends at its absolute expiry however busy, and at sign-out', async () => {
    await begin(1, 0);
    for (let s = 500; s < 3600; s += 500) expect(await touch(1, s)).toBeDefined();
    expect(await touch(1, 3600)).toBeUndefined();
    await begin(2, 0);
    expect(await ended(2, 5)).toBe(true);
    expect(await ended(2, 6)).toBe(false);
    expect(await touch(2, 10)).toBeUndefined();
    // A begin and an end each in the trail, in their transactions; the second end wrote nothing.
    expect((await events('console.session_started')).map((e) => e.data)).toEqual([
      { session: hash(1).slice(0, 16), roles: ['auditor'], ip: '127.0.0.1', expires_at: at(3600) },
      { session: hash(2).slice(0, 16), roles: ['auditor'], ip: '127.0.0.1', expires_at: at(3600) },
    ]);
    expect((await events('console.session_ended')).map((e) => [e.time, e.data])).toEqual([[at(5), { session: hash(2).slice(0, 16), reason: 'signed_out' }]]);
    expect(await temp.store.verifyStoredChain()).toMatchObject({ ok: true });
  });

  it("a caller's oldest live sessions beyond the cap are ended at sign-in; another caller's are not", async () => {
    await begin(1, 1);
    await begin(2, 2);
    await begin(9, 2, { caller_id: 'ops' });
    await begin(3, 3);
    expect(await touch(1, 4)).toBeDefined();
    await begin(4, 5); // the fourth live one of compliance: the oldest goes
    expect(await touch(1, 6)).toBeUndefined();
    for (const n of [2, 3, 4, 9]) expect(await touch(n, 6), `session ${n}`).toBeDefined();
  });

  it('a sign-in sweeps dead sessions (a bounded batch)', async () => {
    await begin(1, 0);
    await begin(2, 0, { caller_id: 'ops' });
    await ended(2, 1);
    await begin(3, 5000, { caller_id: 'other' }); // session 1 is expired and idle by now, 2 ended long ago
    // Gone: ending them changes no row (an expired but present row would be ended).
    for (const n of [1, 2]) expect(await ended(n, 5001), `session ${n}`).toBe(false);
    expect(await touch(3, 5001)).toBeDefined();
  });
});
