/*
 * A suggestion's evidence as the page shows it: read defensively from the stored JSON (src/suggest/
 * suggestion-types.ts's SuggestionEvidence and SuggestionProposal; a missing member shows as missing), and its
 * chart. The stored evidence carries totals and first/last times over the window, not a count per day: the chart
 * draws when the scope was granted and used within the window (the spans), how often (the notes), and granted vs
 * used per task type; for a TTL, the TTL now, the proposed one and the longest use observed.
 */
import { h, type Child } from './dom.js';
import { count, duration } from './format.js';
import { facts } from './page-kit.js';
import { pairBars, spanChart, valueBars } from './svg-chart.js';

export interface EvidenceView {
  confidence: string | null;
  reasons: string[];
  since: string | null;
  until: string | null;
  days_observed: number | null;
  samples: number | null;
  tokens_issued: number | null;
  sources: string[];
  scope: ScopeView | null;
  longest_use_seconds: number | null;
  tokens_with_use: number | null;
}

interface ScopeView {
  granted: number;
  granted_first_at: string | null;
  granted_last_at: string | null;
  used: number;
  used_first_at: string | null;
  used_last_at: string | null;
  requested: number;
  denied: number;
  task_types: Array<{ type: string; granted: number; used: number }>;
}

export interface ProposalView {
  summary: string | null;
  diff: string;
  from_ttl: number | null;
  to_ttl: number | null;
}

export function evidenceOf(value: unknown): EvidenceView {
  const e = obj(value);
  const scope = e['scope'] === null || e['scope'] === undefined ? null : scopeOf(obj(e['scope']));
  return {
    confidence: str(e['confidence']),
    reasons: strings(e['reasons']),
    since: str(e['since']),
    until: str(e['until']),
    days_observed: num(e['days_observed']),
    samples: num(e['samples']),
    tokens_issued: num(e['tokens_issued']),
    sources: strings(e['sources']),
    scope,
    longest_use_seconds: num(e['longest_use_seconds']),
    tokens_with_use: num(e['tokens_with_use']),
  };
}

export function proposalOf(value: unknown): ProposalView {
  const p = obj(value);
  return { summary: str(p['summary']), diff: str(p['diff']) ?? '', from_ttl: num(p['from_ttl']), to_ttl: num(p['to_ttl']) };
}

function scopeOf(s: Record<string, unknown>): ScopeView {
  const used = obj(s['used']);
  const types = obj(s['task_types']);
  return {
    granted: num(s['granted']) ?? 0,
    granted_first_at: str(s['granted_first_at']),
    granted_last_at: str(s['granted_last_at']),
    used: (num(used['proxy']) ?? 0) + (num(used['resource_server']) ?? 0),
    used_first_at: str(s['used_first_at']),
    used_last_at: str(s['used_last_at']),
    requested: num(s['requested']) ?? 0,
    denied: num(s['denied']) ?? 0,
    task_types: Object.keys(types)
      .sort()
      .map((type) => {
        const c = obj(types[type]);
        return { type, granted: num(c['granted']) ?? 0, used: num(c['used']) ?? 0 };
      }),
  };
}

/** The numbers the confidence rests on. */
export function evidenceFacts(e: EvidenceView): HTMLElement {
  const pairs: Array<readonly [string, Child]> = [
    ['window', e.since === null || e.until === null ? '-' : `${e.since.slice(0, 10)} to ${e.until.slice(0, 10)}`],
    ['days observed', count(e.days_observed)],
    ['samples', count(e.samples)],
    ['tokens issued', count(e.tokens_issued)],
    ['use evidence', e.sources.length === 0 ? 'none' : e.sources.join(', ')],
  ];
  if (e.scope !== null) pairs.push(['granted / used', `${count(e.scope.granted)} tokens / ${count(e.scope.used)} uses`], ['asked / refused', `${count(e.scope.requested)} / ${count(e.scope.denied)}`]);
  if (e.longest_use_seconds !== null) pairs.push(['longest use', `${duration(e.longest_use_seconds)} (${count(e.tokens_with_use)} tokens with use)`]);
  return facts(pairs);
}

/** The chart of granted vs used for one suggestion, or null when the evidence has nothing to draw. */
export function evidenceChart(e: EvidenceView, p: ProposalView, label: string): HTMLElement | null {
  const parts: HTMLElement[] = [];
  if (e.scope !== null && e.since !== null && e.until !== null && !Number.isNaN(Date.parse(e.since)) && !Number.isNaN(Date.parse(e.until))) {
    const sc = e.scope;
    parts.push(
      spanChart({
        title: `${label}: when it was granted and used in the window`,
        since: e.since,
        until: e.until,
        testid: 'suggestion-chart',
        spans: [
          { label: 'granted', cls: 'c-granted', from: sc.granted_first_at, to: sc.granted_last_at, note: `${count(sc.granted)} tokens` },
          { label: 'used', cls: 'c-used', from: sc.used_first_at, to: sc.used_last_at, note: `${count(sc.used)} uses` },
        ],
      }),
    );
    if (sc.task_types.length > 0) {
      parts.push(
        pairBars({
          title: `${label}: granted vs used per task type`,
          rows: sc.task_types.map((t) => ({ label: t.type === '' ? '(no task type)' : t.type, a: t.granted, b: t.used })),
          a: { label: 'tokens that carried it', cls: 'c-granted' },
          b: { label: 'uses', cls: 'c-used' },
          testid: 'suggestion-task-types',
        }),
      );
    }
  } else if (p.from_ttl !== null || p.to_ttl !== null || e.longest_use_seconds !== null) {
    const rows = [
      { label: 'token TTL now', value: p.from_ttl ?? 0, cls: 'c-granted', note: duration(p.from_ttl) },
      { label: 'proposed TTL', value: p.to_ttl ?? 0, cls: 'c-proposed', note: duration(p.to_ttl) },
      { label: 'longest use observed', value: e.longest_use_seconds ?? 0, cls: 'c-used', note: duration(e.longest_use_seconds) },
    ];
    parts.push(valueBars({ title: `${label}: token TTL vs the longest use observed`, rows, testid: 'suggestion-chart' }));
  }
  return parts.length === 0 ? null : h('div', { class: 'evidence-chart' }, parts);
}

function obj(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
