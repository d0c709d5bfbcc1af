/**
 * The decision search of the audit console (`GET /v1/audit/decisions`): decision events newest first, by keyset
 * pages below a seq, each page bounded twice: by the matches it returns and by the decision events it reads.
 */
import { decisionOutcome, decisionReasonCodes, type AuditEventV1 } from '../audit/index.js';
import { SQL, decisionSearchSql, likePattern } from './sql.js';
import { all, get } from './sql-program.js';
import { eventFromRow } from './rows.js';
import type { EventRow } from './rows.js';
import type { DecisionSearchPage, DecisionSearchQuery } from './store.js';
import { requireTime } from './store-context.js';
import type { StoreContext } from './store-context.js';

/**
 * Decision events a search reads per request at most, matching or not. A search for a rare outcome or reason over
 * millions of events then answers a short page fast, and the caller continues from where it stopped.
 */
export const DECISION_SEARCH_SCAN_LIMIT = 20_000;

/**
 * How far out of seq order an event may be stamped, at most: a time range is first turned into a seq range by the
 * time index, widened by this much on both sides, then every event's own time is compared. An event stamped more
 * than a minute before one sealed ahead of it (a transaction open that long) could fall outside a search's range.
 */
export const STAMP_SKEW_MS = 60_000;

/** Rows read per statement: a page of matches needs a few of them when most rows do not match. */
const READ_SIZE = 500;

/**
 * One page of a decision search. agent, task and decision are SQL filters on columns of the hashed event; time,
 * outcome and reason are compared in JavaScript with each event's own time and hashed data, as iterateEvents' outcome
 * filter does: no column outside the hash is filtered on. A row whose stored text cannot hold the outcome or reason
 * asked for (`"outcome":"deny"` in canonical JSON) is passed over without parsing it. No statement stays open across
 * an await.
 */
export async function searchDecisions(ctx: StoreContext, query: DecisionSearchQuery): Promise<DecisionSearchPage> {
  if (query.since !== undefined) requireTime('since', query.since);
  if (query.until !== undefined) requireTime('until', query.until);
  if (!Number.isSafeInteger(query.limit) || query.limit < 1) throw new TypeError('limit must be an integer >= 1');
  const scanLimit = query.scan_limit ?? DECISION_SEARCH_SCAN_LIMIT;
  if (!Number.isSafeInteger(scanLimit) || scanLimit < 1) throw new TypeError('scan_limit must be an integer >= 1');
  if (query.before_seq !== undefined && (!Number.isSafeInteger(query.before_seq) || query.before_seq < 1)) {
    throw new TypeError('before_seq must be an integer >= 1');
  }
  // The seq range of the time range, by the time index: from the first event stamped a skew before `since`, up to
  // (not including) the first one stamped a skew after `until`.
  let lowest = 1;
  let below = query.before_seq ?? Number.MAX_SAFE_INTEGER;
  if (query.since !== undefined) {
    const from = await firstSeqStampedAtOrAfter(ctx, shift(query.since, -STAMP_SKEW_MS));
    if (from === null) return { events: [], next_before_seq: null, scanned_through_seq: null };
    lowest = from;
  }
  if (query.until !== undefined) {
    const to = await firstSeqStampedAtOrAfter(ctx, shift(query.until, STAMP_SKEW_MS));
    if (to !== null) below = Math.min(below, to);
  }
  const outcomeText = query.outcome === undefined ? undefined : `"outcome":${JSON.stringify(query.outcome)}`;
  const reasonText = query.reason === undefined ? undefined : `"code":${JSON.stringify(query.reason)}`;
  // Tested in the database too; a text too long for SQLite's LIKE (50,000 bytes) is left to the test below.
  const contains = [outcomeText, reasonText].filter((t): t is string => t !== undefined && t.length <= 1_000).map(likePattern);
  const { sql, params } = decisionSearchSql(query, contains);
  const events: AuditEventV1[] = [];
  let scanned = 0;
  let through: number | null = null;
  while (below > lowest) {
    const size = Math.min(READ_SIZE, scanLimit - scanned);
    const rows = await ctx.read(() => all<EventRow>(sql, ...params, lowest, below, size));
    for (const row of rows) {
      scanned++;
      through = row.seq;
      below = row.seq;
      // The database found the text asked for missing from the data (it sent only seq and time).
      if ((row.data as string | null) === null) continue;
      if (query.since !== undefined && row.time < query.since) continue;
      if (query.until !== undefined && row.time >= query.until) continue;
      if (outcomeText !== undefined && !row.data.includes(outcomeText)) continue;
      if (reasonText !== undefined && !row.data.includes(reasonText)) continue;
      const event = eventFromRow(row);
      if (query.outcome !== undefined && decisionOutcome(event) !== query.outcome) continue;
      if (query.reason !== undefined && !decisionReasonCodes(event).includes(query.reason)) continue;
      events.push(event);
      if (events.length === query.limit) {
        // Full: the rows after this one in the page were not examined; the next page reads them again.
        return { events, next_before_seq: row.seq > lowest ? row.seq : null, scanned_through_seq: through };
      }
    }
    // Fewer rows than asked for: nothing older matches the column filters in the range.
    if (rows.length < size) return { events, next_before_seq: null, scanned_through_seq: through };
    if (scanned >= scanLimit) return { events, next_before_seq: below > lowest ? below : null, scanned_through_seq: through };
  }
  return { events, next_before_seq: null, scanned_through_seq: through };
}

export async function firstSeqStampedAtOrAfter(ctx: StoreContext, time: string): Promise<number | null> {
  requireTime('time', time);
  const row = await ctx.read(() => get<{ seq: number }>(SQL.selectFirstStampedAtOrAfter, time));
  return row === undefined ? null : Number(row.seq);
}

function shift(time: string, ms: number): string {
  return new Date(Date.parse(time) + ms).toISOString();
}
