/*
 * The console's entry module (`/console/assets/app.js`): resumes the session or shows the sign-in form, then the
 * shell (left nav of the pages the roles may use, the status area, the page) and the hash routing between pages.
 */
import { setActivityHandler, setSessionChangedHandler, setUnauthorizedHandler } from './api.js';
import { h, on, replace, routeHref } from './dom.js';
import { homeOf, mayUse, pageInfo, PAGES, type PageId } from './pages.js';
import type { Page } from './page-kit.js';
import { agentPage } from './page-agent.js';
import { agentsPage } from './page-agents.js';
import { decisionPage } from './page-decision.js';
import { decisionsPage } from './page-decisions.js';
import { integrityPage } from './page-integrity.js';
import { overviewPage } from './page-overview.js';
import { requestsPage } from './page-requests.js';
import { signInPage } from './page-signin.js';
import { suggestionsPage } from './page-suggestions.js';
import { currentRoute, go, onRouteChange, type Route } from './router.js';
import * as session from './session.js';
import { clearStatus, showError, showInfo, statusArea } from './status.js';
import type { SessionV1 } from './wire.js';

const RENDERERS: Record<PageId, Page> = {
  overview: overviewPage,
  decisions: decisionsPage,
  decision: decisionPage,
  integrity: integrityPage,
  requests: requestsPage,
  suggestions: suggestionsPage,
  agents: agentsPage,
  agent: agentPage,
};

/** Which nav link is current for a page (the detail pages light their list). */
const NAV_OF: Partial<Record<PageId, PageId>> = { decision: 'decisions', agent: 'agents' };

const app = document.getElementById('app') ?? document.body;
let main: HTMLElement | null = null;
let nav: HTMLElement | null = null;
let idleTimer: number | undefined;

const EXPIRED = 'session expired: sign in again';

/**
 * The server ends a session after idle_timeout_seconds without a request; the page follows its own clock (restarted
 * by every answer, 2 s of slack) and shows the sign-in form rather than a page whose next action would fail.
 */
function armIdleTimer(): void {
  window.clearTimeout(idleTimer);
  const s = session.current();
  if (s === null || !(s.idle_timeout_seconds > 0)) return;
  idleTimer = window.setTimeout(() => {
    if (session.current() === null) return;
    session.drop();
    showSignIn(EXPIRED);
  }, (s.idle_timeout_seconds + 2) * 1000);
}

function showSignIn(message: string | null): void {
  window.clearTimeout(idleTimer);
  main = null;
  nav = null;
  clearStatus();
  replace(app, h('div', { class: 'signin-shell' }, statusArea(), signInPage(message, (s) => showConsole(s))));
}

function showConsole(s: SessionV1): void {
  clearStatus();
  armIdleTimer();
  nav = h(
    'nav',
    { class: 'nav', 'aria-label': 'pages' },
    h('div', { class: 'brand' }, 'agent-pdp'),
    h('ul', null, PAGES.filter((p) => p.nav && mayUse(p, s.roles)).map((p) => h('li', null, h('a', { href: routeHref([p.id]), 'data-testid': `nav-${p.id}`, 'data-page': p.id }, p.title)))),
    h(
      'div',
      { class: 'who' },
      h('div', { class: 'who-id', 'data-testid': 'whoami' }, s.caller_id),
      h('div', { class: 'muted', 'data-testid': 'whoami-roles' }, s.roles.join(', ')),
      on(h('button', { type: 'button', class: 'link', 'data-testid': 'signout' }, 'Sign out'), 'click', () => {
        session
          .signOut()
          .catch(() => undefined)
          .finally(() => showSignIn('signed out'));
      }),
    ),
  );
  main = h('main', { class: 'page' });
  replace(app, h('div', { class: 'shell' }, nav, h('div', { class: 'content' }, statusArea(), main)));
  route(currentRoute());
}

function route(r: Route): void {
  if (main === null || nav === null) return;
  const roles = session.roles();
  const home = homeOf(roles);
  if (r.page === null) {
    if (home !== undefined) go(routeHref([home.id]));
    else replace(main, h('p', { class: 'empty' }, 'None of your roles may use a page of the console.'));
    return;
  }
  const page = pageInfo(r.page);
  const current = NAV_OF[page.id] ?? page.id;
  for (const link of nav.querySelectorAll('a[data-page]')) {
    if (link.getAttribute('data-page') === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  clearStatus();
  const root = h('section', { class: 'page-root', 'data-testid': `page-${page.id}` });
  replace(main, root);
  document.title = `${page.title} · agent-pdp console`;
  if (!mayUse(page, roles)) {
    root.appendChild(h('h1', null, page.title));
    root.appendChild(h('p', { class: 'empty', 'data-testid': 'page-forbidden' }, `Your roles (${roles.join(', ') || 'none'}) may not use this page.`));
    return;
  }
  RENDERERS[page.id](root, r);
}

setUnauthorizedHandler(() => {
  if (session.current() === null && main === null) return;
  session.drop();
  showSignIn(EXPIRED);
});
setActivityHandler(() => armIdleTimer());
// The browser signed in again in another tab: this page's session is gone, the cookie holds another. The page takes
// the session the cookie holds now (perhaps another caller's: its pages and roles are shown), or the sign-in form.
let switching = false;
setSessionChangedHandler(() => {
  if (switching) return;
  switching = true;
  const was = session.current()?.caller_id;
  session.drop();
  session
    .resume()
    .then((s) => {
      if (s === null) return showSignIn(EXPIRED);
      showConsole(s);
      showInfo(`this tab's session was replaced by a sign-in in another tab: now signed in as ${s.caller_id}${was !== undefined && was !== s.caller_id ? ` (was ${was})` : ''}; repeat what you were doing`);
    })
    .catch(() => showSignIn(EXPIRED))
    .finally(() => (switching = false));
});
onRouteChange((r) => route(r));

session
  .resume()
  .then((s) => (s === null ? showSignIn(null) : showConsole(s)))
  .catch((err: unknown) => {
    showSignIn(null);
    showError(err);
  });
