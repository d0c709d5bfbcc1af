/*
 * The HTML report's chart for one agent: per scope, a row of bars (tokens that carried it, per bucket of the
 * window) with a line over them (uses of it with evidence), both on the row's own scale. Inline SVG: no script, no
 * external reference; every text escaped; each bar's and point's numbers in a <title> (the browser's tooltip).
 */
import type { UsageSeries } from './usage-series.js';

export interface ChartRow {
  /** `integration scope`. */
  label: string;
  granted: number[];
  used: number[];
}

const LABEL_WIDTH = 250;
const ROW_HEIGHT = 44;
const PLOT_WIDTH = 600;
const MAX_ROWS = 40;
const MAX_LABEL = 38;

/** The agent's rows: every integration and scope with tokens or uses in some bucket, sorted. */
export function chartRows(series: UsageSeries, agent: string): ChartRow[] {
  const rows = new Map<string, ChartRow>();
  series.forEach((bucket, i) => {
    for (const row of bucket.summary.rows) {
      if (row.agent_id !== agent || (row.source !== 'granted' && row.source !== 'proxy' && row.source !== 'resource_server')) continue;
      const label = `${row.integration} ${row.scope}`;
      let chart = rows.get(label);
      if (chart === undefined) rows.set(label, (chart = { label, granted: series.map(() => 0), used: series.map(() => 0) }));
      if (row.source === 'granted') chart.granted[i] = (chart.granted[i] ?? 0) + row.n;
      else chart.used[i] = (chart.used[i] ?? 0) + row.n;
    }
  });
  return [...rows.values()].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
}

/** The chart, or '' when there is nothing to draw. */
export function svgChart(rows: readonly ChartRow[], series: UsageSeries, title: string): string {
  const n = series.length;
  if (rows.length === 0 || n === 0) return '';
  const shown = rows.slice(0, MAX_ROWS);
  const slot = PLOT_WIDTH / n;
  const bar = Math.max(2, Math.min(18, slot * 0.7));
  const width = LABEL_WIDTH + PLOT_WIDTH + 10;
  const height = shown.length * ROW_HEIGHT + 40;
  const parts: string[] = [
    `<svg class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(title)}">`,
    `<title>${esc(title)}</title>`,
  ];
  shown.forEach((row, r) => {
    const top = r * ROW_HEIGHT + 6;
    const base = top + ROW_HEIGHT - 10;
    const scale = Math.max(1, ...row.granted, ...row.used);
    const y = (v: number): number => round(base - ((ROW_HEIGHT - 16) * v) / scale);
    const label = row.label.length > MAX_LABEL ? `${row.label.slice(0, MAX_LABEL - 1)}…` : row.label;
    parts.push(`<text class="label" x="4" y="${round(base - 8)}">${esc(label)}<title>${esc(row.label)}</title></text>`);
    parts.push(`<text class="max" x="${LABEL_WIDTH - 6}" y="${round(top + 12)}" text-anchor="end">${scale}</text>`);
    parts.push(`<line class="axis" x1="${LABEL_WIDTH}" y1="${base}" x2="${LABEL_WIDTH + PLOT_WIDTH}" y2="${base}"/>`);
    const points: string[] = [];
    for (let i = 0; i < n; i++) {
      const bucket = series[i];
      const when = bucket === undefined ? '' : `${bucket.since.slice(0, 10)} to ${bucket.until.slice(0, 10)}`;
      const granted = row.granted[i] ?? 0;
      const used = row.used[i] ?? 0;
      const x = LABEL_WIDTH + i * slot + (slot - bar) / 2;
      if (granted > 0) {
        parts.push(`<rect class="granted" x="${round(x)}" y="${y(granted)}" width="${round(bar)}" height="${round(base - y(granted))}"><title>${esc(`${when}: ${granted} tokens carried it, ${used} uses`)}</title></rect>`);
      }
      points.push(`${round(x + bar / 2)},${y(used)}`);
    }
    parts.push(`<polyline class="used" points="${points.join(' ')}"/>`);
    for (let i = 0; i < n; i++) {
      const used = row.used[i] ?? 0;
      if (used === 0) continue;
      const [cx, cy] = (points[i] as string).split(',');
      parts.push(`<circle class="used" cx="${cx}" cy="${cy}" r="2.5"><title>${esc(`${used} uses`)}</title></circle>`);
    }
  });
  const first = series[0]?.since.slice(0, 10) ?? '';
  const last = series[n - 1]?.until.slice(0, 10) ?? '';
  const bottom = shown.length * ROW_HEIGHT + 24;
  parts.push(`<text class="axis-label" x="${LABEL_WIDTH}" y="${bottom}">${esc(first)}</text>`);
  parts.push(`<text class="axis-label" x="${LABEL_WIDTH + PLOT_WIDTH}" y="${bottom}" text-anchor="end">${esc(last)}</text>`);
  if (rows.length > shown.length) parts.push(`<text class="axis-label" x="4" y="${bottom}">${rows.length - shown.length} more scopes not drawn</text>`);
  parts.push('</svg>');
  return parts.join('');
}

const round = (v: number): number => Math.round(v * 10) / 10;

/** Text for HTML or SVG content and attribute values: every character that could end one escaped. */
export function esc(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
