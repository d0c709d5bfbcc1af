/**
 * The web console's sessions (src/console/ owns their meaning): a row per sign-in, keyed by the SHA-256 of the
 * session id the cookie holds. Stored, not kept in one process's memory, so every worker and every replica on the
 * database knows a session, and signing out ends it everywhere.
 */
import { consoleSessionEndedEvent, type NewAuditEvent } from '../audit/index.js';
import { SQL } from './sql.js';
import { all, get, run } from './sql-program.js';
import { requireId, requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';
import type { ConsoleSessionInput, ConsoleSessionRecord, ConsoleSessionTouch } from './store.js';

/** Most dead sessions one sign-in deletes: the table stays small without a sweeper of its own. */
const SWEEP_BATCH = 100;

/**
 * Inserts a session, ends the caller's oldest live ones beyond `max_live_per_caller`, and deletes a batch of sessions
 * dead by `idle_cut` or their expiry, in one transaction.
 */
export async function createConsoleSession(ctx: StoreContext, input: ConsoleSessionInput): Promise<void> {
  requireId('id_sha256', input.id_sha256);
  requireId('caller_id', input.caller_id);
  requireTime('created_at', input.created_at);
  requireTime('expires_at', input.expires_at);
  requireTime('idle_cut', input.idle_cut);
  if (input.event.type !== 'console.session_started' || input.event.caller_id !== input.caller_id) throw new TypeError("a session begins with its caller's console.session_started event");
  const prepared = ctx.chain.prepare(input.event);
  await ctx.write(function* () {
    yield* run(SQL.deleteDeadConsoleSessions, input.created_at, input.idle_cut, SWEEP_BATCH);
    yield* run(SQL.insertConsoleSession, input.id_sha256, input.caller_id, input.key_sha256, input.created_at, input.created_at, input.expires_at);
    yield* ctx.chain.append(prepared);
    // The oldest beyond the cap end, each with its console.session_ended event (reason `evicted`), after the sign-in's.
    const live = [input.created_at, input.idle_cut] as const;
    const old = yield* all<{ id_sha256: string }>(SQL.selectOldConsoleSessions, input.caller_id, ...live, input.caller_id, ...live, input.max_live_per_caller);
    for (const { id_sha256 } of old) {
      if ((yield* run(SQL.endConsoleSession, input.created_at, id_sha256)) !== 1) continue;
      const ended = consoleSessionEndedEvent(input.created_at, { caller_id: input.caller_id }, { session: id_sha256.slice(0, 16), reason: 'evicted' });
      yield* ctx.chain.append(ctx.chain.prepare(ended));
    }
  });
}

/**
 * The live session of this id at `now` (not ended, not expired, used since `idle_cut`), else undefined. A live one's
 * last use becomes `now` when it is older than `touch_before` (a write at most that often per session, not one per
 * request).
 */
export async function touchConsoleSession(ctx: StoreContext, input: ConsoleSessionTouch): Promise<ConsoleSessionRecord | undefined> {
  requireTime('now', input.now);
  requireTime('idle_cut', input.idle_cut);
  requireTime('touch_before', input.touch_before);
  const row = await ctx.read(() => get<ConsoleSessionRecord>(SQL.selectConsoleSession, input.id_sha256));
  if (row === undefined || row.ended_at !== null || row.expires_at <= input.now || row.last_seen_at <= input.idle_cut) return undefined;
  if (row.last_seen_at < input.touch_before) {
    await ctx.write(() => run(SQL.touchConsoleSession, input.now, input.id_sha256, input.touch_before));
    return { ...row, last_seen_at: input.now };
  }
  return row;
}

/** Ends a session and appends its console.session_ended event if it was not ended yet (true then); else writes nothing. */
export async function endConsoleSession(ctx: StoreContext, idSha256: string, at: string, event: NewAuditEvent): Promise<boolean> {
  requireTime('at', at);
  if (event.type !== 'console.session_ended') throw new TypeError('a session ends with a console.session_ended event');
  const prepared = ctx.chain.prepare(event);
  return ctx.write(function* () {
    if ((yield* run(SQL.endConsoleSession, at, idSha256)) !== 1) return false;
    yield* ctx.chain.append(prepared);
    return true;
  });
}
