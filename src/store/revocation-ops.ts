/**
 * The revocation feed: what a verifier outside the PDP (the enforcement proxy) polls to refuse revoked tokens without
 * a round trip per request. A snapshot (every revoked, unexpired token and the head's seq), then increments (the
 * token.revoked events after a seq). Both read through partial indexes (migration 5), so a call costs what it
 * returns, not the size of the tokens table or of the chain.
 */
import type { RevocationFeed, RevocationFeedInput, RevokedToken } from './store.js';
import { latestCheckpoint } from './audit-ops.js';
import { SQL } from './sql.js';
import { all } from './sql-program.js';
import type { Program } from './sql-program.js';
import { requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

/** Most revocations an incremental answer lists unless asked otherwise. */
export const REVOCATION_FEED_LIMIT = 10_000;
/** The largest `limit` accepted: one call's work stays bounded (README, "Token uses and the revocation feed"). */
export const REVOCATION_FEED_MAX_LIMIT = 100_000;

export async function revocationFeed(ctx: StoreContext, input: RevocationFeedInput): Promise<RevocationFeed> {
  const after = input.after_seq;
  if (after !== null && (!Number.isSafeInteger(after) || after < 0)) throw new TypeError('after_seq must be null or a seq (an integer >= 0)');
  requireTime('now', input.now);
  const limit = input.limit ?? REVOCATION_FEED_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > REVOCATION_FEED_MAX_LIMIT) {
    throw new TypeError(`limit must be an integer from 1 to ${REVOCATION_FEED_MAX_LIMIT}`);
  }
  // One snapshot: its reads see one state of the database (SQLite: a DEFERRED read transaction, which in WAL mode
  // never waits for the writer, nor holds it up).
  return ctx.read(() => feedNow(ctx, input, limit), { snapshot: true });
}

function* feedNow(ctx: StoreContext, input: RevocationFeedInput, limit: number): Program<RevocationFeed> {
  const head = (yield* ctx.chain.readHead()).seq;
  const after = input.after_seq;
  // Outside the stored chain: before the latest prune (its token.revoked events may be gone) or past the head
  // (another database, or one restored from an older backup). Only a snapshot is complete then.
  const pruned = (yield* latestCheckpoint())?.last_pruned_seq ?? 0;
  if (after === null || after < pruned || after > head) {
    const revoked = yield* all<RevokedToken>(SQL.selectRevokedUnexpiredTokens, input.now);
    return { seq: head, revoked, snapshot: true };
  }
  const rows = yield* all<RevokedToken & { seq: number }>(SQL.selectRevocationsAfter, after, limit);
  const last = rows[rows.length - 1];
  // Cut short by the limit: covered up to the last one listed. Otherwise everything up to the head was read.
  const seq = rows.length === limit && last !== undefined ? last.seq : head;
  return { seq, revoked: rows.map((r) => ({ jti: r.jti, expires_at: r.expires_at })), snapshot: false };
}
