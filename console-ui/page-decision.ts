/*
 * A decision's chain (GET /v1/audit/decisions/{id}) as a timeline: the decision (policy revision, the evaluated
 * input, the result's reasons), its token, each use, the revocation, the task's completion, any access request
 * and elevation. Each event with its time, type, seq and ids; data as pretty JSON text.
 */
import { getJson, pathOf } from './api.js';
import { h, jsonBlock, routeHref, type Child } from './dom.js';
import { timeEl } from './format.js';
import { code, empty, facts, loading, outcomeBadge, run, type Page } from './page-kit.js';
import type { AuditEventV1, DecisionChainV1 } from './wire.js';

const IDS = ['decision_id', 'jti', 'task_id', 'agent_id', 'caller_id', 'trace_id'] as const;

/** A sentence per event type, for the timeline's headline. */
const TITLES: Readonly<Record<string, string>> = {
  decision: 'decision',
  'token.issued': 'token issued',
  'token.used': 'token used',
  'token.revoked': 'token revoked',
  'provider.credential_discarded': 'provider credential discarded',
  'task.completed': 'task completed',
  'access_request.submitted': 'access requested',
  'access_request.notified': 'approvers notified',
  'access_request.notification_failed': 'notification failed',
  'access_request.approved': 'access approved',
  'access_request.denied': 'access denied',
  'access_request.expired': 'access request expired',
  'elevation.ended': 'elevation ended',
};

export const decisionPage: Page = (root, route) => {
  const id = route.id ?? '';
  root.appendChild(h('p', { class: 'crumbs' }, h('a', { href: routeHref(['decisions']) }, '← Decisions')));
  root.appendChild(h('h1', null, 'Decision ', h('code', { 'data-testid': 'chain-decision-id' }, id)));
  const body = h('div', null, loading());
  root.appendChild(body);
  if (id === '') {
    body.replaceChildren(empty('No decision id in the address.'));
    return;
  }
  run(root, async () => {
    const chain = await getJson<DecisionChainV1>(pathOf('/v1/audit/decisions', id));
    const events = Array.isArray(chain.events) ? chain.events : [];
    body.replaceChildren(
      events.length === 0
        ? empty('The decision is recorded but its chain holds no event (pruned behind a checkpoint?).')
        : h('ol', { class: 'timeline', 'data-testid': 'chain' }, events.map(eventItem)),
    );
  });
};

function eventItem(e: AuditEventV1): HTMLLIElement {
  const ids = IDS.filter((k) => typeof e[k] === 'string' && e[k] !== '').map((k) => [k, code(e[k])] as const);
  const kind = e.type.split('.')[0] ?? 'other';
  return h(
    'li',
    { class: `event k-${/^[a-z_]+$/.test(kind) ? kind : 'other'}`, 'data-testid': 'chain-event', 'data-event-type': e.type, 'data-seq': e.seq },
    h('div', { class: 'event-head' }, timeEl(e.time), h('strong', null, TITLES[e.type] ?? e.type), h('span', { class: 'muted' }, ` ${e.type} · seq ${e.seq}`)),
    facts(ids),
    e.type === 'decision' ? decisionDetail(e.data) : otherDetail(e.data),
  );
}

function decisionDetail(data: unknown): Child {
  const d = asObject(data);
  const result = asObject(d['result']);
  const reasons = Array.isArray(result['reasons']) ? result['reasons'] : [];
  const outcome = typeof result['outcome'] === 'string' ? result['outcome'] : '-';
  return h(
    'div',
    { class: 'event-detail' },
    facts([
      ['outcome', outcomeBadge(outcome)],
      ['policy revision', h('code', { 'data-testid': 'chain-policy-revision' }, String(d['policy_revision'] ?? '-'))],
      ['granted', stringList(result['granted_scopes'])],
    ]),
    h('h3', null, 'Reasons'),
    reasons.length === 0
      ? empty('none')
      : h(
          'ul',
          { class: 'reasons', 'data-testid': 'chain-decision-reasons' },
          reasons.map((r) => {
            const o = asObject(r);
            return h('li', null, code(String(o['code'] ?? '?')), ' ', String(o['message'] ?? ''));
          }),
        ),
    h('details', { open: true }, h('summary', null, 'Evaluated input'), jsonBlock(d['input'], 'chain-decision-input')),
    h('details', null, h('summary', null, 'Result'), jsonBlock(d['result'], 'chain-decision-result')),
  );
}

function otherDetail(data: unknown): Child {
  if (data === null || data === undefined || (typeof data === 'object' && Object.keys(data).length === 0)) return null;
  return h('details', null, h('summary', null, 'Data'), jsonBlock(data));
}

function stringList(value: unknown): Child {
  return Array.isArray(value) && value.length > 0 ? value.map((v) => code(String(v))) : '-';
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}
