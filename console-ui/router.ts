/*
 * Hash routes: `#/overview`, `#/decisions?agent_id=...`, `#/decision/<id>`, `#/integrity`, `#/requests`,
 * `#/suggestions`, `#/agents`, `#/agent/<id>`. Path segments are percent-encoded (ids may hold `/`, `:`, `@`), the
 * query is URLSearchParams. Nothing of the route reaches the DOM but as text or through URLSearchParams.
 */
import { PAGES, type PageId } from './pages.js';

export interface Route {
  page: PageId | null;
  /** The id of a detail page (decision, agent), decoded. */
  id: string | null;
  query: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const text = hash.startsWith('#') ? hash.slice(1) : hash;
  const q = text.indexOf('?');
  const path = q === -1 ? text : text.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : text.slice(q + 1));
  const segments = path.split('/').filter((s) => s !== '');
  const name = segments[0] ?? '';
  const page = PAGES.find((p) => p.id === name)?.id ?? null;
  let id: string | null = null;
  if (segments.length > 1) {
    try {
      id = decodeURIComponent(segments.slice(1).join('/'));
    } catch {
      id = null;
    }
    // An id becomes a path segment of an API call: a dot segment would make it another path (`/v1/audit/decisions/..`).
    if (id === '.' || id === '..' || id === '') id = null;
  }
  return { page, id, query };
}

export function currentRoute(): Route {
  return parseRoute(window.location.hash);
}

export function onRouteChange(handler: (route: Route) => void): void {
  window.addEventListener('hashchange', () => handler(currentRoute()));
}

/** Navigates to a hash route (a hashchange follows). */
export function go(hash: string): void {
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
  else window.location.hash = hash;
}
