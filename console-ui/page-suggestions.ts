/*
 * Suggestions: the open ones (GET /v1/suggestions?format=json&status=open), each with its summary, confidence,
 * evidence, chart and YAML diff; then the history (applied, dismissed, withdrawn). An admin applies in two steps
 * ("Apply…" posts {dry_run: true} and shows the diff the server would write; "Confirm apply" posts
 * {dry_run: false}) or dismisses; an auditor reads only.
 */
import { getJson, pathOf, postJson } from './api.js';
import { h, on, replace, routeHref } from './dom.js';
import { diffView } from './diff-view.js';
import { timeEl } from './format.js';
import { badge, code, empty, loading, row, run, table, type Page } from './page-kit.js';
import { hasRole } from './pages.js';
import { roles } from './session.js';
import { showError, showInfo } from './status.js';
import { evidenceChart, evidenceFacts, evidenceOf, proposalOf } from './suggestion-evidence.js';
import type { SuggestionApplyV1, SuggestionRecordV1, SuggestionReportV1 } from './wire.js';

const KIND_TITLES: Readonly<Record<string, string>> = {
  remove_scope: 'remove a scope',
  move_to_task_type: 'move a scope to one task type',
  shorten_ttl: 'shorten the token TTL',
};

export const suggestionsPage: Page = (root) => {
  const admin = hasRole(roles(), 'admin');
  root.appendChild(h('h1', null, 'Policy suggestions'));
  root.appendChild(h('p', { class: 'muted' }, 'A suggestion only narrows a policy, and nothing changes until an admin applies it.', admin ? '' : ' Read only: applying and dismissing takes the admin role.'));
  const open = h('div', { 'data-testid': 'suggestions-open' }, loading());
  const history = h('div', { 'data-testid': 'suggestions-history' }, loading());
  root.append(h('h2', null, 'Open'), open, h('h2', null, 'History'), history);
  const refresh = (): void =>
    run(root, async () => {
      const [openReport, all] = await Promise.all([
        getJson<SuggestionReportV1>('/v1/suggestions', { format: 'json', status: 'open' }),
        getJson<SuggestionReportV1>('/v1/suggestions', { format: 'json' }),
      ]);
      if (!root.isConnected) return;
      const opened = Array.isArray(openReport.suggestions) ? openReport.suggestions : [];
      replace(open, opened.length === 0 ? empty('No open suggestion.', 'suggestions-empty') : opened.map((s) => card(s, admin, refresh)));
      const past = (Array.isArray(all.suggestions) ? all.suggestions : []).filter((s) => s.status !== 'open');
      replace(history, past.length === 0 ? empty('None applied, dismissed or withdrawn yet.') : historyTable(past));
    });
  refresh();
};

function titleOf(s: SuggestionRecordV1): string {
  return `${KIND_TITLES[s.kind] ?? s.kind}: ${s.target}${s.integration === '*' ? '' : ` on ${s.integration}`}`;
}

function card(s: SuggestionRecordV1, admin: boolean, refresh: () => void): HTMLElement {
  const e = evidenceOf(s.evidence);
  const p = proposalOf(s.proposal);
  const chart = evidenceChart(e, p, `${s.agent_id} ${titleOf(s)}`);
  return h(
    'article',
    { class: 'card suggestion', 'data-testid': 'suggestion', 'data-suggestion-id': s.id, 'data-status': s.status },
    h('h3', null, titleOf(s), ' ', e.confidence === null ? null : badge(`${e.confidence} confidence`, e.confidence)),
    h('p', null, 'agent ', h('a', { href: routeHref(['agent', s.agent_id]) }, s.agent_id), ' · file ', code(s.file), ' · id ', code(s.id)),
    p.summary === null ? null : h('p', { class: 'summary' }, p.summary),
    e.reasons.length === 0 ? null : h('ul', { class: 'reasons' }, e.reasons.map((r) => h('li', null, r))),
    h('div', { class: 'evidence' }, evidenceFacts(e), chart ?? h('p', { class: 'muted' }, 'No chart: the evidence has no counts over time.')),
    p.diff === '' ? null : h('details', null, h('summary', null, 'The YAML change it would make'), diffView(p.diff, 'suggestion-diff')),
    admin ? actions(s, refresh) : null,
  );
}

