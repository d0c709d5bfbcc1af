/* How values read on screen: times in the browser's zone with the UTC instant in a tooltip, numbers, durations. */
import { h } from './dom.js';

/** A <time> showing local date and time (seconds), the ISO instant as its datetime and title. */
export function timeEl(iso: string | null | undefined): HTMLElement {
  if (iso === null || iso === undefined || iso === '') return h('span', { class: 'muted' }, '-');
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return h('span', null, iso);
  return h('time', { datetime: iso, title: iso }, localTime(ms));
}

export function localTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `HH:MM` of an ISO instant, local (chart axis labels). */
export function hourMinute(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

export function count(n: unknown): string {
  return typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en-US') : '-';
}

/** Seconds as `1h 30m`, `45m`, `2d 4h`, `30s`. */
export function duration(seconds: unknown): string {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0) return '-';
  const s = Math.round(seconds);
  const d = Math.floor(s / 86_400);
  const hr = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [d > 0 ? `${d}d` : '', hr > 0 ? `${hr}h` : '', m > 0 ? `${m}m` : '', s < 60 ? `${s}s` : ''].filter((x) => x !== '');
  return parts.slice(0, 2).join(' ') || '0s';
}

/** A `datetime-local` value (local wall time) as an ISO instant; '' stays ''. */
export function localInputToIso(value: string): string {
  if (value === '') return '';
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? '' : new Date(ms).toISOString();
}

/** An ISO instant as a `datetime-local` value (local wall time, seconds dropped when zero). */
export function isoToLocalInput(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return '';
  return localTime(ms).replace(' ', 'T').replace(/:00$/, '');
}

/** A list of strings as one text, or "-" when empty or not a list. */
export function list(values: unknown): string {
  return Array.isArray(values) && values.length > 0 ? values.map(String).join(' ') : '-';
}

/**
 * Text an agent's PEP chose (a reason, a task or record id, a note) as the console shows it: Unicode bidirectional
 * controls spelled out (`[U+202E]`), so it reads in the order it was written (the server does the same for the
 * review page, Slack and PagerDuty: src/wire/access-request-v1.ts `shownToApprover`).
 */
export function plainText(text: string): string {
  return text.replace(/[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `[U+${(c.codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0')}]`);
}
