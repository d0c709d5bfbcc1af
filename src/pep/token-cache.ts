/**
 * Reuse of access tokens across tool calls. A token is bound to one agent, task, integration, scope set and
 * record, so it is reused only for a call with exactly the same five; and only until shortly before it expires,
 * so a tool never receives a token that dies on the way. Concurrent calls with the same key share one
 * decision and one redemption instead of racing for two.
 *
 * The cache cannot see revocation: a token revoked by completing its task stays here until it expires, and the
 * resource server refuses it (with introspection). Call `forgetTask` when a task ends, or `clear`.
 */

import type { ApprovalRefV1 } from '../wire/access-request-v1.js';
import type { ProviderCredentialV1 } from '../wire/token-v1.js';

/** What the cache keeps: the token and what it is good for. */
export interface CachedToken {
  accessToken: string;
  scopes: readonly string[];
  /** When the token expires, on the PEP's clock (issue time + `expires_in`). */
  expiresAt: Date;
  decisionId: string;
  taskId: string;
  jti: string;
  /** The access request whose elevation the decision used (`approval` of the decision), if any. */
  approval?: ApprovalRefV1 | null;
  /** The provider credential minted with the token (docs/providers.md), if its integration is a provider's. */
  providerCredential?: ProviderCredentialV1 | null;
  /** The policy revision the decision was made under. */
  policyRevision?: string;
}

export interface TokenCacheOptions {
  /** Stop reusing a token this many seconds before it expires. Default 30. */
  marginSeconds?: number;
  /** Most tokens kept; the oldest entry goes first. Default 1000. */
  maxEntries?: number;
  /** The clock. Default: `() => new Date()`. */
  now?: () => Date;
}

interface Entry {
  taskId: string;
  pending: Promise<CachedToken>;
  token?: CachedToken;
  /** False once `keep` refused the token: calls waiting for it do not share it. */
  kept?: boolean;
}

export class TokenCache {
  readonly #entries = new Map<string, Entry>();
  readonly #marginMs: number;
  readonly #maxEntries: number;
  readonly #now: () => Date;

  constructor(options: TokenCacheOptions = {}) {
    const margin = options.marginSeconds ?? 30;
    const maxEntries = options.maxEntries ?? 1000;
    if (!Number.isFinite(margin) || margin < 0) throw new TypeError('TokenCache: "marginSeconds" must be a non-negative number');
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError('TokenCache: "maxEntries" must be a positive integer');
    this.#marginMs = margin * 1000;
    this.#maxEntries = maxEntries;
    this.#now = options.now ?? (() => new Date());
  }

  /** The clock the cache judges expiry by; `guardTool` stamps `expiresAt` with it too. */
  now(): Date {
    return this.#now();
  }

  /**
   * A usable token for `key`: the cached one while it has more than the margin left, the one being minted by a
   * concurrent call, or a new one from `mint`. A failed mint is not cached, nor a token `keep` refuses (calls that
   * were waiting for it mint their own).
   */
  async obtain(key: string, taskId: string, mint: () => Promise<CachedToken>, keep?: (token: CachedToken) => boolean): Promise<{ token: CachedToken; reused: boolean }> {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      if (entry.token === undefined) {
        const token = await entry.pending;
        // A token the cache does not keep (`keep` refused it) is not shared either: this call gets its own.
        if (entry.kept === false) return { token: await mint(), reused: false };
        return { token, reused: true };
      }
      if (this.#fresh(entry.token)) return { token: entry.token, reused: true };
      this.#entries.delete(key);
    }
    const created: Entry = { taskId, pending: mint() };
    this.#insert(key, created);
    try {
      created.token = await created.pending;
    } catch (err) {
      if (this.#entries.get(key) === created) this.#entries.delete(key);
      throw err;
    }
    if (keep !== undefined && !keep(created.token)) {
      created.kept = false;
      if (this.#entries.get(key) === created) this.#entries.delete(key);
    }
    return { token: created.token, reused: false };
  }

  /** Drops every token of `taskId` (call it when the task completes); returns how many. */
  forgetTask(taskId: string): number {
    let dropped = 0;
    for (const [key, entry] of this.#entries) {
      if (entry.taskId === taskId) {
        this.#entries.delete(key);
        dropped++;
      }
    }
    return dropped;
  }

  clear(): void {
    this.#entries.clear();
  }

  /** Entries held, pending ones included. */
  get size(): number {
    return this.#entries.size;
  }

  #fresh(token: CachedToken): boolean {
    return this.#now().getTime() < token.expiresAt.getTime() - this.#marginMs;
  }

  #insert(key: string, entry: Entry): void {
    for (const [k, e] of this.#entries) {
      if (e.token !== undefined && !this.#fresh(e.token)) this.#entries.delete(k);
    }
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, entry);
  }
}