function actions(s: SuggestionRecordV1, refresh: () => void): HTMLElement {
  const note = h('input', { type: 'text', maxlength: 1000, placeholder: 'note (optional)', 'aria-label': 'note', 'data-testid': 'suggestion-note' });
  const apply = h('button', { type: 'button', class: 'primary', 'data-testid': 'suggestion-apply' }, 'Apply…');
  const dismiss = h('button', { type: 'button', 'data-testid': 'suggestion-dismiss' }, 'Dismiss');
  const panel = h('div', { class: 'apply-panel' });
  const body = (dryRun?: boolean): Record<string, unknown> => ({ ...(dryRun === undefined ? {} : { dry_run: dryRun }), ...(note.value.trim() === '' ? {} : { note: note.value.trim() }) });
  const busy = (state: boolean): void => {
    apply.disabled = dismiss.disabled = state;
  };
  const fail = (err: unknown): void => {
    busy(false);
    if (panel.isConnected) showError(err);
  };

  on(apply, 'click', () => {
    busy(true);
    postJson<SuggestionApplyV1>(pathOf('/v1/suggestions', s.id, 'apply'), body(true))
      .then((dry) => {
        if (dry === null) throw new Error('the PDP answered the dry run without a body');
        const confirm = h('button', { type: 'button', class: 'primary', 'data-testid': 'suggestion-confirm' }, 'Confirm apply');
        const cancel = h('button', { type: 'button', 'data-testid': 'suggestion-cancel' }, 'Cancel');
        on(cancel, 'click', () => {
          replace(panel);
          busy(false);
        });
        on(confirm, 'click', () => {
          confirm.disabled = cancel.disabled = true;
          postJson<SuggestionApplyV1>(pathOf('/v1/suggestions', s.id, 'apply'), body(false))
            .then((done) => {
              const reload = done?.reload_error ?? null;
              replace(
                panel,
                h('div', { class: 'result ok', 'data-testid': 'suggestion-result' }, done?.written === true ? `Applied: ${done.file} rewritten, policies revision ${done.revision_before ?? '-'} → ${done.revision_after ?? '-'}.` : 'Applied.'),
                reload === null ? null : h('p', { class: 'warn', 'data-testid': 'suggestion-reload-error' }, `The file is written but the policy did not reload (${reload.code}: ${reload.message}); the previous policy stays in force until a reload succeeds.`),
              );
              showInfo(`suggestion ${s.id} applied`);
              refresh();
            })
            .catch((err: unknown) => {
              confirm.disabled = cancel.disabled = false;
              fail(err);
            });
        });
        replace(
          panel,
          h('p', null, 'The server would write this change to ', code(dry.file), ':'),
          dry.diff === '' ? h('p', { class: 'muted' }, '(no change)') : diffView(dry.diff, 'suggestion-dry-run-diff'),
          Array.isArray(dry.new_warnings) && dry.new_warnings.length > 0
            ? h('div', { class: 'warn', 'data-testid': 'suggestion-warnings' }, 'New compile warnings with this change:', h('ul', null, dry.new_warnings.map((w) => h('li', null, code(w.path), ' ', w.message))))
            : null,
          h('div', { class: 'inline-form' }, confirm, cancel),
        );
      })
      .catch(fail);
  });

  on(dismiss, 'click', () => {
    busy(true);
    postJson<{ suggestion: SuggestionRecordV1 }>(pathOf('/v1/suggestions', s.id, 'dismiss'), body())
      .then(() => {
        showInfo(`suggestion ${s.id} dismissed`);
        refresh();
      })
      .catch(fail);
  });
  return h('div', { class: 'suggestion-actions' }, h('div', { class: 'inline-form' }, note, apply, dismiss), panel);
}

function historyTable(list: readonly SuggestionRecordV1[]): HTMLTableElement {
  return table(
    ['agent', 'suggestion', 'status', 'by', 'when'],
    list.map((s) =>
      row([s.agent_id, titleOf(s), badge(s.status, s.status), s.decided_by ?? '-', timeEl(s.decided_at ?? s.updated_at)], { 'data-testid': 'suggestion-history-row', 'data-suggestion-id': s.id, 'data-status': s.status }),
    ),
    { class: 'rows' },
  );
}
