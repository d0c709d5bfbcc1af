/**
 * Usage reports of a resource server: one report per request the middleware let through (the token's jti, the
 * scope the route required, its integration and record, the route template, the time), queued in memory and sent
 * to the PDP in batches (`POST /v1/usage`, `PdpClient.reportUsage`) so the PDP can tell the scopes an agent used
 * from the ones it merely held. Best effort, and never in the request's way: `report` only pushes onto a bounded
 * queue and returns; sending happens on a timer or when a batch is full, one batch at a time; a full queue drops
 * the report and counts it; a batch the PDP did not take is counted as failed and not sent again (a batch that
 * may have arrived is never repeated: it would be recorded twice). The one exception is a batch refused as larger
 * than the PDP's body limit (`400 body_too_large`, refused before anything was read): it is sent again in halves.
 */
import type { UsageAnswerV1, UsageReportV1 } from '../wire/usage-v1.js';
import { isPepError } from './pep-error.js';

export interface UsageReportingOptions {
  /** Reports per `POST /v1/usage`; a batch is sent as soon as this many wait. From 1 to 500. Default 100. */
  batchSize?: number;
  /** How often waiting reports are sent, in milliseconds (a report waits about this long at most). Default 1000. */
  flushMs?: number;
  /** Most reports waiting (in flight included); a report beyond it is dropped and counted. Default 10000. */
  maxQueue?: number;
}

/** Counts since the reporter was made. Every report offered is in exactly one of them. */
export interface UsageStats {
  /** Waiting or in flight now. */
  queued: number;
  /** In a batch the PDP answered (recorded, or counted by it as unknown or rejected). */
  sent: number;
  /** Never queued: the queue was full, the reporter closed, or the report is not one the PDP's schema takes. */
  dropped: number;
  /** In a batch the PDP did not take (unreachable, timed out, refused): lost. */
  failed: number;
}

/** What the middleware's owner sees of its reporter: counts, and sending now. */
export interface UsageReporting {
  stats(): UsageStats;
  /** Sends every report queued so far; resolves when each is sent or failed. Never rejects. */
  flush(): Promise<void>;
  /** Stops the timer, sends what is queued, and drops every later report. Never rejects. */
  close(): Promise<void>;
}

/** The PDP's API call a reporter needs: `PdpClient` has it. */
export interface UsageSink {
  reportUsage(reports: UsageReportV1[]): Promise<UsageAnswerV1>;
}

/** The PDP's batch limit (`USAGE_REPORTS_MAX` of `POST /v1/usage`). */
const MAX_BATCH = 500;
/**
 * Copies of the PDP's grammar for a report (`src/wire/usage-v1.ts`, which this SDK imports as types only; a test
 * keeps them equal): a report the PDP's schema refuses would fail its whole batch.
 */
