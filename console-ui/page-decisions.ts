/*
 * Decisions: a filter form whose values live in the hash (`#/decisions?agent_id=...`, so back and reload keep it),
 * one page of GET /v1/audit/decisions at a time (newest first; "Older" follows next_cursor, nothing is loaded
 * ahead), export links for the same filter, and a click on a row opening its chain.
 */
import { getJson } from './api.js';
import { h, on, replace, routeHref } from './dom.js';
import { count, isoToLocalInput, localInputToIso, timeEl } from './format.js';
import { code, empty, loading, outcomeBadge, run, table, type Page } from './page-kit.js';
import { go } from './router.js';
import { OUTCOMES, type DecisionPageV1, type DecisionSummaryV1 } from './wire.js';

/** The filter's query parameters: the same names for GET /v1/audit/decisions and GET /v1/audit/export. */
const FILTER_KEYS = ['agent_id', 'task_id', 'outcome', 'reason', 'since', 'until', 'decision_id'] as const;
type FilterKey = (typeof FILTER_KEYS)[number];

const PAGE_SIZE = 50;
const EXPORT_FORMATS = [
  { format: 'jsonl', label: 'JSON Lines (verifiable)' },
  { format: 'csv', label: 'CSV' },
  { format: 'opa', label: 'OPA decision logs' },
] as const;

/** The filter of the route: known keys with a value, in a fixed order. */
function filterOf(query: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const key of FILTER_KEYS) {
    const value = query.get(key);
    if (value !== null && value !== '') out.set(key, value);
  }
  return out;
}

export const decisionsPage: Page = (root, route) => {
  const filter = filterOf(route.query);
  root.appendChild(h('h1', null, 'Decisions'));
  root.appendChild(filterForm(filter));
  root.appendChild(exportLinks(filter));
  const results = h('div', { class: 'results', 'data-testid': 'decision-results' }, loading());
  root.appendChild(results);
  const rows = h('tbody');
  const more = h('div', { class: 'more' });
  let shown = 0;

  const loadPage = async (cursor: string | null): Promise<void> => {
    const query: Record<string, string> = { limit: String(PAGE_SIZE) };
    for (const [k, v] of filter) query[k] = v;
    if (cursor !== null) query['cursor'] = cursor;
    const page = await getJson<DecisionPageV1>('/v1/audit/decisions', query);
    if (!root.isConnected) return;
    if (cursor === null) {
      replace(results, resultTable(rows), more);
    }
    for (const d of page.decisions) rows.appendChild(decisionRow(d));
    shown += page.decisions.length;
    replace(more);
    if (shown === 0 && page.next_cursor === null) {
      replace(results, empty('No decision matches this filter.', 'decisions-empty'));
      return;
    }
    const note =
      page.next_cursor !== null && page.decisions.length < PAGE_SIZE && page.scanned_through_seq !== null
        ? `searched back to event ${count(page.scanned_through_seq)}; older events may hold more matches`
        : '';
    more.appendChild(h('span', { class: 'muted', 'data-testid': 'decisions-count' }, `${count(shown)} shown${page.next_cursor === null ? ', no older match' : ''}`));
    if (note !== '') more.appendChild(h('span', { class: 'muted' }, ` · ${note}`));
    if (page.next_cursor !== null) {
      const next = page.next_cursor;
      const button = h('button', { type: 'button', 'data-testid': 'decisions-older' }, 'Older');
      on(button, 'click', () => {
        button.disabled = true;
        run(root, () => loadPage(next).finally(() => (button.disabled = false)));
      });
      more.appendChild(button);
    }
  };
  run(root, () => loadPage(null));
};

