/**
 * Web console sessions: an approver, auditor or admin exchanges their API key for a session once, and the browser
 * holds only an HttpOnly cookie after that (docs/console.md).
 *
 * - A session id is 256 random bits; the store keeps its SHA-256 (a read of the database yields no session).
 * - A session acts with its caller's roles narrowed to the console's (auditor, approver, admin): a caller that is
 *   also a PEP cannot decide through a browser.
 * - The caller is looked up again by the key hash it signed in with on every request: a reload that removes the
 *   caller, changes its roles or rotates its key takes effect at once, and a rotated key ends its sessions.
 * - It ends after `session_idle_seconds` unused (never sooner; at most a tenth of it, and 30 s, later: TOUCH_EVERY_MS),
 *   `session_max_seconds` after sign-in, or at sign-out, on every worker and replica (the store holds it).
 * - Its CSRF token is derived from the id (the SHA-256 of the id under a label of its own: the id is a 256-bit secret,
 *   and the store holds another hash of it), so it needs no storage and a page reload can be told it again; a state
 *   change made with the cookie must echo it in `X-CSRF-Token`.
 * - A caller holds at most MAX_SESSIONS_PER_CALLER live sessions: a sign-in beyond it ends the oldest. A sign-in
 *   from a browser that still holds a session ends that one.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { consoleSessionEndedEvent, consoleSessionStartedEvent, type ConsoleSessionEndReason } from '../audit/index.js';
import type { CallerConfig, CallerRole, ConsoleConfig } from '../config/config-types.js';
import type { Store } from '../store/index.js';

/** The roles a console session may act with: the console's users. Any other role of the caller is left behind. */
export const CONSOLE_ROLES: readonly CallerRole[] = Object.freeze(['auditor', 'approver', 'admin']);

/** Live sessions one caller may hold; a sign-in beyond it ends the oldest (a leaked key cannot grow the table). */
export const MAX_SESSIONS_PER_CALLER = 20;

/**
 * A session's last use is written at most this often (a write per request would be a write per click), and at most
 * every tenth of the idle time. The stored last use may lag the real one by that much, so a session is idle once its
 * stored last use is older than the idle time plus that lag: never ended early, at most that lag late.
 */
const TOUCH_EVERY_MS = 30_000;

export interface ConsoleSession {
  /** The caller as configured now, its roles narrowed to CONSOLE_ROLES. */
  caller: CallerConfig;
  csrfToken: string;
  /** The absolute end (ISO 8601). */
  expiresAt: string;
}

export type SessionStore = Pick<Store, 'createConsoleSession' | 'touchConsoleSession' | 'endConsoleSession'>;

/** The callers by key hash: the server's CallerResolver, which a config reload updates. */
export interface CallersByKey {
  byKeyHash(keySha256: string): CallerConfig | undefined;
}

export class ConsoleSessions {
  constructor(
    private readonly store: SessionStore,
    private readonly callers: CallersByKey,
    readonly config: ConsoleConfig,
    private readonly now: () => Date,
  ) {}

  /** The console roles this caller holds (none: it may not sign in). */
  static rolesOf(caller: CallerConfig): CallerRole[] {
    return (caller.roles ?? [caller.role]).filter((r) => CONSOLE_ROLES.includes(r));
  }

  /** Signs a caller in (from the peer `ip`); the id goes to the cookie and nowhere else, the trail gets a fingerprint of it. */
  async begin(caller: CallerConfig, ip: string | null, traceId: string | null = null): Promise<{ id: string; session: ConsoleSession }> {
    const roles = ConsoleSessions.rolesOf(caller);
    if (roles.length === 0) throw new TypeError(`caller ${caller.id} holds no console role`);
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const expiresAt = new Date(now.getTime() + this.config.session_max_seconds * 1000).toISOString();
    const idSha256 = hashOf(id);
    const event = consoleSessionStartedEvent(
      now.toISOString(),
      { caller_id: caller.id, ...(traceId === null ? {} : { trace_id: traceId }) },
      { session: idSha256.slice(0, 16), roles, ip, expires_at: expiresAt },
    );
    await this.store.createConsoleSession({
      id_sha256: idSha256,
      caller_id: caller.id,
      key_sha256: caller.key_sha256,
      created_at: now.toISOString(),
      expires_at: expiresAt,
      idle_cut: this.#idleCut(now),
      max_live_per_caller: MAX_SESSIONS_PER_CALLER,
      event,
    });
    return { id, session: { caller: narrowed(caller, roles), csrfToken: csrfTokenOf(id), expiresAt } };
  }

  /** The live session of a cookie's id, or undefined (unknown, ended, expired, idle, or its caller's key gone). */
  async resume(id: string): Promise<ConsoleSession | undefined> {
    const now = this.now();
    const row = await this.store.touchConsoleSession({
      id_sha256: hashOf(id),
      now: now.toISOString(),
      idle_cut: this.#idleCut(now),
      touch_before: new Date(now.getTime() - this.#touchEveryMs()).toISOString(),
    });
    if (row === undefined) return undefined;
    const caller = this.callers.byKeyHash(row.key_sha256);
    if (caller === undefined || caller.id !== row.caller_id) return undefined;
    const roles = ConsoleSessions.rolesOf(caller);
    if (roles.length === 0) return undefined;
    return { caller: narrowed(caller, roles), csrfToken: csrfTokenOf(id), expiresAt: row.expires_at };
  }

  /**
   * Ends a live session (`signed_out`: its user signed out; `replaced`: the browser holding it signed in again): dead
   * on every replica, with its event in the trail. An unknown or dead one is left as it is.
   */
  async end(id: string, reason: ConsoleSessionEndReason, traceId: string | null = null): Promise<void> {
    const now = this.now();
    const idSha256 = hashOf(id);
    const row = await this.store.touchConsoleSession({ id_sha256: idSha256, now: now.toISOString(), idle_cut: this.#idleCut(now), touch_before: now.toISOString() });
    if (row === undefined) return;
    const event = consoleSessionEndedEvent(
      now.toISOString(),
      { caller_id: row.caller_id, ...(traceId === null ? {} : { trace_id: traceId }) },
      { session: idSha256.slice(0, 16), reason },
    );
    await this.store.endConsoleSession(idSha256, now.toISOString(), event);
  }

  #idleCut(now: Date): string {
    return new Date(now.getTime() - this.config.session_idle_seconds * 1000 - this.#touchEveryMs()).toISOString();
  }

  #touchEveryMs(): number {
    return Math.min(TOUCH_EVERY_MS, (this.config.session_idle_seconds * 1000) / 10);
  }
}

/** Whether a request's `X-CSRF-Token` is the session's, compared in constant time. */
export function csrfMatches(session: ConsoleSession, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const given = Buffer.from(header);
  const expected = Buffer.from(session.csrfToken);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function hashOf(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

/** Not the id, and no way back to it: a hash of the id under a label of its own. */
function csrfTokenOf(id: string): string {
  return createHash('sha256').update('agent-pdp console csrf\0').update(id).digest('base64url');
}

function narrowed(caller: CallerConfig, roles: CallerRole[]): CallerConfig {
  return { ...caller, role: roles[0] as CallerRole, roles };
}
