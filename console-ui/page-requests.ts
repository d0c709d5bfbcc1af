/*
 * Access requests: pending first (GET /v1/access-requests?status=pending, oldest first as the API lists them),
 * then the history of one status at a time, paged with next_after. An approver approves (a duration capped at
 * the request's max_duration_seconds, as the API caps it, and a note) or denies (a note); other roles read only.
 * The server decides who may approve what (its groups, never one's own request): its refusal is shown as text.
 */
import { getJson, pathOf, postJson } from './api.js';
import { h, on, replace, routeHref, type Child } from './dom.js';
import { count, duration, plainText, timeEl } from './format.js';
import { badge, code, empty, loading, run, type Page } from './page-kit.js';
import { hasRole } from './pages.js';
import { roles } from './session.js';
import { showError, showInfo } from './status.js';
import type { AccessRequestListV1, AccessRequestStatus, AccessRequestV1 } from './wire.js';

const HISTORY: readonly AccessRequestStatus[] = ['approved', 'denied', 'expired'];
const PAGE_SIZE = 50;

export const requestsPage: Page = (root) => {
  const approver = hasRole(roles(), 'approver');
  const auditor = hasRole(roles(), 'auditor');
  root.appendChild(h('h1', null, 'Access requests'));
  if (!approver) root.appendChild(h('p', { class: 'muted', 'data-testid': 'requests-read-only' }, 'Read only: approving and denying takes the approver role.'));
  const pending = h('div', { 'data-testid': 'requests-pending' }, loading());
  const history = h('div', { 'data-testid': 'requests-history' });
  const ctx: Ctx = { approver, auditor, refresh: () => undefined };
  const select = h('select', { id: 'history-status', 'data-testid': 'requests-history-status' }, HISTORY.map((s) => h('option', { value: s }, s)));
  const loadHistory = (): void => run(root, () => listInto(root, history, select.value as AccessRequestStatus, ctx, `No ${select.value} request.`));
  on(select, 'change', loadHistory);
  root.append(h('h2', null, 'Pending'), pending, h('h2', null, 'History'), h('div', { class: 'inline-form' }, h('label', { for: 'history-status' }, 'Status '), select), history);
  ctx.refresh = () => {
    run(root, () => listInto(root, pending, 'pending', ctx, 'No pending request.'));
    loadHistory();
  };
  ctx.refresh();
};

interface Ctx {
  approver: boolean;
  auditor: boolean;
  refresh: () => void;
}

async function listInto(root: HTMLElement, out: HTMLElement, status: AccessRequestStatus, ctx: Ctx, none: string): Promise<void> {
  replace(out, loading());
  const tbody = h('tbody');
  const more = h('div', { class: 'more' });
  let shown = 0;
  const page = async (after: string | null): Promise<void> => {
    const list = await getJson<AccessRequestListV1>('/v1/access-requests', { status, limit: PAGE_SIZE, after });
    if (!root.isConnected) return;
    for (const item of list.items) tbody.append(...requestRows(item, ctx));
    shown += list.items.length;
    if (shown === 0) {
      replace(out, empty(none, `requests-empty-${status}`));
      return;
    }
    replace(more, h('span', { class: 'muted' }, `${count(shown)} shown`));
    if (list.next_after !== null) {
      const next = list.next_after;
      more.appendChild(on(h('button', { type: 'button', 'data-testid': `requests-more-${status}` }, 'More'), 'click', () => run(root, () => page(next))));
    }
  };
  const tableEl = h(
    'table',
    { class: 'rows' },
    h('thead', null, h('tr', null, ['requested', 'agent', 'task', 'integration · record', 'scopes', 'reason', 'duration', status === 'pending' ? 'expires' : 'decided'].map((c) => h('th', { scope: 'col' }, c)))),
    tbody,
  );
  await page(null);
  if (shown > 0) replace(out, tableEl, more);
}

