import type { Diagnostics } from './compile-diagnostics.js';
import { checkOwnEscalations } from './escalation-compiler.js';
import type { PathSegment, PolicyDocument, TaskTypesSource } from './policy-types.js';

/*
 * Checks that need no other document than the one at hand (plus the integrations' scope lists): the rules a JSON
 * Schema cannot say.
 */

type GrantDocument = PolicyDocument<'agent_policy'> | PolicyDocument<'role_policy'>;

/** A role's bindings must bind scopes it grants; its task types may only name integrations it declares. */
export function checkRole(role: PolicyDocument<'role_policy'>, diag: Diagnostics): void {
  for (const [name, grant] of Object.entries(role.body.integrations)) {
    const at: PathSegment[] = ['role_policy', 'integrations', name];
    const max = new Set(grant.max_scope);
    const requestable = new Set(grant.escalation?.scopes ?? []);
    for (const scope of Object.keys(grant.bind ?? {})) {
      if (max.has(scope) || requestable.has(scope)) continue;
      const message = `bound scope "${scope}" is not in this role's max_scope (nor escalation.scopes) for ${name}`;
      diag.error(role, [...at, 'bind', scope], message, true);
    }
    for (const [i, scope] of (grant.deny_scope ?? []).entries()) {
      if (!max.has(scope)) continue;
      diag.warning(role, [...at, 'deny_scope', i], `"${scope}" is both in max_scope and deny_scope; deny wins`);
    }
  }
  checkTaskTypeIntegrations(role, role.body.task_types, new Set(Object.keys(role.body.integrations)), diag);
  checkOwnEscalations(role, diag);
}

/** Task types may restrict only integrations the document's owner has: anything else is a typo or a mistake. */
export function checkTaskTypeIntegrations(
  doc: GrantDocument,
  taskTypes: TaskTypesSource | undefined,
  known: ReadonlySet<string>,
  diag: Diagnostics,
): void {
  const owner = `${doc.kind === 'agent_policy' ? 'agent' : 'role'} "${doc.body.id}"`;
  for (const [type, perIntegration] of Object.entries(taskTypes ?? {})) {
    for (const name of Object.keys(perIntegration)) {
      if (known.has(name)) continue;
      const message = `task type "${type}" names integration "${name}", which ${owner} has no access to`;
      diag.error(doc, [doc.kind, 'task_types', type, name], message, true);
    }
  }
}

interface ScopeMention {
  integration: string;
  scope: string;
  path: PathSegment[];
  /** The scope is a map key (a binding), not a list item. */
  key: boolean;
}

/**
 * Where a grant document names scopes of an integration: max_scope, deny_scope, bind keys, escalation scopes and
 * override_deny, task type lists.
 */
export function* scopeMentions(doc: GrantDocument): Generator<ScopeMention> {
  for (const [integration, grant] of Object.entries(doc.body.integrations ?? {})) {
    const at: PathSegment[] = [doc.kind, 'integrations', integration];
    for (const field of ['max_scope', 'deny_scope'] as const) {
      for (const [i, scope] of (grant[field] ?? []).entries()) {
        yield { integration, scope, path: [...at, field, i], key: false };
      }
    }
    for (const scope of Object.keys(grant.bind ?? {})) yield { integration, scope, path: [...at, 'bind', scope], key: true };
    for (const field of ['scopes', 'override_deny'] as const) {
      for (const [i, scope] of (grant.escalation?.[field] ?? []).entries()) {
        yield { integration, scope, path: [...at, 'escalation', field, i], key: false };
      }
    }
  }
  for (const [type, perIntegration] of Object.entries(doc.body.task_types ?? {})) {
    for (const [integration, scopes] of Object.entries(perIntegration)) {
      for (const [i, scope] of scopes.entries()) {
        yield { integration, scope, path: [doc.kind, 'task_types', type, integration, i], key: false };
      }
    }
  }
}

/** When an integration lists its scopes, every scope named for it must be one of them (catches `repo:raed`). */
export function checkKnownScopes(
  doc: GrantDocument,
  catalogues: ReadonlyMap<string, { file: string; scopes: ReadonlySet<string> }>,
  diag: Diagnostics,
): void {
  for (const { integration, scope, path, key } of scopeMentions(doc)) {
    const catalogue = catalogues.get(integration);
    if (catalogue === undefined || catalogue.scopes.has(scope)) continue;
    const message = `"${scope}" is not a scope of integration ${integration} (see the scopes list in ${catalogue.file})`;
    diag.error(doc, path, message, key);
  }
}

/** An integration's implications and escalation may only name scopes from its own list, when it has one. */
export function checkIntegration(doc: PolicyDocument<'integration'>, diag: Diagnostics): void {
  const { scopes, implies, escalation } = doc.body;
  if (scopes === undefined) return;
  const known = new Set(scopes);
  const unknown = (scope: string): string => `"${scope}" is not in this integration's scopes`;
  for (const [scope, implied] of Object.entries(implies ?? {})) {
    if (!known.has(scope)) diag.error(doc, ['integration', 'implies', scope], unknown(scope), true);
    for (const [i, other] of implied.entries()) {
      if (!known.has(other)) diag.error(doc, ['integration', 'implies', scope, i], unknown(other));
    }
  }
  for (const [i, scope] of (escalation?.scopes ?? []).entries()) {
    if (!known.has(scope)) diag.error(doc, ['integration', 'escalation', 'scopes', i], unknown(scope));
  }
}
