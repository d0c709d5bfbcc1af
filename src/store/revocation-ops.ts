/**
 * The revocation feed: what a verifier outside the PDP (the enforcement proxy) polls to refuse revoked tokens without
 * a round trip per request. A snapshot (every revoked, unexpired token and the head's seq), then increments (the
 * token.revoked events after a seq). Both read through partial indexes (migration 5), so a call costs what it
 * returns, not the size of the tokens table or of the chain.
 */
import type { Transaction } from 'better-sqlite3';
import type { RevocationFeed, RevocationFeedInput, RevokedToken } from './store.js';
import { latestCheckpoint } from './audit-ops.js';
import { read, requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

/** Most revocations an incremental answer lists unless asked otherwise. */
export const REVOCATION_FEED_LIMIT = 10_000;
/** The largest `limit` accepted: one call's work stays bounded (README, "Token uses and the revocation feed"). */
export const REVOCATION_FEED_MAX_LIMIT = 100_000;

/** One read transaction per context, made once: its two reads see one state of the database. */
const transactions = new WeakMap<StoreContext, Transaction<(input: RevocationFeedInput, limit: number) => RevocationFeed>>();

export async function revocationFeed(ctx: StoreContext, input: RevocationFeedInput): Promise<RevocationFeed> {
  const after = input.after_seq;
  if (after !== null && (!Number.isSafeInteger(after) || after < 0)) throw new TypeError('after_seq must be null or a seq (an integer >= 0)');
  requireTime('now', input.now);
  const limit = input.limit ?? REVOCATION_FEED_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > REVOCATION_FEED_MAX_LIMIT) {
    throw new TypeError(`limit must be an integer from 1 to ${REVOCATION_FEED_MAX_LIMIT}`);
  }
  let feed = transactions.get(ctx);
  if (feed === undefined) {
    feed = ctx.db.transaction((i: RevocationFeedInput, n: number) => feedNow(ctx, i, n));
    transactions.set(ctx, feed);
  }
  const run = feed;
  // DEFERRED: a read transaction (WAL: it never waits for the writer, nor holds it up). Never called inside a
  // group-commit batch, which runs to its COMMIT synchronously.
  return read(() => run.deferred(input, limit));
}

function feedNow(ctx: StoreContext, input: RevocationFeedInput, limit: number): RevocationFeed {
  const head = ctx.chain.readHead().seq;
  const after = input.after_seq;
  // Outside the stored chain: before the latest prune (its token.revoked events may be gone) or past the head
  // (another database, or one restored from an older backup). Only a snapshot is complete then.
  const pruned = latestCheckpoint(ctx)?.last_pruned_seq ?? 0;
  if (after === null || after < pruned || after > head) {
    const revoked = ctx.sql.selectRevokedUnexpiredTokens.all(input.now) as RevokedToken[];
    return { seq: head, revoked, snapshot: true };
  }
  const rows = ctx.sql.selectRevocationsAfter.all(after, limit) as Array<RevokedToken & { seq: number }>;
  const last = rows[rows.length - 1];
  // Cut short by the limit: covered up to the last one listed. Otherwise everything up to the head was read.
  const seq = rows.length === limit && last !== undefined ? last.seq : head;
  return { seq, revoked: rows.map((r) => ({ jti: r.jti, expires_at: r.expires_at })), snapshot: false };
}
