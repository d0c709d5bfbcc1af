/**
 * Signs the head of the chain now and then, off the request path: a timer looks at the head every `checkMs` (one
 * indexed read) and signs it once `everyEvents` events were appended since the last signed head, or `intervalMs`
 * passed with anything new. Signing is one queued write (the store signs inside its transaction and appends the
 * audit.head_signed event, and resolves once that transaction is durable); only then is the head published
 * (appended to the signed-heads file). Publishing first, or after a commit a power loss could still undo, would let
 * the file hold a head for seqs the database then reuses for other events: a false "rolled back or forked" for good.
 * Nothing is signed while nothing new was written: the head_signed event itself is not news.
 *
 * Tests drive it with `tick()` / `signNow()` and an injected `elapsedMs`; no timer needed.
 */
import type { AuditEventV1 } from './audit-event.js';
import type { ChainHead } from './hash-chain.js';
import { signHead } from './signed-head.js';
import type { AuditSigningKey, SignedHeadV1 } from './signed-head.js';

/** The store, as the signer needs it. */
export interface HeadSignerStore {
  chainHead(): Promise<ChainHead>;
  /** Must resolve only once the transaction holding the head and its audit.head_signed event is durable. */
  signHead(sign: (head: ChainHead) => SignedHeadV1): Promise<AuditEventV1 | null>;
}

export const HEAD_SIGNING_DEFAULTS = Object.freeze({
  /** Sign at least this often while events are written: the longest a rewrite of the newest events goes unsigned. */
  intervalMs: 60_000,
  /** Sign sooner once this many events were appended since the last signed head. */
  everyEvents: 10_000,
  /** How often the timer looks at the head. */
  checkMs: 1_000,
});

export interface HeadSignerOptions {
  store: HeadSignerStore;
  key: AuditSigningKey;
  /** The signing time. Required (the PDP's clock). */
  now: () => Date;
  /** Called with each head once its event is committed durably (e.g. appendSignedHead to the signed-heads file). Default none. */
  publish?: (head: SignedHeadV1) => Promise<unknown>;
  /** Default HEAD_SIGNING_DEFAULTS.intervalMs (60 s). */
  intervalMs?: number;
  /** Default HEAD_SIGNING_DEFAULTS.everyEvents (10,000). */
  everyEvents?: number;
  /** Default HEAD_SIGNING_DEFAULTS.checkMs (1 s). */
  checkMs?: number;
  /** A monotonic clock in ms for the interval. Default `performance.now`. */
  elapsedMs?: () => number;
  /** A failed check, signature or publication (the timer keeps going). Default: none (ignored). */
  onError?: (error: unknown) => void;
  /**
   * Whether this process signs now, asked before each tick and signNow: false leaves the head to the one process
   * that signs for every replica of the store (its leadership lease, main.ts). Default: always.
   */
  leading?: () => boolean;
}

export class HeadSigner {
  private readonly options: Required<Omit<HeadSignerOptions, 'publish' | 'onError' | 'leading'>> & Pick<HeadSignerOptions, 'publish' | 'onError' | 'leading'>;
  private timer: NodeJS.Timeout | undefined;
  /** Serialises signing: a tick and a signNow never sign the same head twice. */
  private queue: Promise<unknown> = Promise.resolve();
  /** seq of the last audit.head_signed event this signer wrote (0: none yet). */
  private signedAt = 0;
  /** The head's seq when events were last counted from (the first look, then each signed head). */
  private countFrom: number | undefined;
  private lastSignedMs: number;
  private latest: SignedHeadV1 | undefined;

  constructor(options: HeadSignerOptions) {
    const intervalMs = options.intervalMs ?? HEAD_SIGNING_DEFAULTS.intervalMs;
    const everyEvents = options.everyEvents ?? HEAD_SIGNING_DEFAULTS.everyEvents;
    const checkMs = options.checkMs ?? HEAD_SIGNING_DEFAULTS.checkMs;
    for (const [name, value] of Object.entries({ intervalMs, everyEvents, checkMs })) {
      if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`${name} must be a positive integer`);
    }
    const elapsedMs = options.elapsedMs ?? (() => performance.now());
    this.options = { ...options, intervalMs, everyEvents, checkMs, elapsedMs };
    this.lastSignedMs = elapsedMs();
  }

  /** The last head this signer signed, if any. */
  get last(): SignedHeadV1 | undefined {
    return this.latest;
  }

  /** Starts the timer (unref'd: it never keeps a process alive). */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => {
      this.tick().catch((error: unknown) => this.options.onError?.(error));
    }, this.options.checkMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Looks at the head and signs it if it is due (and this process leads). The head signed, or null. */
  async tick(): Promise<SignedHeadV1 | null> {
    if (this.options.leading?.() === false) return null;
    const head = await this.options.store.chainHead();
    this.countFrom ??= head.seq;
    if (head.seq <= this.signedAt) return null;
    const byCount = head.seq - this.countFrom >= this.options.everyEvents;
    const byTime = this.options.elapsedMs() - this.lastSignedMs >= this.options.intervalMs;
    return byCount || byTime ? this.signNow() : null;
  }

  /**
   * Signs the head now (e.g. before the store closes). The head signed, or null when there was nothing new or this
   * process does not lead.
   */
  signNow(): Promise<SignedHeadV1 | null> {
    const run = this.queue.then(() => this.sign());
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async sign(): Promise<SignedHeadV1 | null> {
    const { store, key, now, publish, leading } = this.options;
    if (leading?.() === false) return null;
    let signed: SignedHeadV1 | undefined;
    const event = await store.signHead((head) => (signed = signHead(head, now().toISOString(), key)));
    this.lastSignedMs = this.options.elapsedMs();
    if (event === null || signed === undefined) return null;
    this.signedAt = event.seq;
    this.countFrom = event.seq;
    this.latest = signed;
    if (publish !== undefined) {
      try {
        await publish(signed);
      } catch (error) {
        this.options.onError?.(error);
      }
    }
    return signed;
  }
}
