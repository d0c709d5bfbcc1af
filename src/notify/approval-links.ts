/**
 * Approval links: the short-lived token in a notification's review link
 * (`<public_url>/v1/access-requests/<id>/review?t=<token>`). It proves that whoever holds the link got it from a
 * notification sent to an approver group about exactly that request, until it expires; nothing more. It is not a
 * credential: the review page it opens only shows the request, and the approve / deny POST still needs an
 * approver's API key (a GET never approves anything).
 *
 * Token: `<payload>.<mac>`, both base64url (no padding):
 *   payload = compact JSON `{"id":<request id>,"g":<group>,"exp":<unix seconds>,"n":<nonce>}`
 *   mac     = HMAC-SHA256(key, "agentpdp.approval-link.v1." + payload)
 * The MAC is checked first, in constant time; only then is the payload read. The key comes from link-key.ts.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PdpError } from '../errors/pdp-error.js';

/** Shortest accepted link key (bytes). */
export const MIN_LINK_KEY_BYTES = 32;

const CONTEXT = 'agentpdp.approval-link.v1.';
const MAX_TOKEN_LENGTH = 2048;
const B64URL = /^[A-Za-z0-9_-]+$/;

/** What a valid token says. `exp` is unix seconds. */
export interface ApprovalLinkClaims {
  group: string;
  exp: number;
}

export class ApprovalLinks {
  readonly #key: Buffer;
  readonly #ttlSeconds: number;

  /** `key`: at least 32 bytes (loadLinkKey). `ttlSeconds`: the lifetime of a link (config `link_ttl_seconds`). */
  constructor(key: Uint8Array, ttlSeconds: number) {
    if (!(key instanceof Uint8Array) || key.length < MIN_LINK_KEY_BYTES) throw new TypeError(`the approval link key must be at least ${MIN_LINK_KEY_BYTES} bytes`);
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0) throw new TypeError('"ttlSeconds" must be a positive integer');
    this.#key = Buffer.from(key);
    this.#ttlSeconds = ttlSeconds;
  }

  get ttlSeconds(): number {
    return this.#ttlSeconds;
  }

  /**
   * A token for the request `requestId`, sent to the approver group `group`, valid for `ttlSeconds` from `now`, and
   * never past `notAfter` when given (the request's own expiry: a link outliving its request is of no use).
   */
  issue(requestId: string, group: string, now: Date, notAfter?: Date): string {
    checkText(requestId, 'requestId');
    checkText(group, 'group');
    checkDate(now, 'now');
    let exp = Math.floor(now.getTime() / 1000) + this.#ttlSeconds;
    if (notAfter !== undefined) {
      checkDate(notAfter, 'notAfter');
      exp = Math.min(exp, Math.floor(notAfter.getTime() / 1000));
    }
    const payload = Buffer.from(JSON.stringify({ id: requestId, g: group, exp, n: randomBytes(9).toString('base64url') })).toString('base64url');
    return `${payload}.${this.#mac(payload).toString('base64url')}`;
  }

  /** Expiry (unix seconds) a link issued at `now` would have, before any `notAfter` cap. */
  expiresAt(now: Date): number {
    checkDate(now, 'now');
    return Math.floor(now.getTime() / 1000) + this.#ttlSeconds;
  }

  /**
   * The claims of `token` if it was issued by this key for `requestId` and has not expired at `now`.
   * approval_link_invalid: malformed, tampered, another key or another request; approval_link_expired: past `exp`.
   */
  verify(token: string, requestId: string, now: Date): ApprovalLinkClaims {
    checkDate(now, 'now');
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw invalid();
    const dot = token.indexOf('.');
    if (dot <= 0 || dot !== token.lastIndexOf('.')) throw invalid();
    const payload = token.slice(0, dot);
    const macText = token.slice(dot + 1);
    if (!B64URL.test(payload) || !B64URL.test(macText)) throw invalid();
    // Compared as text, not decoded bytes: base64url has spare bits in its last character, and a token that differs
    // from the issued one in any character is refused.
    const given = Buffer.from(macText, 'latin1');
    const expected = Buffer.from(this.#mac(payload).toString('base64url'), 'latin1');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();

    let claims: { id?: unknown; g?: unknown; exp?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      throw invalid();
    }
    if (typeof claims !== 'object' || claims === null || typeof claims.g !== 'string' || !Number.isSafeInteger(claims.exp)) throw invalid();
    if (claims.id !== requestId) throw invalid();
    const exp = claims.exp as number;
    if (now.getTime() >= exp * 1000) throw new PdpError('approval_link_expired', 'the approval link has expired: open the request from the approver inbox');
    return { group: claims.g, exp };
  }

  #mac(payload: string): Buffer {
    return createHmac('sha256', this.#key).update(CONTEXT).update(payload).digest();
  }
}

function invalid(): PdpError {
  return new PdpError('approval_link_invalid', 'the approval link is not valid for this access request');
}

function checkText(value: string, name: string): void {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError(`"${name}" must be a non-empty string`);
}

function checkDate(value: Date, name: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new TypeError(`"${name}" must be a valid Date`);
}