/** The request's row, and for a pending one the approver's actions in a row below it. */
function requestRows(r: AccessRequestV1, ctx: Ctx): HTMLTableRowElement[] {
  const record = r.resource === null ? '' : plainText(` · ${r.resource.type}/${r.resource.id}`);
  const decided: Child =
    r.status === 'pending'
      ? timeEl(r.expires_at)
      : [badge(r.status, r.status), ' ', timeEl(r.decided_at ?? r.expires_at), r.decided_by === null ? '' : ` by ${r.decided_by}`, r.note === null ? '' : h('div', { class: 'note' }, `“${plainText(r.note)}”`), r.approved_until === null ? '' : h('div', { class: 'muted' }, 'until ', timeEl(r.approved_until))];
  const main = h(
    'tr',
    { 'data-testid': 'request-row', 'data-request-id': r.id, 'data-status': r.status },
    h('td', { class: 'nowrap' }, timeEl(r.created_at), h('div', { class: 'muted' }, 'by ', r.requested_by)),
    h('td', null, r.agent_id),
    h('td', null, plainText(r.task_id)),
    h('td', null, r.integration, record),
    h('td', null, Array.isArray(r.scopes) ? r.scopes.map((s) => code(s)) : '-'),
    h('td', { class: 'reason' }, r.reason === null ? h('span', { class: 'muted' }, 'none given') : plainText(r.reason), ctx.auditor ? h('div', null, h('a', { href: routeHref(['decision', r.decision_id]) }, 'the denial')) : null),
    h('td', { class: 'nowrap' }, duration(r.duration_seconds), h('div', { class: 'muted' }, `max ${duration(r.max_duration_seconds)}`)),
    h('td', { class: 'nowrap' }, decided),
  );
  if (r.status !== 'pending' || !ctx.approver) return [main];
  return [main, h('tr', { class: 'actions-row', 'data-request-id': r.id }, h('td', { colspan: 8 }, actions(r, ctx)))];
}

function actions(r: AccessRequestV1, ctx: Ctx): HTMLElement {
  const max = Math.max(1, Math.floor(r.max_duration_seconds));
  const dur = h('input', { type: 'number', min: 1, max, step: 1, value: Math.min(Math.max(1, r.duration_seconds), max), 'aria-label': 'duration in seconds', 'data-testid': 'request-duration' });
  const note = h('input', { type: 'text', maxlength: 1000, placeholder: 'note (optional)', 'aria-label': 'note', 'data-testid': 'request-note' });
  const approve = h('button', { type: 'button', class: 'primary', 'data-testid': 'request-approve' }, 'Approve');
  const deny = h('button', { type: 'button', class: 'danger', 'data-testid': 'request-deny' }, 'Deny');
  const human = h('span', { class: 'muted' }, duration(Number(dur.value)));
  on(dur, 'input', () => replace(human, duration(Number(dur.value))));
  on(dur, 'change', () => {
    if (Number(dur.value) > max) dur.value = String(max); // the API's cap, shown before it is sent
    replace(human, duration(Number(dur.value)));
  });
  const act = (verb: 'approve' | 'deny'): void => {
    const body: { duration_seconds?: number; note?: string } = {};
    if (note.value.trim() !== '') body.note = note.value.trim();
    if (verb === 'approve') {
      const seconds = Math.floor(Number(dur.value));
      if (!Number.isFinite(seconds) || seconds < 1) {
        replace(human, 'a duration of at least 1 second');
        return;
      }
      body.duration_seconds = Math.min(seconds, max); // the API refuses more than max_duration_seconds
    }
    approve.disabled = deny.disabled = true;
    postJson<AccessRequestV1>(pathOf('/v1/access-requests', r.id, verb), body)
      .then(() => {
        showInfo(`request ${r.id} ${verb === 'approve' ? 'approved' : 'denied'}`);
        ctx.refresh();
      })
      .catch((err: unknown) => {
        approve.disabled = deny.disabled = false;
        if (approve.isConnected) showError(err);
      });
  };
  on(approve, 'click', () => act('approve'));
  on(deny, 'click', () => act('deny'));
  return h('div', { class: 'inline-form' }, h('label', null, 'Duration (s) ', dur), human, note, approve, deny);
}
