/*
 * The JSON report (`--format json`, `GET /v1/suggestions?format=json`): `SuggestionReportV1`, for machines. The
 * suggestions are the stored records as they are (their proposal's edits and diff, their evidence); a run of the
 * engine adds its window, thresholds, policy revision and per-agent analysis, a stored list has these null / [].
 */
import type { SuggestionRecord } from '../store/index.js';
import type { ReportInput } from './report-model.js';
import type { AgentAnalysis, SuggestionThresholds } from './suggestion-types.js';

export interface SuggestionReportV1 {
  version: 1;
  generated_at: string;
  /** The window the suggestions were computed on; null for a list of stored suggestions. */
  window: { since: string; until: string; first_day: string; last_day: string } | null;
  thresholds: SuggestionThresholds | null;
  policy_revision: string | null;
  suggestions: SuggestionRecord[];
  /** Per agent: every scope with its evidence and verdict, and the notes (what was seen but not suggested). */
  agents: AgentAnalysis[];
}

export function jsonReportOf(input: ReportInput): SuggestionReportV1 {
  const run = input.run;
  return {
    version: 1,
    generated_at: input.generated_at,
    window: run === undefined ? null : { since: run.since, until: run.until, first_day: run.first_day, last_day: run.last_day },
    thresholds: run?.thresholds ?? null,
    policy_revision: run?.policy_revision ?? null,
    suggestions: [...input.suggestions],
    agents: run?.agents ?? [],
  };
}

export function jsonReport(input: ReportInput): string {
  return `${JSON.stringify(jsonReportOf(input), null, 2)}\n`;
}
