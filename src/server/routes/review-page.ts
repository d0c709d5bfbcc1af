import { shownToApprover, type AccessRequestV1 } from '../../wire/access-request-v1.js';

/**
 * The approval page an approver reaches from a notification's link: the request's facts and a form that approves
 * or denies it with the approver's own API key. Opening the link changes nothing; only the form's POST decides.
 * Every value is escaped; the page loads nothing, runs no script and may not be framed.
 */
export const REVIEW_PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  // The link's token is in the URL: no Referer may carry it anywhere.
  'referrer-policy': 'no-referrer',
});

export const HTML = 'text/html; charset=utf-8';

export function reviewPage(request: AccessRequestV1, token: string, group: string): string {
  const facts: Array<[string, string]> = [
    ['Agent', request.agent_id],
    ['Task', request.task_id],
    ['Integration', request.integration],
    ['Scopes', request.scopes.join(', ')],
    ['Record', request.resource === null ? '(none)' : `${request.resource.type} ${request.resource.id}`],
    ['Reason', request.reason ?? '(none given)'],
    ['Requested duration', `${request.duration_seconds} s (at most ${request.max_duration_seconds} s)`],
    ['Requested by', request.requested_by],
    ['Approver group', group],
    ['Policy revision', request.policy_revision],
    ['Pending until', request.expires_at],
    ['Status', request.status],
  ];
  const rows = facts.map(([k, v]) => `<tr><th>${escape(k)}</th><td>${escape(shownToApprover(v))}</td></tr>`).join('\n');
  const form =
    request.status !== 'pending'
      ? `<p class="done">This request is <b>${escape(request.status)}</b>: nothing is left to decide.</p>`
      : // Relative: the page is served at …/review, so the form posts back to it behind any path prefix of public_url.
        `<form method="post" action="review">
  <input type="hidden" name="t" value="${escape(token)}">
  <label>Your approver API key <input type="password" name="api_key" autocomplete="off" required></label>
  <label>Duration (seconds, at most ${request.max_duration_seconds})
    <input type="number" name="duration_seconds" min="1" max="${request.max_duration_seconds}" value="${request.duration_seconds}"></label>
  <label>Note <input type="text" name="note" maxlength="1000"></label>
  <button type="submit" name="action" value="approve">Approve</button>
  <button type="submit" name="action" value="deny">Deny</button>
</form>`;
  return page(
    `Access request ${request.id}`,
    `<p>An agent asks for access above its policy's ceiling. Approving lets it decide again for exactly this task,
record and these scopes, until the window ends; nothing else changes.</p>
<table>${rows}</table>
${form}`,
  );
}

export function resultPage(title: string, message: string): string {
  return page(title, `<p>${escape(message)}</p>`);
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${escape(title)}</title>
<style>body{font:15px/1.4 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}
th{text-align:left;padding-right:1rem;vertical-align:top}label{display:block;margin:.6rem 0}
button{margin-right:.6rem;padding:.4rem 1rem}</style></head>
<body><h1>${escape(title)}</h1>
${body}
</body></html>
`;
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