export const REPORT_GRAMMAR = {
  jti: '^[A-Za-z0-9_-]{1,128}$',
  scope: '^[A-Za-z0-9_.:/*+@=-]{1,128}$',
  id: '^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$',
  route: '^/[^\\u0000-\\u001f\\u007f]{0,255}$',
  time: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?Z$',
} as const;
const JTI = new RegExp(REPORT_GRAMMAR.jti, 'u');
const SCOPE = new RegExp(REPORT_GRAMMAR.scope, 'u');
const ID = new RegExp(REPORT_GRAMMAR.id, 'u');
const ROUTE = new RegExp(REPORT_GRAMMAR.route, 'u');
const TIME = new RegExp(REPORT_GRAMMAR.time, 'u');
const RECORD_ID_MAX = 256;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export class UsageReporter implements UsageReporting {
  readonly #sink: UsageSink;
  readonly #batchSize: number;
  readonly #maxQueue: number;
  readonly #timer: ReturnType<typeof setInterval>;
  #queue: UsageReportV1[] = [];
  #inFlight = 0;
  #sending: Promise<void> | undefined;
  /** Send what waits even when less than a batch (the timer, `flush`); otherwise only full batches go. */
  #drainAll = false;
  #closed = false;
  /** Reports queued and reports settled (sent or failed), ever: `flush` waits for the one to reach the other. */
  #queuedTotal = 0;
  #settledTotal = 0;
  readonly #counts = { sent: 0, dropped: 0, failed: 0 };

  constructor(sink: UsageSink, options: UsageReportingOptions = {}) {
    if (typeof sink?.reportUsage !== 'function') throw new TypeError('UsageReporter: needs a PdpClient (with a resource_server key)');
    const { batchSize = 100, flushMs = 1000, maxQueue = 10_000 } = options ?? {};
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) throw new TypeError(`reportUsage: "batchSize" must be an integer from 1 to ${MAX_BATCH}`);
    if (!Number.isSafeInteger(flushMs) || flushMs < 1) throw new TypeError('reportUsage: "flushMs" must be a positive integer');
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 1) throw new TypeError('reportUsage: "maxQueue" must be a positive integer');
    this.#sink = sink;
    this.#batchSize = batchSize;
    this.#maxQueue = maxQueue;
    this.#timer = setInterval(() => {
      if (this.#queue.length > 0) this.#send(true);
    }, flushMs);
    // A reporter alone does not keep the process alive.
    this.#timer.unref?.();
  }

  /**
   * Queues one report and returns at once; never throws. Dropped (counted) when the reporter is closed, the queue
   * is full, or the report does not fit the PDP's grammar (a record id is cut to 256 characters instead).
   */
  report(report: UsageReportV1): void {
    const ready = this.#closed || this.#queue.length + this.#inFlight >= this.#maxQueue ? undefined : wellFormedReport(report);
    if (ready === undefined) {
      this.#counts.dropped++;
      return;
    }
    this.#queue.push(ready);
    this.#queuedTotal++;
    if (this.#queue.length >= this.#batchSize) this.#send(false);
  }

  stats(): UsageStats {
    return { queued: this.#queue.length + this.#inFlight, ...this.#counts };
  }

  async flush(): Promise<void> {
    const target = this.#queuedTotal;
    while (this.#settledTotal < target) {
      this.#send(true);
      await this.#sending;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.flush();
  }

  /** Starts sending unless a send is under way: full batches, then (with `all`) what is left. */
  #send(all: boolean): void {
    if (all) this.#drainAll = true;
    this.#sending ??= this.#drain().finally(() => {
      this.#sending = undefined;
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length >= this.#batchSize || (this.#drainAll && this.#queue.length > 0)) {
      const batch = this.#queue.splice(0, this.#batchSize);
      this.#inFlight = batch.length;
      try {
        await this.#post(batch);
      } finally {
        this.#inFlight = 0;
        this.#settledTotal += batch.length;
      }
    }
    this.#drainAll = false;
  }

  /** One batch: sent, failed, or (too large for the PDP's body limit) split in two and each half posted. */
  async #post(batch: UsageReportV1[]): Promise<void> {
    try {
      await this.#sink.reportUsage(batch);
      this.#counts.sent += batch.length;
    } catch (err) {
      if (batch.length > 1 && isPepError(err) && err.pdpCode === 'body_too_large') {
        const half = Math.ceil(batch.length / 2);
        await this.#post(batch.slice(0, half));
        await this.#post(batch.slice(half));
        return;
      }
      // Best effort: the PDP's unavailability must not reach the resource server's requests. Counted, not retried.
      this.#counts.failed += batch.length;
    }
  }
}

/** The report as the PDP's schema takes it (a copy), or undefined when it cannot be made to fit. */
function wellFormedReport(report: UsageReportV1): UsageReportV1 | undefined {
  try {
    const { jti, scope, integration, used_at: usedAt } = report;
    if (typeof jti !== 'string' || !JTI.test(jti)) return undefined;
    if (typeof scope !== 'string' || !SCOPE.test(scope)) return undefined;
    if (typeof integration !== 'string' || !ID.test(integration)) return undefined;
    if (typeof usedAt !== 'string' || !TIME.test(usedAt) || Number.isNaN(Date.parse(usedAt))) return undefined;
    const record = report.record ?? null;
    if (record !== null && (typeof record.type !== 'string' || !ID.test(record.type) || typeof record.id !== 'string' || record.id === '')) return undefined;
    const route = typeof report.route === 'string' && ROUTE.test(report.route) && !hasLoneSurrogate(report.route) ? report.route : null;
    return { jti, scope, integration, record: record === null ? null : { type: record.type, id: recordId(record.id) }, route, used_at: usedAt };
  } catch {
    return undefined;
  }
}

function hasLoneSurrogate(text: string): boolean {
  LONE_SURROGATE.lastIndex = 0;
  return LONE_SURROGATE.test(text);
}

/** Well formed (a lone surrogate becomes U+FFFD), at most RECORD_ID_MAX code units (a cut id ends in `…`). */
function recordId(id: string): string {
  const text = id.replace(LONE_SURROGATE, '\ufffd');
  if (text.length <= RECORD_ID_MAX) return text;
  const cut = text.slice(0, RECORD_ID_MAX - 1);
  return (/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut) + '…';
}
