/*
 * Reports of stored suggestions, for `GET /v1/suggestions` (wired by main.ts; the route only adapts): the
 * suggestions as the last `agent-pdp suggest` (or schedule) saved them and as operators decided them, never
 * recomputed here. The HTML format adds the charts of the usage over the configured window.
 */
import type { Store, SuggestionStatus } from '../store/index.js';
import { htmlReport } from './report-html.js';
import { jsonReport } from './report-json.js';
import { markdownReport } from './report-markdown.js';
import type { ReportInput } from './report-model.js';
import { usageSeries } from './usage-series.js';

export const REPORT_FORMATS = ['json', 'md', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export const REPORT_MEDIA_TYPES: Readonly<Record<ReportFormat, string>> = Object.freeze({
  json: 'application/json; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  html: 'text/html; charset=utf-8',
});

export function renderReport(format: ReportFormat, input: ReportInput): string {
  return format === 'json' ? jsonReport(input) : format === 'md' ? markdownReport(input) : htmlReport(input);
}

export interface SuggestionReportQuery {
  agent_id?: string;
  status?: SuggestionStatus;
  format: ReportFormat;
}

export interface SuggestionReportsOptions {
  store: Pick<Store, 'listSuggestions' | 'usageSummary'>;
  now: () => Date;
  /** How far back the HTML charts reach (the config's `suggestions.window_days`). */
  windowDays: number;
}

export class SuggestionReports {
  readonly #o: SuggestionReportsOptions;

  constructor(options: SuggestionReportsOptions) {
    this.#o = options;
  }

  async render(query: SuggestionReportQuery): Promise<{ contentType: string; body: string }> {
    const now = this.#o.now();
    const suggestions = await this.#o.store.listSuggestions({
      ...(query.status === undefined ? {} : { status: query.status }),
      ...(query.agent_id === undefined ? {} : { agent_id: query.agent_id }),
    });
    const input: ReportInput = { generated_at: now.toISOString(), suggestions };
    if (query.format === 'html' && suggestions.length > 0) {
      const since = new Date(now.getTime() - this.#o.windowDays * 86_400_000).toISOString();
      input.series = await usageSeries(this.#o.store, { since, until: now.toISOString(), ...(query.agent_id === undefined ? {} : { agent_id: query.agent_id }) });
    }
    return { contentType: REPORT_MEDIA_TYPES[query.format], body: renderReport(query.format, input) };
  }
}
