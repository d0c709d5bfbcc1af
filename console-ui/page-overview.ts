/*
 * Overview of the last hour (GET /v1/audit/overview?minutes=60): decisions per second, counts by outcome, a
 * per-minute chart by outcome and the top denial reasons. Refreshed on demand (a timer would keep an idle session
 * alive for ever).
 */
import { getJson } from './api.js';
import { h, on, replace } from './dom.js';
import { count, hourMinute, timeEl } from './format.js';
import { code, empty, loading, outcomeBadge, row, run, table, type Page } from './page-kit.js';
import { barChart } from './svg-chart.js';
import { OUTCOMES, type OverviewV1 } from './wire.js';

const MINUTES = 60;

export const overviewPage: Page = (root) => {
  const body = h('div', null, loading());
  const refresh = h('button', { type: 'button', 'data-testid': 'overview-refresh' }, 'Refresh');
  root.append(h('div', { class: 'title-row' }, h('h1', null, 'Overview, last hour'), refresh), body);
  const load = (): void =>
    run(root, async () => {
      const o = await getJson<OverviewV1>('/v1/audit/overview', { minutes: MINUTES });
      if (!root.isConnected) return;
      replace(body, view(o));
    });
  on(refresh, 'click', load);
  load();
};

function view(o: OverviewV1): HTMLElement {
  const perMinute = Array.isArray(o.per_minute) ? o.per_minute : [];
  const reasons = Array.isArray(o.top_denial_reasons) ? o.top_denial_reasons : [];
  const rate = typeof o.decisions_per_second === 'number' ? o.decisions_per_second : 0;
  return h(
    'div',
    null,
    h('p', { class: 'muted' }, timeEl(o.since), ' to ', timeEl(o.until)),
    o.truncated === true ? h('p', { class: 'warn', 'data-testid': 'overview-truncated' }, 'More decisions than one overview reads: the counts are of the newest ones.') : null,
    h(
      'div',
      { class: 'tiles' },
      h('div', { class: 'tile', 'data-testid': 'overview-rate' }, h('div', { class: 'tile-value' }, rate < 10 ? rate.toFixed(2) : count(Math.round(rate))), h('div', { class: 'tile-label' }, 'decisions per second')),
      OUTCOMES.map((k) => h('div', { class: `tile t-${k}`, 'data-testid': `overview-outcome-${k}` }, h('div', { class: 'tile-value' }, count(o.by_outcome?.[k] ?? 0)), h('div', { class: 'tile-label' }, outcomeBadge(k)))),
    ),
    h('h2', null, 'Decisions per minute'),
    perMinute.length === 0
      ? empty('No decision in the last hour.')
      : barChart({
          title: 'decisions per minute by outcome',
          categories: perMinute.map((m) => hourMinute(m.minute)),
          series: OUTCOMES.map((k) => ({ label: k, cls: `c-${k}`, values: perMinute.map((m) => m[k] ?? 0) })),
          stacked: true,
          testid: 'overview-chart',
          height: 200,
        }),
    h('h2', null, 'Top denial reasons'),
    reasons.length === 0
      ? empty('No denial in the last hour.')
      : table(
          ['reason', 'denials'],
          reasons.map((r) => row([code(r.code), count(r.count)], { 'data-testid': 'overview-denial-reason', 'data-reason': r.code })),
          { class: 'rows narrow' },
        ),
  );
}
