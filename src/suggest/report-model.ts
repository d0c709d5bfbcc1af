/*
 * What the three reports (JSON, Markdown, HTML) are made from: the suggestions (as stored, with their status), and
 * for a run of the engine its window, thresholds and per-agent analysis, and optionally the usage over time for
 * the charts. Stored suggestions carry `proposal` and `evidence` as JSON the store does not check: they are read
 * here defensively, a missing member shown as missing, never trusted to be of the right type.
 */
import type { SuggestionRecord } from '../store/index.js';
import type { AgentAnalysis, Confidence, SuggestionRun } from './suggestion-types.js';
import type { UsageSeries } from './usage-series.js';

export interface ReportInput {
  generated_at: string;
  /** The suggestions, as stored (status included); in (agent, integration, kind, target) order. */
  suggestions: readonly SuggestionRecord[];
  /** A run of the engine (the CLI): its window, thresholds, revision and analysis. Absent for a stored list (HTTP). */
  run?: Omit<SuggestionRun, 'suggestions'>;
  /** Usage over time, for the HTML charts. */
  series?: UsageSeries;
}

/** One suggestion as the reports show it. */
export interface SuggestionView {
  record: SuggestionRecord;
  summary: string;
  confidence: Confidence | null;
  reasons: string[];
  diff: string;
  days_observed: number | null;
  samples: number | null;
}

export function viewOf(record: SuggestionRecord): SuggestionView {
  const proposal = asObject(record.proposal);
  const evidence = asObject(record.evidence);
  const confidence = evidence['confidence'];
  return {
    record,
    summary: typeof proposal['summary'] === 'string' ? proposal['summary'] : `${record.kind} ${record.target}`,
    confidence: confidence === 'high' || confidence === 'medium' || confidence === 'low' ? confidence : null,
    reasons: Array.isArray(evidence['reasons']) ? evidence['reasons'].filter((r): r is string => typeof r === 'string') : [],
    diff: typeof proposal['diff'] === 'string' ? proposal['diff'] : '',
    days_observed: typeof evidence['days_observed'] === 'number' ? evidence['days_observed'] : null,
    samples: typeof evidence['samples'] === 'number' ? evidence['samples'] : null,
  };
}

/** Agents the report has a section for: those of the run's analysis, then any other a suggestion names; sorted. */
export function agentSections(input: ReportInput): Array<{ agent_id: string; analysis: AgentAnalysis | null; suggestions: SuggestionView[] }> {
  const ids = new Set<string>([...(input.run?.agents ?? []).map((a) => a.agent_id), ...input.suggestions.map((s) => s.agent_id)]);
  return [...ids].sort().map((agent_id) => ({
    agent_id,
    analysis: input.run?.agents.find((a) => a.agent_id === agent_id) ?? null,
    suggestions: input.suggestions.filter((s) => s.agent_id === agent_id).map(viewOf),
  }));
}

/** How many suggestions of each status. */
export function statusCounts(suggestions: readonly SuggestionRecord[]): Record<SuggestionRecord['status'], number> {
  const counts = { open: 0, applied: 0, dismissed: 0, withdrawn: 0 };
  for (const s of suggestions) if (Object.hasOwn(counts, s.status)) counts[s.status]++;
  return counts;
}

export const KIND_TITLES: Record<SuggestionRecord['kind'], string> = {
  remove_scope: 'remove a scope',
  move_to_task_type: 'move a scope to one task type',
  shorten_ttl: 'shorten the token TTL',
};

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
