/* Agents: every agent of the policy (GET /v1/agents) with its roles and integrations; a row opens #/agent/<id>. */
import { getJson } from './api.js';
import { h, on, replace, routeHref } from './dom.js';
import { code, empty, loading, run, type Page } from './page-kit.js';
import { go } from './router.js';
import type { AgentListV1, AgentV1 } from './wire.js';

export const agentsPage: Page = (root) => {
  root.appendChild(h('h1', null, 'Agents'));
  const meta = h('p', { class: 'muted' });
  const body = h('div', null, loading());
  root.append(meta, body);
  run(root, async () => {
    const list = await getJson<AgentListV1>('/v1/agents');
    if (!root.isConnected) return;
    const agents = Array.isArray(list.agents) ? list.agents : [];
    replace(meta, 'policy revision ', code(list.policy_revision), ` · ${agents.length} agents`);
    replace(
      body,
      agents.length === 0
        ? empty('The policy defines no agent.')
        : h(
            'table',
            { class: 'rows clickable' },
            h('thead', null, h('tr', null, ['agent', 'roles', 'integrations'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', null, agents.map(agentRow)),
          ),
    );
  });
};

function agentRow(a: AgentV1): HTMLTableRowElement {
  const href = routeHref(['agent', a.agent_id]);
  const tr = h(
    'tr',
    { 'data-testid': 'agent-row', 'data-agent-id': a.agent_id },
    h('td', null, h('a', { href }, a.agent_id)),
    h('td', null, Array.isArray(a.roles) && a.roles.length > 0 ? a.roles.map((r) => code(r)) : '-'),
    h('td', null, Array.isArray(a.integrations) ? a.integrations.map((i) => code(i.integration)) : '-'),
  );
  on(tr, 'click', (event) => {
    if (!(event.target instanceof HTMLAnchorElement)) go(href);
  });
  return tr;
}
