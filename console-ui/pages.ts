/*
 * The console's pages: one row each, with the roles that may use it (the same roles as the API routes it calls;
 * the server enforces them, the UI only hides what a role cannot use) and whether it has a nav link.
 */
import type { Role } from './wire.js';

export type PageId = 'overview' | 'decisions' | 'decision' | 'integrity' | 'requests' | 'suggestions' | 'agents' | 'agent';

export interface PageInfo {
  id: PageId;
  title: string;
  roles: readonly Role[];
  /** Shown in the left nav (the detail pages are reached from their list). */
  nav: boolean;
}

export const PAGES: readonly PageInfo[] = [
  { id: 'overview', title: 'Overview', roles: ['auditor', 'admin'], nav: true },
  { id: 'decisions', title: 'Decisions', roles: ['auditor'], nav: true },
  { id: 'decision', title: 'Decision chain', roles: ['auditor'], nav: false },
  { id: 'integrity', title: 'Integrity', roles: ['auditor'], nav: true },
  { id: 'requests', title: 'Access requests', roles: ['approver', 'auditor', 'admin'], nav: true },
  { id: 'suggestions', title: 'Suggestions', roles: ['auditor', 'admin'], nav: true },
  { id: 'agents', title: 'Agents', roles: ['auditor', 'admin'], nav: true },
  { id: 'agent', title: 'Agent', roles: ['auditor', 'admin'], nav: false },
];

export function pageInfo(id: PageId): PageInfo {
  const page = PAGES.find((p) => p.id === id);
  if (page === undefined) throw new TypeError(`unknown page ${id}`);
  return page;
}

export function mayUse(page: PageInfo, roles: readonly string[]): boolean {
  return page.roles.some((r) => roles.includes(r));
}

export function hasRole(roles: readonly string[], role: Role): boolean {
  return roles.includes(role);
}

/** The first nav page the roles may use: where a signed-in user lands. */
export function homeOf(roles: readonly string[]): PageInfo | undefined {
  return PAGES.find((p) => p.nav && mayUse(p, roles));
}
