/**
 * One suggestion run, as `agent-pdp suggest` and the server's schedule make it: fold the trail into the usage
 * aggregates, read the window, run the engine on the policy folder, and save what it suggests, in one transaction
 * with the withdrawal of the open suggestions this run no longer makes and (the schedule) the notification of the
 * new ones.
 *
 * Withdrawal is honest only between runs on the same terms: an open suggestion is withdrawn when this run covers its
 * agent (all agents, or the one asked for), reads a window of the same length and uses the same thresholds as the
 * suggestion was made with, and does not make it again. A run on other terms (`--since 20d`, `--min-days 1`) says
 * nothing about it and leaves it open.
 */
import type { SaveSuggestionsOptions, SaveSuggestionsResult, Store, SuggestionRecord, UsageSummary } from '../store/index.js';
import { suggestPolicies } from './engine.js';
import type { PolicyFolder } from './policy-folder.js';
import { thresholdsOf, type Suggestion, type SuggestionRun, type SuggestionThresholds } from './suggestion-types.js';

const DAY_MS = 86_400_000;

export interface SuggestionRunInput {
  store: Pick<Store, 'rollupUsage' | 'usageSummary' | 'saveSuggestions' | 'listSuggestions'>;
  folder: PolicyFolder;
  thresholds: SuggestionThresholds;
  /** The window, [since, until); `until` is the run's time. */
  since: string;
  until: string;
  /** One agent only (its suggestions alone are saved and withdrawn). */
  agent?: string;
  /** Notify of the new suggestions (the schedule): the notification id and its deliveries. */
  notify?: SaveSuggestionsOptions['notify'];
}

export interface SuggestionRunResult {
  /** The engine's run, without its suggestions (the report's analysis). */
  analysis: Omit<SuggestionRun, 'suggestions'>;
  /** This run's suggestions as stored after the save (one decided before on the same evidence shows so). */
  suggestions: SuggestionRecord[];
  summary: UsageSummary;
  saved: SaveSuggestionsResult;
}

export async function runSuggestions(input: SuggestionRunInput): Promise<SuggestionRunResult> {
  const { store, since, until, agent } = input;
  const thresholds = thresholdsOf(input.thresholds);
  await store.rollupUsage();
  const window = { since, until, ...(agent === undefined ? {} : { agent_id: agent }) };
  const summary = await store.usageSummary(window);
  const run = suggestPolicies({ summary, policy: input.folder.set, files: input.folder, thresholds, now: until, ...(agent === undefined ? {} : { agent }) });
  const made = new Set(run.suggestions.map((s) => s.id));
  const open = await store.listSuggestions({ status: 'open', ...(agent === undefined ? {} : { agent_id: agent }) });
  const days = Math.round((Date.parse(until) - Date.parse(since)) / DAY_MS);
  const withdraw = open.filter((s) => !made.has(s.id) && sameTerms(s, days, thresholds)).map((s) => ({ id: s.id, evidence_hash: s.evidence_hash }));
  const saved = await store.saveSuggestions(
    run.suggestions.map((s) => record(s, until)),
    { ...(withdraw.length === 0 ? {} : { withdraw, at: until }), ...(input.notify === undefined ? {} : { notify: input.notify }) },
  );
  // As stored: one dismissed (or applied) before on the same evidence is shown so, not as open.
  const stored = new Map((await store.listSuggestions(agent === undefined ? {} : { agent_id: agent })).map((r) => [r.id, r]));
  const { suggestions, ...analysis } = run;
  return { analysis, suggestions: suggestions.map((s) => stored.get(s.id) ?? record(s, until)), summary, saved };
}

/** The stored record of a suggestion the engine made, open. */
export function record(s: Suggestion, at: string): SuggestionRecord {
  return { ...s, status: 'open', created_at: at, updated_at: at, decided_by: null, decided_at: null };
}

/** Whether a stored suggestion was made on this run's terms: a window as long, the same thresholds. */
function sameTerms(s: SuggestionRecord, days: number, thresholds: SuggestionThresholds): boolean {
  const evidence = (typeof s.evidence === 'object' && s.evidence !== null ? s.evidence : {}) as { since?: unknown; until?: unknown; thresholds?: unknown };
  if (typeof evidence.since !== 'string' || typeof evidence.until !== 'string') return false;
  if (Math.round((Date.parse(evidence.until) - Date.parse(evidence.since)) / DAY_MS) !== days) return false;
  const t = (typeof evidence.thresholds === 'object' && evidence.thresholds !== null ? evidence.thresholds : {}) as Record<string, unknown>;
  return t['min_days'] === thresholds.min_days && t['min_tokens'] === thresholds.min_tokens && t['ttl_factor'] === thresholds.ttl_factor;
}
