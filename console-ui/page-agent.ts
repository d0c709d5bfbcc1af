/*
 * One agent: its effective ceiling per integration after roles (from GET /v1/agents), and its activity
 * (GET /v1/agents/{id}/activity?days=14): decisions vs denials per day, scopes granted vs used.
 */
import { getJson, pathOf } from './api.js';
import { h, replace, routeHref } from './dom.js';
import { count, duration, timeEl } from './format.js';
import { code, empty, loading, run, table, row, type Page } from './page-kit.js';
import { barChart, pairBars } from './svg-chart.js';
import type { AgentActivityV1, AgentListV1, AgentV1 } from './wire.js';

const DAYS = 14;

export const agentPage: Page = (root, route) => {
  const id = route.id ?? '';
  root.appendChild(h('p', { class: 'crumbs' }, h('a', { href: routeHref(['agents']) }, '← Agents')));
  root.appendChild(h('h1', null, 'Agent ', h('code', { 'data-testid': 'agent-id' }, id)));
  const ceilings = h('div', { 'data-testid': 'agent-ceilings' }, loading());
  const activity = h('div', { 'data-testid': 'agent-activity' }, loading());
  root.append(h('h2', null, 'Effective ceiling per integration'), ceilings, h('h2', null, `Activity, last ${DAYS} days`), activity);
  run(root, async () => {
    const list = await getJson<AgentListV1>('/v1/agents');
    if (!root.isConnected) return;
    const agent = (Array.isArray(list.agents) ? list.agents : []).find((a) => a.agent_id === id);
    replace(ceilings, agent === undefined ? empty(`The policy (revision ${list.policy_revision}) defines no agent ${id}.`) : ceilingTable(agent));
  });
  run(root, async () => {
    const a = await getJson<AgentActivityV1>(pathOf('/v1/agents', id, 'activity'), { days: DAYS });
    if (!root.isConnected) return;
    replace(activity, activityView(a));
  });
};

function ceilingTable(agent: AgentV1): HTMLElement {
  const integrations = Array.isArray(agent.integrations) ? agent.integrations : [];
  return h(
    'div',
    null,
    h(
      'p',
      { class: 'muted' },
      'roles: ',
      Array.isArray(agent.roles) && agent.roles.length > 0 ? agent.roles.map((r) => code(r)) : 'none',
      Array.isArray(agent.task_types) && agent.task_types.length > 0 ? [' · task types: ', agent.task_types.map((t) => code(t))] : null,
      agent.task_restricted === true ? ' · each task type narrows these ceilings further' : null,
    ),
    integrations.length === 0
      ? empty('No integration.')
      : table(
          ['integration', 'max scope', 'denied', 'requestable (approval)', 'token TTL'],
          integrations.map((i) =>
            row([code(i.integration), scopes(i.max_scope), scopes(i.deny_scope), scopes(i.requestable), duration(i.token_ttl_seconds)], { 'data-testid': 'agent-ceiling', 'data-integration': i.integration }),
          ),
          { class: 'rows' },
        ),
  );
}

function scopes(list: unknown): HTMLElement | string {
  return Array.isArray(list) && list.length > 0 ? h('span', { class: 'scopes' }, list.map((s) => code(String(s)))) : '-';
}

function activityView(a: AgentActivityV1): HTMLElement {
  const days = Array.isArray(a.days) ? a.days : [];
  const used = Array.isArray(a.scopes) ? a.scopes : [];
  const decisions = days.reduce((t, d) => t + d.decisions, 0);
  const denials = days.reduce((t, d) => t + d.denials, 0);
  return h(
    'div',
    null,
    h('p', { class: 'muted' }, timeEl(a.since), ' to ', timeEl(a.until), ` · ${count(decisions)} scopes asked for, ${count(denials)} refused`, a.in_policy === false ? ' · the policy in force no longer names this agent' : ''),
    h('p', { class: 'muted small' }, 'Counted per scope asked for and refused by name, from the usage aggregates.'),
    days.length === 0
      ? empty('No decision in the window.')
      : barChart({
          title: `${a.agent_id}: decisions and denials per day`,
          categories: days.map((d) => d.day.slice(5, 10)),
          series: [
            { label: 'decisions', cls: 'c-total', values: days.map((d) => d.decisions) },
            { label: 'denials', cls: 'c-deny', values: days.map((d) => d.denials) },
          ],
          stacked: false,
          testid: 'agent-activity-chart',
        }),
    h('h3', null, 'Scopes granted vs used'),
    used.length === 0
      ? empty('No scope granted or used in the window.')
      : pairBars({
          title: `${a.agent_id}: per scope, tokens that carried it and its uses`,
          rows: used.map((s) => ({ label: `${s.integration} ${s.scope}`, a: s.granted, b: s.used })),
          a: { label: 'tokens that carried it', cls: 'c-granted' },
          b: { label: 'uses with evidence', cls: 'c-used' },
          testid: 'agent-scope-chart',
        }),
  );
}
