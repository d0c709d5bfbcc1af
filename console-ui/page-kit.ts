/*
 * What every page is made of: a page is a function that fills its own root element (a fresh one per navigation)
 * and loads its data; `run` shows a failure in the status area unless the user has moved on (the root is gone).
 */
import { h, type Child } from './dom.js';
import type { Route } from './router.js';
import { showError } from './status.js';

export type Page = (root: HTMLElement, route: Route) => void;

/** Runs an async step of a page; its error goes to the status area while the page is still shown. */
export function run(root: HTMLElement, step: () => Promise<void>): void {
  step().catch((err: unknown) => {
    if (root.isConnected) showError(err);
  });
}

/** A table: a header row of column names, then the rows given. */
export function table(columns: readonly string[], rows: readonly HTMLTableRowElement[], attrs: Record<string, string> = {}): HTMLTableElement {
  return h('table', attrs, h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', null, rows));
}

export function row(cells: readonly Child[], attrs: Record<string, string | undefined> = {}): HTMLTableRowElement {
  return h('tr', attrs, cells.map((c) => h('td', null, c)));
}

/** A key/value list (`<dl>`). */
export function facts(pairs: ReadonlyArray<readonly [string, Child]>, testid?: string): HTMLDListElement {
  return h('dl', { class: 'facts', 'data-testid': testid }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}

export function empty(text: string, testid?: string): HTMLParagraphElement {
  return h('p', { class: 'empty', 'data-testid': testid }, text);
}

export function loading(): HTMLParagraphElement {
  return h('p', { class: 'muted', 'aria-busy': 'true' }, 'loading…');
}

export function code(text: string | null | undefined): HTMLElement {
  return text === null || text === undefined || text === '' ? h('span', { class: 'muted' }, '-') : h('code', null, text);
}

/** The outcome as a coloured badge (class from a fixed set, text as text). */
export function outcomeBadge(outcome: string): HTMLElement {
  const known = ['allow', 'deny', 'undefined', 'error'].includes(outcome) ? outcome : 'other';
  return h('span', { class: `badge o-${known}` }, outcome);
}

export function badge(text: string, kind: string): HTMLElement {
  return h('span', { class: `badge b-${/^[a-z_]+$/.test(kind) ? kind : 'other'}` }, text);
}
