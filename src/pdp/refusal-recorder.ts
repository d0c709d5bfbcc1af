/**
 * Writes refusals (failed authentication, authorisation refusals) to the audit trail at a bounded rate, so that
 * nobody who can reach the port can grow the store faster than a small fixed rate, and a burst of identical
 * refusals still leaves an exact count.
 *
 * Each refusal has a key (what it was: type, reason, route, caller, source). The first `burst` refusals, refilled
 * at `perSecond`, are written one event each as they happen. Past that, refusals are counted per key and written
 * as one aggregate event per key every `windowMs`, carrying `count` and the first and last time; at most
 * `maxKeys` keys per window, the rest counted under their coarser overflow key (the kind of refusal only, a
 * closed set). Writes per window are therefore at most `burst + perSecond × window + maxKeys + kinds`, whatever
 * the sender does; nothing is dropped uncounted.
 */
export interface Refusal {
  /** Groups refusals that are the same thing (type, reason, route, caller, ip): the aggregation key. */
  key: string;
  /** The kind of refusal alone (type and reason or code): a small closed set, used past `maxKeys`. */
  overflowKey: string;
  /** The event for one refusal (`aggregate` undefined), or for `count` of them seen between `first` and `last`. */
  event(aggregate: Aggregate | undefined, time: string): RefusalEvent;
  /** The event for `count` refusals of this kind whose details were not kept (past `maxKeys` in one window). */
  overflowEvent(aggregate: Aggregate, time: string): RefusalEvent;
}

export interface Aggregate {
  count: number;
  /** ISO times of the first and last refusal counted. */
  first: string;
  last: string;
}

/** Whatever the audit sink appends (an audit event without its seq and hashes). */
export type RefusalEvent = object;

export interface RefusalRecorderOptions {
  /** Writes events; a returned promise is awaited by `flush()` (its failure is the sink's to report). */
  append(events: RefusalEvent[]): Promise<unknown> | void;
  now?: () => Date;
  /** Refusals written one by one before aggregation starts. Default 20. */
  burst?: number;
  /** Refill of that allowance per second. Default 1. */
  perSecond?: number;
  /** How often aggregates are written. Default 10,000 ms. */
  windowMs?: number;
  /** Distinct keys aggregated per window; the rest are counted by their overflow key. Default 64. */
  maxKeys?: number;
}

interface Pending extends Aggregate {
  refusal: Refusal;
}

export class RefusalRecorder {
  readonly #o: Required<Omit<RefusalRecorderOptions, 'now'>> & { now: () => Date };
  #tokens: number;
  #refilledAt: number;
  readonly #pending = new Map<string, Pending>();
  readonly #overflow = new Map<string, Pending>();
  readonly #timer: NodeJS.Timeout;
  readonly #writing = new Set<Promise<unknown>>();

  constructor(options: RefusalRecorderOptions) {
    this.#o = { burst: 20, perSecond: 1, windowMs: 10_000, maxKeys: 64, now: () => new Date(), ...options };
    for (const [name, value] of Object.entries({ burst: this.#o.burst, perSecond: this.#o.perSecond, maxKeys: this.#o.maxKeys })) {
      if (!(Number.isFinite(value) && value >= 0)) throw new TypeError(`RefusalRecorder: ${name} must be a number >= 0`);
    }
    if (!(Number.isFinite(this.#o.windowMs) && this.#o.windowMs >= 100)) throw new TypeError('RefusalRecorder: windowMs must be at least 100');
    this.#tokens = this.#o.burst;
    this.#refilledAt = this.#o.now().getTime();
    this.#timer = setInterval(() => void this.flush(), this.#o.windowMs);
    this.#timer.unref();
  }

  record(refusal: Refusal): void {
    const now = this.#o.now();
    const time = now.toISOString();
    this.#refill(now.getTime());
    if (this.#tokens >= 1 && !this.#pending.has(refusal.key)) {
      this.#tokens -= 1;
      this.#write([refusal.event(undefined, time)]);
      return;
    }
    const full = this.#pending.size >= this.#o.maxKeys && !this.#pending.has(refusal.key);
    const [bucket, key] = full ? [this.#overflow, refusal.overflowKey] : [this.#pending, refusal.key];
    const pending = bucket.get(key);
    if (pending) {
      pending.count++;
      pending.last = time;
    } else {
      bucket.set(key, { refusal, count: 1, first: time, last: time });
    }
  }

  /** Writes the aggregates of the window now (also on close); resolves when every write so far has settled. */
  async flush(): Promise<void> {
    const time = this.#o.now().toISOString();
    const events = [
      ...[...this.#pending.values()].map(({ refusal, count, first, last }) => refusal.event({ count, first, last }, time)),
      ...[...this.#overflow.values()].map(({ refusal, count, first, last }) => refusal.overflowEvent({ count, first, last }, time)),
    ];
    this.#pending.clear();
    this.#overflow.clear();
    if (events.length > 0) this.#write(events);
    await Promise.allSettled([...this.#writing]);
  }

  /** Stops the window timer and writes what is pending. */
  close(): Promise<void> {
    clearInterval(this.#timer);
    return this.flush();
  }

  #write(events: RefusalEvent[]): void {
    const written = this.#o.append(events);
    if (!(written instanceof Promise)) return;
    const settled = written.then(
      () => undefined,
      () => undefined,
    );
    this.#writing.add(settled);
    void settled.then(() => this.#writing.delete(settled));
  }

  #refill(at: number): void {
    const elapsed = Math.max(0, at - this.#refilledAt) / 1000;
    this.#tokens = Math.min(this.#o.burst, this.#tokens + elapsed * this.#o.perSecond);
    this.#refilledAt = at;
  }
}