function filterForm(filter: URLSearchParams): HTMLFormElement {
  const text = (key: FilterKey, label: string, placeholder: string): [HTMLLabelElement, HTMLInputElement] => {
    const input = h('input', { id: `f-${key}`, name: key, type: 'text', value: filter.get(key) ?? '', placeholder, spellcheck: false, autocomplete: 'off', 'data-testid': `filter-${key.replace('_', '-')}` });
    return [h('label', { for: `f-${key}` }, label), input];
  };
  const when = (key: 'since' | 'until', label: string): [HTMLLabelElement, HTMLInputElement] => {
    const iso = filter.get(key);
    const input = h('input', { id: `f-${key}`, name: key, type: 'datetime-local', step: 1, value: iso === null ? '' : isoToLocalInput(iso), 'data-testid': `filter-${key}` });
    return [h('label', { for: `f-${key}` }, label), input];
  };
  const outcome = h(
    'select',
    { id: 'f-outcome', name: 'outcome', 'data-testid': 'filter-outcome' },
    h('option', { value: '' }, 'any'),
    OUTCOMES.map((o) => h('option', { value: o, selected: filter.get('outcome') === o }, o)),
  );
  const fields = [
    text('agent_id', 'Agent', 'agent id'),
    text('task_id', 'Task', 'task id'),
    [h('label', { for: 'f-outcome' }, 'Outcome'), outcome] as const,
    text('reason', 'Reason code', 'e.g. scope_not_allowed'),
    when('since', 'Since'),
    when('until', 'Until'),
    text('decision_id', 'Decision id', 'decision id'),
  ];
  const form = h(
    'form',
    { class: 'filters', 'data-testid': 'decision-filter' },
    fields.map(([label, input]) => h('div', { class: 'field' }, label, input)),
    h(
      'div',
      { class: 'field actions' },
      h('button', { type: 'submit', class: 'primary', 'data-testid': 'filter-submit' }, 'Search'),
      on(h('button', { type: 'button', 'data-testid': 'filter-reset' }, 'Clear'), 'click', () => go(routeHref(['decisions']))),
    ),
  );
  on(form, 'submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    const data = new FormData(form);
    for (const key of FILTER_KEYS) {
      const raw = data.get(key);
      const value = typeof raw === 'string' ? raw.trim() : '';
      const v = key === 'since' || key === 'until' ? localInputToIso(value) : value;
      if (v !== '') next.set(key, v);
    }
    go(routeHref(['decisions'], next));
  });
  return form;
}

function exportLinks(filter: URLSearchParams): HTMLElement {
  return h(
    'div',
    { class: 'export', 'data-testid': 'export' },
    h('span', { class: 'muted' }, 'Export this filter: '),
    EXPORT_FORMATS.map(({ format, label }) => {
      const query = new URLSearchParams(filter);
      query.set('format', format);
      return h('a', { href: `/v1/audit/export?${query.toString()}`, download: '', class: 'button', 'data-testid': `export-${format}` }, label);
    }),
  );
}

function resultTable(rows: HTMLTableSectionElement): HTMLTableElement {
  const t = table(['time', 'decision', 'agent', 'task', 'integration', 'outcome', 'granted', 'reasons'], [], { class: 'rows clickable' });
  const old = t.querySelector('tbody');
  if (old !== null) t.replaceChild(rows, old);
  return t;
}

function decisionRow(d: DecisionSummaryV1): HTMLTableRowElement {
  const href = routeHref(['decision', d.decision_id]);
  const tr = h(
    'tr',
    { 'data-testid': 'decision-row', 'data-decision-id': d.decision_id },
    h('td', { class: 'nowrap' }, timeEl(d.time)),
    h('td', { class: 'id', title: d.decision_id }, h('a', { href }, d.decision_id)),
    h('td', { class: 'id', title: d.agent_id }, d.agent_id ?? '-'),
    h('td', { class: 'id', title: d.task_id }, d.task_id ?? '-'),
    h('td', null, d.integration ?? '-'),
    h('td', null, outcomeBadge(d.outcome ?? '-')),
    h('td', null, Array.isArray(d.granted_scopes) && d.granted_scopes.length > 0 ? d.granted_scopes.map((s) => code(s)) : '-'),
    h('td', { class: 'reason' }, Array.isArray(d.reasons) && d.reasons.length > 0 ? d.reasons.map((r) => code(r)) : '-'),
  );
  on(tr, 'click', (event) => {
    if (event.target instanceof HTMLAnchorElement) return;
    go(href);
  });
  return tr;
}
