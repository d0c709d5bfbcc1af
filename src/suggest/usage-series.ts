/*
 * Granted vs used over time, for the HTML report's charts: the window cut into buckets of whole UTC days (one day
 * each up to two weeks, a week each beyond, at most MAX_BUCKETS), each bucket one `usageSummary` of the store's
 * daily aggregates. Buckets start at midnight UTC, so no day is counted in two.
 */
import type { Store, UsageSummary } from '../store/index.js';

export interface UsageBucket {
  since: string;
  until: string;
  summary: UsageSummary;
}

export type UsageSeries = readonly UsageBucket[];

const DAY_MS = 86_400_000;
const MAX_BUCKETS = 60;

export async function usageSeries(
  store: Pick<Store, 'usageSummary'>,
  window: { since: string; until: string; agent_id?: string },
): Promise<UsageSeries> {
  const start = Math.floor(Date.parse(window.since) / DAY_MS) * DAY_MS;
  const end = Date.parse(window.until);
  if (!(end > start)) return [];
  const days = Math.ceil((end - start) / DAY_MS);
  const step = Math.max(days <= 14 ? 1 : 7, Math.ceil(days / MAX_BUCKETS)) * DAY_MS;
  const buckets: UsageBucket[] = [];
  for (let from = start; from < end; from += step) {
    const since = new Date(from).toISOString();
    const until = new Date(Math.min(from + step, end)).toISOString();
    const summary = await store.usageSummary({ since, until, ...(window.agent_id === undefined ? {} : { agent_id: window.agent_id }) });
    buckets.push({ since, until, summary });
  }
  return buckets;
}
