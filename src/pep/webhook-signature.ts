/**
 * Checking the signature of a webhook agent-pdp sent (an approver notification), for receivers:
 *
 *   X-AgentPDP-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * Recompute the HMAC over the raw body bytes received (before any JSON parsing), compare in constant time, and
 * refuse a timestamp more than `toleranceSeconds` from the receiver's clock, so a captured delivery cannot be
 * replayed later. Several `v1=` entries may appear (a secret being rotated); one match is enough. Delivery is
 * at-least-once: dedupe on `X-AgentPDP-Delivery`.
 *
 * The one implementation of the scheme: the PDP's outbox (src/notify/) signs with `signWebhook` from here, receivers
 * verify with `verifyWebhookSignature` from `agent-pdp/pep`. It imports only node:crypto, as the PEP SDK must.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-AgentPDP-Signature';
/** The delivery's id: the same on every retry of one notification. Delivery is at-least-once: dedupe on it. */
export const DELIVERY_HEADER = 'X-AgentPDP-Delivery';
/** What the delivery is about (`access_request.submitted`). */
export const EVENT_HEADER = 'X-AgentPDP-Event';
/** Default `toleranceSeconds` of verifyWebhookSignature: five minutes, either side. */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

export type WebhookSecret = string | Uint8Array;
export type WebhookBody = string | Uint8Array;

export interface VerifyWebhookOptions {
  /** Largest accepted distance between the signed timestamp and `now`, past or future. Default 300 s. */
  toleranceSeconds?: number;
  /** The receiver's clock. Default: the current time. */
  now?: Date;
}

/** Why a signature was refused. */
export type WebhookSignatureFailure = 'missing' | 'malformed' | 'stale' | 'future' | 'mismatch';

export type WebhookVerification = { valid: true; timestamp: number } | { valid: false; reason: WebhookSignatureFailure };

/** The header value for `body` signed at `timestampSeconds` (integer unix seconds). */
export function signWebhook(secret: WebhookSecret, body: WebhookBody, timestampSeconds: number): string {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) throw new TypeError('"timestampSeconds" must be a non-negative integer');
  checkSecret(secret);
  return `t=${timestampSeconds},v1=${mac(secret, String(timestampSeconds), body).toString('hex')}`;
}

/**
 * Checks `header` (the `X-AgentPDP-Signature` value; a Node header array is accepted) against the raw `body`.
 * Never throws on bad input from the network: the result says why it failed. Misuse (no secret, a bad option)
 * throws TypeError.
 */
export function verifyWebhookSignature(
  secret: WebhookSecret,
  header: string | readonly string[] | null | undefined,
  body: WebhookBody,
  options: VerifyWebhookOptions = {},
): WebhookVerification {
  checkSecret(secret);
  const tolerance = options.toleranceSeconds ?? DEFAULT_SIGNATURE_TOLERANCE_SECONDS;
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new TypeError('"toleranceSeconds" must be a non-negative number');
  const now = options.now ?? new Date();
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new TypeError('"now" must be a valid Date');
  if (typeof body !== 'string' && !(body instanceof Uint8Array)) throw new TypeError('"body" must be the raw body: a string or bytes');

  const value = Array.isArray(header) ? (header.length === 1 ? header[0] : undefined) : (header as string | null | undefined);
  if (value === undefined || value === null || value === '') return { valid: false, reason: Array.isArray(header) && header.length > 1 ? 'malformed' : 'missing' };
  // Whatever a framework hands over as the header (a number, an object): never a throw on network input.
  if (typeof value !== 'string') return { valid: false, reason: 'malformed' };
  const parsed = parseHeader(value);
  if (parsed === undefined) return { valid: false, reason: 'malformed' };

  const age = now.getTime() / 1000 - parsed.timestamp;
  if (age > tolerance) return { valid: false, reason: 'stale' };
  if (-age > tolerance) return { valid: false, reason: 'future' };

  const expected = mac(secret, parsed.timestampText, body);
  let match = false;
  for (const hex of parsed.signatures) {
    const given = Buffer.from(hex, 'hex');
    // Every candidate is compared (no early exit), each in constant time; lengths are fixed by the parser.
    if (given.length === expected.length && timingSafeEqual(given, expected)) match = true;
  }
  return match ? { valid: true, timestamp: parsed.timestamp } : { valid: false, reason: 'mismatch' };
}

interface ParsedHeader {
  timestamp: number;
  timestampText: string;
  signatures: string[];
}

/** `t=<digits>` exactly once and at least one `v1=<64 hex>`; other schemes are ignored, as Stripe's are. */
function parseHeader(value: string): ParsedHeader | undefined {
  if (value.length > 4096) return undefined;
  let timestampText: string | undefined;
  const signatures: string[] = [];
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return undefined;
    const key = part.slice(0, eq).trim();
    const item = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestampText !== undefined || !/^[0-9]{1,12}$/.test(item)) return undefined;
      timestampText = item;
    } else if (key === 'v1') {
      if (!/^[0-9a-f]{64}$/i.test(item)) return undefined;
      signatures.push(item.toLowerCase());
    }
  }
  if (timestampText === undefined || signatures.length === 0) return undefined;
  return { timestamp: Number(timestampText), timestampText, signatures };
}

function mac(secret: WebhookSecret, timestampText: string, body: WebhookBody): Buffer {
  return createHmac('sha256', secret).update(`${timestampText}.`).update(body).digest();
}

function checkSecret(secret: WebhookSecret): void {
  if ((typeof secret !== 'string' && !(secret instanceof Uint8Array)) || secret.length === 0) {
    throw new TypeError('the webhook secret must be a non-empty string or bytes');
  }
}
