/*
 * Small inline SVG charts built with createElementNS (tags and attributes from allowlists, labels as text nodes):
 * bars of counts over time (stacked or side by side), pairs of horizontal bars per label (granted vs used), and
 * spans on a time window. Colours come from classes in console.css (no style attribute: the CSP forbids it).
 * Each bar carries a <title> with its numbers: the browser's tooltip.
 */
import { h } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
const SVG_TAGS = new Set(['svg', 'g', 'rect', 'line', 'polyline', 'text', 'title']);
const SVG_ATTRS = new Set(['class', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'width', 'height', 'viewBox', 'points', 'role', 'aria-label', 'text-anchor', 'data-testid', 'preserveAspectRatio']);

type SvgChild = SVGElement | string | null | undefined;

function s(tag: string, attrs: Readonly<Record<string, string | number | undefined>>, ...children: SvgChild[]): SVGElement {
  if (!SVG_TAGS.has(tag)) throw new TypeError(`svg: tag ${tag} is not on the allowlist`);
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (!SVG_ATTRS.has(name)) throw new TypeError(`svg: attribute ${name} is not on the allowlist`);
    if (value !== undefined) el.setAttribute(name, typeof value === 'number' ? String(round(value)) : value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    el.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return el;
}

const round = (v: number): number => Math.round(v * 10) / 10;
const tip = (text: string): SVGElement => s('title', {}, text);

export interface Series {
  /** Legend text. */
  label: string;
  /** Class of its bars (console.css colours it): `c-allow`, `c-deny`, `c-granted`, `c-used`, ... */
  cls: string;
  values: readonly number[];
}

export interface BarChartOptions {
  title: string;
  /** One per slot, left to right; the axis shows the first, the last and a few between. */
  categories: readonly string[];
  series: readonly Series[];
  /** Stacked (a total per slot) or side by side. */
  stacked: boolean;
  testid?: string;
  height?: number;
}

const WIDTH = 760;
const LEFT = 44;
const RIGHT = 8;
const TOP = 10;
const BOTTOM = 22;

/** Vertical bars of counts per slot, with a legend above. */
export function barChart(o: BarChartOptions): HTMLElement {
  const height = o.height ?? 180;
  const n = o.categories.length;
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = height - TOP - BOTTOM;
  const totals = o.categories.map((_, i) => (o.stacked ? o.series.reduce((t, se) => t + (se.values[i] ?? 0), 0) : Math.max(0, ...o.series.map((se) => se.values[i] ?? 0))));
  const max = Math.max(1, ...totals);
  const y = (v: number): number => TOP + plotH - (plotH * v) / max;
  const slot = n === 0 ? plotW : plotW / n;
  const group = Math.max(1, slot * 0.8);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': o.title, 'data-testid': o.testid }, tip(o.title));
  svg.appendChild(s('line', { class: 'axis', x1: LEFT, y1: TOP + plotH, x2: WIDTH - RIGHT, y2: TOP + plotH }));
  svg.appendChild(s('text', { class: 'tick', x: LEFT - 4, y: TOP + 8, 'text-anchor': 'end' }, String(max)));
  svg.appendChild(s('text', { class: 'tick', x: LEFT - 4, y: TOP + plotH, 'text-anchor': 'end' }, '0'));
  o.categories.forEach((category, i) => {
    const x0 = LEFT + i * slot + (slot - group) / 2;
    const detail = `${category}: ${o.series.map((se) => `${se.label} ${se.values[i] ?? 0}`).join(', ')}`;
    let stackTop = 0;
    o.series.forEach((se, k) => {
      const v = se.values[i] ?? 0;
      if (v <= 0) return;
      if (o.stacked) {
        svg.appendChild(s('rect', { class: se.cls, x: x0, y: y(stackTop + v), width: group, height: y(stackTop) - y(stackTop + v) }, tip(detail)));
        stackTop += v;
      } else {
        const w = group / o.series.length;
        svg.appendChild(s('rect', { class: se.cls, x: x0 + k * w, y: y(v), width: Math.max(1, w - 1), height: y(0) - y(v) }, tip(detail)));
      }
    });
  });
  for (const i of tickIndexes(n)) {
    // The first and last labels hang inward, so neither is cut at the chart's edge.
    const edge = n > 1 && i === 0 ? 'start' : n > 1 && i === n - 1 ? 'end' : 'middle';
    const x = LEFT + i * slot + (edge === 'start' ? 0 : edge === 'end' ? slot : slot / 2);
    svg.appendChild(s('text', { class: 'tick', x, y: height - 6, 'text-anchor': edge }, o.categories[i] ?? ''));
  }
  return wrap(o.series, svg);
}

/** First, last and up to four evenly between. */
function tickIndexes(n: number): number[] {
  if (n === 0) return [];
  const step = Math.max(1, Math.ceil(n / 6));
  const out: number[] = [];
  for (let i = 0; i < n; i += step) out.push(i);
  if (out[out.length - 1] !== n - 1) {
    if (out.length > 1 && n - 1 - (out[out.length - 1] ?? 0) < step / 2) out.pop();
    out.push(n - 1);
  }
  return out;
}

export interface PairRow {
  label: string;
  a: number;
  b: number;
}

/** Per label two horizontal bars (`a` above `b`) on one shared scale: granted vs used per scope. */
export function pairBars(o: { title: string; rows: readonly PairRow[]; a: { label: string; cls: string }; b: { label: string; cls: string }; testid?: string }): HTMLElement {
  const labelW = 260;
  const rowH = 26;
  const height = Math.max(1, o.rows.length) * rowH + 8;
  const plotW = WIDTH - labelW - 100;
  const max = Math.max(1, ...o.rows.flatMap((r) => [r.a, r.b]));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': o.title, 'data-testid': o.testid }, tip(o.title));
  o.rows.forEach((row, i) => {
    const top = 4 + i * rowH;
    const label = row.label.length > 40 ? `${row.label.slice(0, 39)}…` : row.label;
    svg.appendChild(s('text', { class: 'label', x: 4, y: top + 15 }, label, tip(row.label)));
    const detail = `${row.label}: ${o.a.label} ${row.a}, ${o.b.label} ${row.b}`;
    const wa = (plotW * row.a) / max;
    const wb = (plotW * row.b) / max;
    svg.appendChild(s('rect', { class: o.a.cls, x: labelW, y: top + 2, width: Math.max(row.a > 0 ? 1 : 0, wa), height: 9 }, tip(detail)));
    svg.appendChild(s('rect', { class: o.b.cls, x: labelW, y: top + 12, width: Math.max(row.b > 0 ? 1 : 0, wb), height: 9 }, tip(detail)));
    svg.appendChild(s('text', { class: 'tick', x: labelW + Math.max(wa, wb) + 6, y: top + 16 }, `${row.a} / ${row.b}`));
  });
  return wrap([o.a, o.b], svg);
}

export interface Span {
  label: string;
  cls: string;
  /** ISO instants; null: nothing to draw for this row (shown as "none"). */
  from: string | null;
  to: string | null;
  /** Text after the span (e.g. "120 tokens"). */
  note: string;
}

/** Spans on a time window: when something was first and last seen within [since, until). */
export function spanChart(o: { title: string; since: string; until: string; spans: readonly Span[]; testid?: string }): HTMLElement {
  const labelW = 110;
  const rowH = 24;
  const plotW = WIDTH - labelW - 230;
  const height = o.spans.length * rowH + 24;
  const t0 = Date.parse(o.since);
  const t1 = Math.max(t0 + 1, Date.parse(o.until));
  const x = (iso: string): number => labelW + (plotW * Math.min(Math.max(Date.parse(iso) - t0, 0), t1 - t0)) / (t1 - t0);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': o.title, 'data-testid': o.testid }, tip(o.title));
  o.spans.forEach((span, i) => {
    const top = 4 + i * rowH;
    svg.appendChild(s('text', { class: 'label', x: 4, y: top + 14 }, span.label));
    svg.appendChild(s('line', { class: 'axis', x1: labelW, y1: top + 10, x2: labelW + plotW, y2: top + 10 }));
    if (span.from !== null && span.to !== null && !Number.isNaN(Date.parse(span.from)) && !Number.isNaN(Date.parse(span.to))) {
      const a = x(span.from);
      const b = Math.max(a + 3, x(span.to));
      svg.appendChild(s('rect', { class: span.cls, x: a, y: top + 3, width: b - a, height: 14 }, tip(`${span.label}: ${span.from} to ${span.to}, ${span.note}`)));
    }
    svg.appendChild(s('text', { class: 'tick', x: labelW + plotW + 8, y: top + 14 }, span.from === null ? `${span.note} (none in the window)` : span.note));
  });
  const bottom = o.spans.length * rowH + 18;
  svg.appendChild(s('text', { class: 'tick', x: labelW, y: bottom }, o.since.slice(0, 10)));
  svg.appendChild(s('text', { class: 'tick', x: labelW + plotW, y: bottom, 'text-anchor': 'end' }, o.until.slice(0, 10)));
  return wrap([], svg);
}

function wrap(series: readonly Pick<Series, 'label' | 'cls'>[], svg: SVGElement): HTMLElement {
  const legend = series.length === 0 ? null : h('div', { class: 'legend' }, series.map((se) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${se.cls}` }), se.label)));
  const box = h('div', { class: 'chart-box' }, legend);
  box.appendChild(svg);
  return box;
}

export interface ValueBar {
  label: string;
  value: number;
  cls: string;
  /** Text after the bar (default: the value). */
  note?: string;
}

/** One horizontal bar per row on a shared scale (e.g. a token TTL now, proposed, and the longest use observed). */
export function valueBars(o: { title: string; rows: readonly ValueBar[]; testid?: string }): HTMLElement {
  const labelW = 200;
  const rowH = 22;
  const plotW = WIDTH - labelW - 160;
  const height = o.rows.length * rowH + 6;
  const max = Math.max(1, ...o.rows.map((r) => r.value));
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${WIDTH} ${height}`, role: 'img', 'aria-label': o.title, 'data-testid': o.testid }, tip(o.title));
  o.rows.forEach((row, i) => {
    const top = 4 + i * rowH;
    const w = (plotW * Math.max(0, row.value)) / max;
    const note = row.note ?? String(row.value);
    svg.appendChild(s('text', { class: 'label', x: 4, y: top + 13 }, row.label));
    svg.appendChild(s('rect', { class: row.cls, x: labelW, y: top + 2, width: Math.max(row.value > 0 ? 1 : 0, w), height: 14 }, tip(`${row.label}: ${note}`)));
    svg.appendChild(s('text', { class: 'tick', x: labelW + w + 6, y: top + 13 }, note));
  });
  return wrap([], svg);
}
