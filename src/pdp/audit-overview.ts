/**
 * `GET /v1/audit/overview`: what the trail says about the last N minutes of decisions, for the audit console's
 * dashboard: per-minute counts by outcome, totals, decisions per second, the most frequent denial reasons. Read
 * from the decision events themselves (their hashed time and data), newest first, through the store's decision
 * search (the time index finds where the window starts), at most OVERVIEW_MAX_DECISIONS of them.
 */
import { decisionOutcome, decisionReasonCodes } from '../audit/index.js';
import type { Store } from '../store/index.js';
import { OVERVIEW_MAX_MINUTES, type AuditOverviewV1, type OutcomeCountsV1 } from '../wire/audit-console-v1.js';
import { RECORDED_OUTCOMES, type RecordedOutcome } from '../wire/evaluation-v1.js';

/**
 * Decisions one overview reads at most; a window with more is answered from its newest ones, `truncated: true`.
 * Measured on SQLite (1 million events, 4 decisions a second): an hour (14,320 decisions) 0.44 s, the cap 1.2 s.
 */
export const OVERVIEW_MAX_DECISIONS = 100_000;
/** Decisions read per store call. */
const PAGE = 1_000;
const MINUTE_MS = 60_000;
const TOP_REASONS = 10;
const OUTCOMES: ReadonlySet<string> = new Set(RECORDED_OUTCOMES);

export type OverviewStore = Pick<Store, 'searchDecisions'>;

/** How long an overview is answered again as it is (a dashboard refreshed by many, or a burst of calls). */
export const OVERVIEW_REUSE_MS = 5_000;

/**
 * `GET /v1/audit/overview`'s reader, on the store and the clock main.ts wires. One overview of a window is read at a
 * time: calls for the same `minutes` while it runs, or within OVERVIEW_REUSE_MS after, get the same answer, so a
 * burst of overview calls costs one read of the trail, not one each (each can read up to OVERVIEW_MAX_DECISIONS).
 */
export class AuditOverview {
  readonly #recent = new Map<number, { at: number; answer: Promise<AuditOverviewV1> }>();

  constructor(private readonly options: { store: OverviewStore; now: () => Date }) {}

  /** The overview of the last `minutes` minutes (see auditOverview). */
  overview(minutes: number): Promise<AuditOverviewV1> {
    const now = this.options.now();
    const seen = this.#recent.get(minutes);
    if (seen !== undefined && now.getTime() - seen.at < OVERVIEW_REUSE_MS) return seen.answer;
    const answer = auditOverview(this.options.store, now, minutes);
    this.#recent.set(minutes, { at: now.getTime(), answer });
    // A failed read is not kept: the next call tries again.
    answer.catch(() => {
      if (this.#recent.get(minutes)?.answer === answer) this.#recent.delete(minutes);
    });
    return answer;
  }
}

const zero = (): OutcomeCountsV1 => ({ allow: 0, deny: 0, undefined: 0, error: 0 });

/**
 * The overview of the `minutes` (1..OVERVIEW_MAX_MINUTES) minutes up to `now`: from the start of the minute
 * `minutes - 1` minutes before now's, so the window holds exactly `minutes` per-minute entries, the last one the
 * current, partial minute. A decision whose outcome is not one of the four is counted in none.
 */
export async function auditOverview(store: OverviewStore, now: Date, minutes: number, max = OVERVIEW_MAX_DECISIONS): Promise<AuditOverviewV1> {
  if (!Number.isSafeInteger(minutes) || minutes < 1 || minutes > OVERVIEW_MAX_MINUTES) throw new TypeError(`minutes must be an integer from 1 to ${OVERVIEW_MAX_MINUTES}`);
  const untilMs = now.getTime();
  const sinceMs = Math.floor(untilMs / MINUTE_MS) * MINUTE_MS - (minutes - 1) * MINUTE_MS;
  const since = new Date(sinceMs).toISOString();
  // Decisions stamped in the current millisecond are counted: the window ends just after now.
  const until = new Date(untilMs + 1).toISOString();
  const perMinute = Array.from({ length: minutes }, () => zero());
  const byOutcome = zero();
  const denialReasons = new Map<string, number>();
  let read = 0;
  let truncated = false;
  /** The time of the oldest decision read: where a truncated window's counts begin. */
  let oldest = untilMs;
  let before: number | undefined;
  for (;;) {
    const page = await store.searchDecisions({ since, until, limit: PAGE, scan_limit: PAGE, ...(before === undefined ? {} : { before_seq: before }) });
    for (const event of page.events) {
      if (read === max) {
        truncated = true;
        break;
      }
      read++;
      oldest = Math.min(oldest, Date.parse(event.time));
      const outcome = decisionOutcome(event);
      if (outcome === undefined || !OUTCOMES.has(outcome)) continue;
      const index = Math.floor((Date.parse(event.time) - sinceMs) / MINUTE_MS);
      const bucket = perMinute[Math.min(Math.max(index, 0), minutes - 1)] as OutcomeCountsV1;
      bucket[outcome as RecordedOutcome]++;
      byOutcome[outcome as RecordedOutcome]++;
      if (outcome === 'deny') for (const code of new Set(decisionReasonCodes(event))) denialReasons.set(code, (denialReasons.get(code) ?? 0) + 1);
    }
    if (truncated || page.next_before_seq === null) break;
    before = page.next_before_seq;
  }
  const total = byOutcome.allow + byOutcome.deny + byOutcome.undefined + byOutcome.error;
  // Truncated: the rate of what was read, over the part of the window it covers.
  const seconds = Math.max(1, (untilMs - (truncated ? Math.max(sinceMs, oldest) : sinceMs)) / 1000);
  return {
    since,
    until: now.toISOString(),
    per_minute: perMinute.map((counts, i) => ({ minute: new Date(sinceMs + i * MINUTE_MS).toISOString(), ...counts })),
    by_outcome: byOutcome,
    decisions_per_second: Math.round((total / seconds) * 1000) / 1000,
    top_denial_reasons: [...denialReasons]
      .sort(([a, n], [b, m]) => m - n || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, TOP_REASONS)
      .map(([code, count]) => ({ code, count })),
    truncated,
  };
}
