/**
 * The proxy's view of revoked tokens, kept in memory and refreshed from the store's revocation feed: one indexed
 * read every `pollMs`, never one per proxied call. Completing or expiring a task revokes its tokens (one
 * `token.revoked` event per token, in the task's transaction), so jtis alone carry task closure.
 *
 * The bound: a revocation committed at time t is seen by every check after t + pollMs + one feed read. Past
 * `maxStalenessMs` without a successful read (the store is unreachable), `state()` answers `unknown` and the proxy
 * refuses every call (503 `revocation_unknown`): it fails closed rather than accept a token it cannot judge.
 *
 * Memory: one entry per revoked token until its `exp` (tokens live at most `issuer.max_token_ttl_seconds`).
 */
export interface RevocationFeed {
  revocationFeed(input: { after_seq: number | null; now: string; limit?: number }): Promise<{ seq: number; revoked: Array<{ jti: string; expires_at: string }> }>;
}

export interface RevocationCacheOptions {
  feed: RevocationFeed;
  /** How often the feed is read. */
  pollMs: number;
  /** How old the last successful read may be before every token is refused. Default 4 × pollMs, at least 1000 ms. */
  maxStalenessMs?: number;
  now?: () => Date;
  /** Called with a read's error (the store's message; never a token). */
  onError?: (err: unknown) => void;
}

/** How long past its `exp` a revoked token stays listed: beyond any verifier's clock tolerance. */
const KEPT_PAST_EXP_MS = 60_000;

/** Entries read per feed call; a longer backlog is read in further calls of the same poll. */
const FEED_PAGE = 10_000;

export class RevocationCache {
  readonly #o: RevocationCacheOptions;
  readonly #now: () => Date;
  /** jti → expiry (ms since the epoch): dropped once the token could not be accepted anyway. */
  readonly #revoked = new Map<string, number>();
  #seq: number | null = null;
  #lastRead = Number.NEGATIVE_INFINITY;
  #reads = 0;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #stopped = false;

  constructor(options: RevocationCacheOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
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

  /** Whether a token is revoked; `unknown` when the list is older than its bound. */
  state(jti: string): 'active' | 'revoked' | 'unknown' {
    if (this.#revoked.has(jti)) return 'revoked';
    const staleness = Math.max(this.#o.maxStalenessMs ?? 4 * this.#o.pollMs, 1000);
    return Date.now() - this.#lastRead > staleness ? 'unknown' : 'active';
  }

  /** Revoked tokens held (for metrics). */
  /**
   * Successful reads of the feed so far. The bound in its terms: a revocation committed while a read runs may miss
   * that read, never the next one, so once two reads have completed after it every check refuses the token.
   */
  get reads(): number {
    return this.#reads;
  }

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
      this.#lastRead = Date.now();
      this.#reads++;
      const cutoff = now.getTime() - KEPT_PAST_EXP_MS;
      for (const [jti, exp] of this.#revoked) if (exp < cutoff) this.#revoked.delete(jti);
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.poll().finally(() => this.#schedule());
    }, this.#o.pollMs);
    this.#timer.unref();
  }
}
