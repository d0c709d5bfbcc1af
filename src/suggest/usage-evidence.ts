/*
 * The usage summary (the store's daily aggregates over a window) regrouped the way the engine asks: per agent, per
 * integration, per scope, with the task types that were granted and used it. Pure.
 */
import type { UsageRow, UsageSummary } from '../store/index.js';
import { USE_SOURCES, type ScopeEvidence, type UseSource } from './suggestion-types.js';

export interface IntegrationUsage {
  integration: string;
  /** By scope. */
  scopes: Map<string, ScopeEvidence>;
  /** Use evidence sources seen for any scope of it. */
  sources: UseSource[];
  tokens_issued: number;
  issued_first_at: string | null;
  issued_last_at: string | null;
  /** The longest observed use of a token, seconds, and the tokens with use it rests on; null without any. */
  longest_use_seconds: number | null;
  tokens_with_use: number;
}

/** agent → integration → its usage. */
export type UsageIndex = Map<string, Map<string, IntegrationUsage>>;

export function indexUsage(summary: UsageSummary): UsageIndex {
  const index: UsageIndex = new Map();
  const of = (agent: string, integration: string): IntegrationUsage => {
    let agentMap = index.get(agent);
    if (agentMap === undefined) index.set(agent, (agentMap = new Map()));
    let usage = agentMap.get(integration);
    if (usage === undefined) {
      usage = {
        integration,
        scopes: new Map(),
        sources: [],
        tokens_issued: 0,
        issued_first_at: null,
        issued_last_at: null,
        longest_use_seconds: null,
        tokens_with_use: 0,
      };
      agentMap.set(integration, usage);
    }
    return usage;
  };
  for (const row of summary.rows) add(of(row.agent_id, row.integration), row);
  for (const issued of summary.issued) {
    const usage = of(issued.agent_id, issued.integration);
    usage.tokens_issued += issued.tokens;
    usage.issued_first_at = earliest(usage.issued_first_at, issued.first_at);
    usage.issued_last_at = latest(usage.issued_last_at, issued.last_at);
  }
  for (const span of summary.spans) {
    const usage = of(span.agent_id, span.integration);
    usage.longest_use_seconds = Math.max(usage.longest_use_seconds ?? 0, span.max_seconds);
    usage.tokens_with_use += span.tokens;
  }
  for (const agentMap of index.values()) {
    for (const usage of agentMap.values()) {
      for (const evidence of usage.scopes.values()) {
        evidence.days_observed = daysBetween(evidence.granted_first_at, evidence.granted_last_at);
        evidence.task_types = sortedKeys(evidence.task_types);
      }
    }
  }
  return index;
}

export function emptyEvidence(scope: string): ScopeEvidence {
  return {
    scope,
    granted: 0,
    granted_first_at: null,
    granted_last_at: null,
    used: { proxy: 0, resource_server: 0 },
    used_first_at: null,
    used_last_at: null,
    requested: 0,
    denied: 0,
    days_observed: 0,
    task_types: {},
  };
}

export const usedTotal = (e: ScopeEvidence): number => e.used.proxy + e.used.resource_server;

function add(usage: IntegrationUsage, row: UsageRow): void {
  let e = usage.scopes.get(row.scope);
  if (e === undefined) usage.scopes.set(row.scope, (e = emptyEvidence(row.scope)));
  const types = e.task_types;
  const counts = Object.hasOwn(types, row.task_type) ? (types[row.task_type] as { granted: number; used: number }) : (types[row.task_type] = { granted: 0, used: 0 });
  switch (row.source) {
    case 'granted':
      e.granted += row.n;
      e.granted_first_at = earliest(e.granted_first_at, row.first_at);
      e.granted_last_at = latest(e.granted_last_at, row.last_at);
      counts.granted += row.n;
      break;
    case 'proxy':
    case 'resource_server':
      e.used[row.source] += row.n;
      e.used_first_at = earliest(e.used_first_at, row.first_at);
      e.used_last_at = latest(e.used_last_at, row.last_at);
      counts.used += row.n;
      if (row.n > 0 && !usage.sources.includes(row.source)) {
        usage.sources.push(row.source);
        usage.sources.sort((a, b) => USE_SOURCES.indexOf(a) - USE_SOURCES.indexOf(b));
      }
      break;
    case 'requested':
      e.requested += row.n;
      break;
    case 'denied':
      e.denied += row.n;
      break;
  }
  // A task type only asked about (requested, denied) is not a type the scope was granted to or used by.
  if (counts.granted === 0 && counts.used === 0 && (row.source === 'requested' || row.source === 'denied')) delete types[row.task_type];
}

/** UTC days from `first` to `last`, both counted; 0 when either is missing. */
export function daysBetween(first: string | null, last: string | null): number {
  if (first === null || last === null) return 0;
  const day = (iso: string): number => Math.floor(Date.parse(`${iso.slice(0, 10)}T00:00:00Z`) / 86_400_000);
  return Math.max(0, day(last) - day(first)) + 1;
}

export const earliest = (a: string | null, b: string | null): string | null => (a === null ? b : b === null ? a : a < b ? a : b);
export const latest = (a: string | null, b: string | null): string | null => (a === null ? b : b === null ? a : a > b ? a : b);

function sortedKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(record).sort().map((k) => [k, record[k] as T]));
}
