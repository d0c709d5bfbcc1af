/**
 * The proxy's view of revoked tokens, kept in memory and refreshed from the store's revocation feed: one indexed
 * read every `pollMs`, never one per proxied call. Completing or expiring a task revokes its tokens (one
 * `token.revoked` event per token, in the task's transaction), so jtis alone carry task closure.
 *
 * The bound. Reads start `pollMs` apart (back to back when one takes longer). A revocation committed at time t may
 * just miss the read running then (its snapshot was taken before t); the next read, which starts at most pollMs
 * later, sees it and it is listed once that read ends (R: one read's duration). So with a readable store it is
 * refused from t + pollMs + R (plus the timer's lag) on.
 *
 * Whatever the store does, it is refused from t + `maxStalenessMs` on: `state()` answers `unknown` (and the proxy
 * refuses every call, 503 `revocation_unknown`) when the last successful read *started* more than `maxStalenessMs`
 * ago. A read that started after t saw the revocation, so a token revoked at t is either listed or refused as
 * unknown once t + maxStalenessMs has passed: the cache fails closed rather than accept a token it cannot judge.
 * The age is measured on the monotonic clock from the read's start, never its end, so a slow read cannot stretch it.
 * (The SQLite store may answer a read from a read transaction opened up to 1 ms before it: a commit of another
 * process can slip past the bound by as much, src/store/sqlite-connection.ts `TurnReads`.)
 *
 * Memory: one entry per revoked token until its `exp` (tokens live at most `issuer.max_token_ttl_seconds`).
 */
import { performance } from 'node:perf_hooks';

export interface RevocationFeed {
  revocationFeed(input: { after_seq: number | null; now: string; limit?: number }): Promise<{ seq: number; revoked: Array<{ jti: string; expires_at: string }> }>;
}

export interface RevocationCacheOptions {
  feed: RevocationFeed;
  /** How often the feed is read (the wait between the end of one read and the start of the next). */
  pollMs: number;
  /**
   * How long after the start of the last successful read the list is still trusted; past it every token is refused.
   * This is the bound on refusing a revoked token, whatever the store does. Default 900 ms (under the one
   * second); it must exceed `pollMs` with room for a read, or a healthy store would trip it.
   */
  maxStalenessMs?: number;
  now?: () => Date;
  /** Called with a read's error (the store's message; never a token). */
  onError?: (err: unknown) => void;
}

/** The default `maxStalenessMs`: a revoked token is refused within this of its revocation, store or no store. */
export const REVOCATION_MAX_STALENESS_MS = 900;

/** How long past its `exp` a revoked token stays listed: beyond any verifier's clock tolerance. */
const KEPT_PAST_EXP_MS = 60_000;

/** Entries read per feed call; a longer backlog is read in further calls of the same poll. */
const FEED_PAGE = 10_000;

export class RevocationCache {
  readonly #o: RevocationCacheOptions;
  readonly #now: () => Date;
  readonly #staleness: number;
  /** jti → expiry (ms since the epoch): dropped once the token could not be accepted anyway. */
  readonly #revoked = new Map<string, number>();
  #seq: number | null = null;
  /** When the last successful read started (`performance.now()`, monotonic). */
  #lastReadStart = Number.NEGATIVE_INFINITY;
  #reads = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #stopped = false;

  constructor(options: RevocationCacheOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
    this.#staleness = options.maxStalenessMs ?? REVOCATION_MAX_STALENESS_MS;
    if (!(options.pollMs > 0) || !(this.#staleness > options.pollMs)) {
      throw new TypeError(`pollMs (${options.pollMs}) must be positive and below maxStalenessMs (${this.#staleness})`);
    }
  }

  /** Reads the snapshot (every revoked, unexpired token), then polls. Rejects when the first read fails. */
  async start(): Promise<void> {
    await this.poll();
    if (this.#seq === null) throw new Error('the revocation feed could not be read');
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Whether a token is revoked; `unknown` when the last successful read started more than `maxStalenessMs` ago. */
  state(jti: string): 'active' | 'revoked' | 'unknown' {
    if (this.#revoked.has(jti)) return 'revoked';
    return performance.now() - this.#lastReadStart > this.#staleness ? 'unknown' : 'active';
  }

  /**
   * Successful reads of the feed so far. The bound in its terms: a revocation committed while a read runs may miss
   * that read, never the next one, so once two reads have completed after it every check refuses the token.
   */
  get reads(): number {
    return this.#reads;
  }

  /** Revoked tokens held (for metrics). */
  get size(): number {
    return this.#revoked.size;
  }

  /** Reads the feed now (a poll already running is joined). */
  poll(): Promise<void> {
    this.#polling ??= this.#read().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #read(): Promise<void> {
    // Taken before the first feed call: every revocation committed before this instant is in what the read returns.
    const started = performance.now();
    try {
      const now = this.#now();
      // Tokens expired less than a minute ago are kept: a verifier's clock tolerance may still accept them.
      const since = new Date(now.getTime() - KEPT_PAST_EXP_MS).toISOString();
      for (;;) {
        const answer = await this.#o.feed.revocationFeed({ after_seq: this.#seq, now: since, limit: FEED_PAGE });
        for (const r of answer.revoked) this.#revoked.set(r.jti, Date.parse(r.expires_at));
        const more = this.#seq !== null && answer.revoked.length >= FEED_PAGE && answer.seq > this.#seq;
        this.#seq = answer.seq;
        if (!more) break;
      }
      this.#lastReadStart = started;
      this.#reads++;
      const cutoff = now.getTime() - KEPT_PAST_EXP_MS;
      for (const [jti, exp] of this.#revoked) if (exp < cutoff) this.#revoked.delete(jti);
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  /** Reads start `pollMs` apart (back to back when a read takes longer): a slow read does not push the next one out. */
  #schedule(delay = this.#o.pollMs): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      const started = performance.now();
      void this.poll().finally(() => this.#schedule(Math.max(0, this.#o.pollMs - (performance.now() - started))));
    }, delay);
    this.#timer.unref();
  }
}
